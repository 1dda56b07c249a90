// Float32 elementwise kernels: unary functions and binary operations with broadcasting by stride.



// @ts-ignore: decorator
@inline export function expv(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.3)), f32x4.splat(88.3));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  const e = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1));
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(e, pow2);
}

/**
 * erf(x) as x * P(x^2) / Q(x^2), degrees 6 and 5, |x| clamped to 3.92 (where erf rounds to 1 in float32):
 * a rational fit of this project's (scripts/fit-erf.py), largest error 1.7e-9 in exact arithmetic and
 * 3.1e-7 evaluated in float32, against 1.5e-7 for Abramowitz and Stegun 7.1.26, which the reference
 * uses. One division and 13 multiply-adds, where 7.1.26 takes a division and an exp.
 */
// @ts-ignore: decorator
@inline function erfv(x: v128): v128 {
  const u = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-3.92)), f32x4.splat(3.92)), t = f32x4.mul(u, u);
  let p = f32x4.splat(-1.3316951097408491e-8);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(4.714487658930011e-6));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(3.8024180685169995e-4));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(3.831507870927453e-3));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(5.4273881018161774e-2));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.846880465745926e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.128379225730896));
  let q = f32x4.splat(6.338830280583352e-5);
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(1.3046821113675833e-3));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(1.5428725630044937e-2));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(1.1376775056123734e-1));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(4.970090389251709e-1));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(1));
  return f32x4.div(f32x4.mul(u, p), q);
}

/**
 * Inference batch norm over N x C planes of P floats: y = x * k[c] + off[c] (unary_f32's affine op
 * per plane), in one call instead of one call a plane.
 */
export function affine_planes_f32(x: usize, y: usize, N: i32, C: i32, P: i32, k: usize, off: usize): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const at = <usize>((n * C + c) * P) << 2;
      unary_f32(14, x + at, y + at, P, load<f32>(k + (<usize>c << 2)), load<f32>(off + (<usize>c << 2)));
    }
  }
}

/**
 * y[i] = f(x[i]) for n floats (in place allowed). op: 0 relu, 1 clip(p, q), 2 sigmoid, 3 tanh,
 * 4 exp, 5 hardsigmoid(alpha p, beta q), 6 hardswish, 7 leaky relu(p), 8 gelu (erf), 9 silu,
 * 10 sqrt, 11 neg, 12 abs, 13 reciprocal, 14 affine x * p + q (a batch-norm plane).
 */
export function unary_f32(op: i32, x: usize, y: usize, n: i32, p: f32, q: f32): void {
  const vp = f32x4.splat(p), vq = f32x4.splat(q), zero = f32x4.splat(0), one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    let r: v128;
    switch (op) {
      case 0: r = f32x4.max(v, zero); break;
      case 1: r = f32x4.pmin(f32x4.pmax(v, vp), vq); break;
      case 2: r = f32x4.div(one, f32x4.add(one, expv(f32x4.neg(v)))); break;
      case 3: { const e = expv(f32x4.mul(v, f32x4.splat(2))); r = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(e, one))); break; }
      case 4: r = expv(v); break;
      case 5: r = f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.mul(v, vp), vq), zero), one); break;
      case 6: r = f32x4.mul(v, f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.mul(v, f32x4.splat(1.0 / 6)), f32x4.splat(0.5)), zero), one)); break;
      case 7: r = v128.bitselect(v, f32x4.mul(v, vp), f32x4.ge(v, zero)); break;
      case 8: r = f32x4.mul(f32x4.mul(v, f32x4.splat(0.5)), f32x4.add(one, erfv(f32x4.mul(v, f32x4.splat(0.7071067811865476))))); break;
      case 9: r = f32x4.div(v, f32x4.add(one, expv(f32x4.neg(v)))); break;
      case 10: r = f32x4.sqrt(v); break;
      case 11: r = f32x4.neg(v); break;
      case 12: r = f32x4.abs(v); break;
      case 14: r = f32x4.add(f32x4.mul(v, vp), vq); break;
      default: r = f32x4.div(one, v);
    }
    v128.store(y + o, r);
  }
  // The last n % 4: through a zero-padded vector on the stack.
  if (i < n) {
    const tmp = memory.data(32);
    v128.store(tmp, f32x4.splat(0));
    for (let k = i; k < n; k++) store<f32>(tmp + (<usize>(k - i) << 2), load<f32>(x + (<usize>k << 2)));
    unary_f32(op, tmp, tmp + 16, 4, p, q);
    for (let k = i; k < n; k++) store<f32>(y + (<usize>k << 2), load<f32>(tmp + 16 + (<usize>(k - i) << 2)));
  }
}

/**
 * One run of a broadcast binary op: y[i] = a[i * sa] (op) b[i * sb] for n floats, sa and sb 0 or 1.
 * op: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 prelu (b the slope).
 */
export function binary_f32(op: i32, a: usize, sa: i32, b: usize, sb: i32, y: usize, n: i32): void {
  const ia = <usize>(sa << 4), ib = <usize>(sb << 4);
  let pa = a, pb = b, py = y;
  let i = 0;
  const zero = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) {
    const va = sa ? v128.load(pa) : v128.load32_splat(pa), vb = sb ? v128.load(pb) : v128.load32_splat(pb);
    let r: v128;
    switch (op) {
      case 0: r = f32x4.add(va, vb); break;
      case 1: r = f32x4.sub(va, vb); break;
      case 2: r = f32x4.mul(va, vb); break;
      case 3: r = f32x4.div(va, vb); break;
      case 4: r = f32x4.max(va, vb); break;
      case 5: r = f32x4.min(va, vb); break;
      default: r = v128.bitselect(f32x4.mul(va, vb), va, f32x4.lt(va, zero));
    }
    v128.store(py, r);
    pa += ia;
    pb += ib;
    py += 16;
  }
  for (; i < n; i++) {
    const u = load<f32>(a + (<usize>(i * sa) << 2)), v = load<f32>(b + (<usize>(i * sb) << 2));
    let r: f32;
    switch (op) {
      case 0: r = u + v; break;
      case 1: r = u - v; break;
      case 2: r = u * v; break;
      case 3: r = u / v; break;
      case 4: r = u != u || v != v ? NaN : max(u, v); break;
      case 5: r = u != u || v != v ? NaN : min(u, v); break;
      default: r = u < 0 ? u * v : u;
    }
    store<f32>(y + (<usize>i << 2), r);
  }
}
