// 32-bit data movement: a strided view copied out (Transpose), the last axis as one run.

/**
 * Copies the view of `src` with `rank` axes of sizes shape[a] and element strides strides[a] (i32
 * arrays) into `dst`, densely, in order; `counters` holds rank i32 of scratch. Runs of the last axis
 * with stride 1 move as v128 words.
 */
export function copy_strided_x32(src: usize, dst: usize, rank: i32, shape: usize, strides: usize, counters: usize): void {
  const last = <usize>(rank - 1) << 2;
  const inner = load<i32>(shape + last), step = load<i32>(strides + last);
  let outer = 1;
  for (let a = 0; a < rank - 1; a++) {
    outer *= load<i32>(shape + (<usize>a << 2));
    store<i32>(counters + (<usize>a << 2), 0);
  }
  let p = src, o = dst;
  const runBytes = <usize>inner << 2;
  for (let k = 0; k < outer; k++) {
    if (step == 1) {
      let i: usize = 0;
      for (; i + 16 <= runBytes; i += 16) v128.store(o + i, v128.load(p + i));
      for (; i < runBytes; i += 4) store<u32>(o + i, load<u32>(p + i));
    } else {
      const s = <usize>step << 2;
      for (let i = 0; i < inner; i++) store<u32>(o + (<usize>i << 2), load<u32>(p + <usize>i * s));
    }
    o += runBytes;
    for (let a = rank - 2; a >= 0; a--) {
      const at = <usize>a << 2, st = <usize>load<i32>(strides + at) << 2;
      p += st;
      const c = load<i32>(counters + at) + 1;
      if (c < load<i32>(shape + at)) {
        store<i32>(counters + at, c);
        break;
      }
      p -= st * <usize>load<i32>(shape + at);
      store<i32>(counters + at, 0);
    }
  }
}
