import type { Node } from '../ir/graph.js';
import { numbers, zeros, type Tensor } from '../ir/tensor.js';
import { attrFloat, attrInt, attrInts, checkDType, defineOp, fail, need, type Inputs } from './registry.js';
import { roundEven } from './unary.js';

/**
 * `_PciltConv` (faster-cnn's own op): a convolution, or a dense layer on [N, K] inputs, whose
 * parameters are look-up tables rather than weights, as networks trained here with tables as
 * weights (TableConv2d, TableLinear) define it.
 *
 * Inputs: X float32 [N, C, H, W] (or [N, K]); T [O, K, 2^bits] entries, float32 or int32 (integer
 * entries); S optional float32 [O], the real value of one integer entry step; B optional float32 [O].
 * Attributes: bits, scale (the real value of one input code step), kernel_shape, pads
 * [top, left, bottom, right], strides.
 *
 * y[n][o][p] = B[o] + S[o] * sum over slots k of T[o][k][a], a = clamp(round_half_even(x / scale), 0,
 * 2^bits - 1) at slot k of output pixel p (k runs over c, kh, kw as in an OIHW weight), padding
 * read as code 0.
 */
export interface PciltConvAttrs {
  bits: number;
  scale: number;
  kernel: [number, number];
  pads: [number, number, number, number];
  strides: [number, number];
  dense: boolean;
}

export function pciltConvAttrs(node: Node, x: Tensor, t: Tensor): PciltConvAttrs {
  const bits = attrInt(node, 'bits', 0), scale = attrFloat(node, 'scale', 0);
  if (bits < 1 || bits > 8) fail(node, `bits ${bits} is outside 1..8`);
  if (!(scale > 0) || !Number.isFinite(scale)) fail(node, `scale ${scale} must be a finite number > 0`);
  checkDType(node, x, ['float32']);
  checkDType(node, t, ['float32', 'int32'], 'table input T');
  const dense = x.shape.length === 2;
  if (!dense && x.shape.length !== 4) fail(node, `input of rank ${x.shape.length}; allowed: 2 (dense) or 4 (NCHW)`);
  const kernel = (dense ? [1, 1] : attrInts(node, 'kernel_shape') ?? fail(node, 'kernel_shape is missing')) as [number, number];
  const pads = (dense ? [0, 0, 0, 0] : attrInts(node, 'pads', [0, 0, 0, 0])!) as [number, number, number, number];
  const strides = (dense ? [1, 1] : attrInts(node, 'strides', [1, 1])!) as [number, number];
  if (kernel.length !== 2 || pads.length !== 4 || strides.length !== 2 || kernel.some((k) => k < 1) || pads.some((p) => p < 0) || strides.some((s) => s < 1)) {
    fail(node, `kernel_shape ${kernel}, pads ${pads}, strides ${strides}: two kernel sizes >= 1, four pads >= 0, two strides >= 1`);
  }
  const K = (dense ? x.shape[1] : x.shape[1] * kernel[0] * kernel[1]);
  if (t.shape.length !== 3 || t.shape[1] !== K || t.shape[2] !== 1 << bits) fail(node, `tables of shape [${t.shape}]; the input needs [O, ${K}, ${1 << bits}]`);
  return { bits, scale, kernel, pads, strides, dense };
}

/** The output's spatial size, or an OpError where the window does not fit. */
export function pciltConvOut(node: Node, x: Tensor, a: PciltConvAttrs): [number, number] {
  if (a.dense) return [1, 1];
  const [, , H, W] = x.shape;
  const OH = Math.floor((H + a.pads[0] + a.pads[2] - a.kernel[0]) / a.strides[0]) + 1;
  const OW = Math.floor((W + a.pads[1] + a.pads[3] - a.kernel[1]) / a.strides[1]) + 1;
  if (OH < 1 || OW < 1) fail(node, `a ${a.kernel} window does not fit input [${x.shape}] with pads ${a.pads}`);
  return [OH, OW];
}

/** The plain loop: every output pixel, every slot, one table entry. */
function pciltConvRef(ins: Inputs, node: Node): Tensor[] {
  const x = need(ins, 0, node), t = need(ins, 1, node);
  const a = pciltConvAttrs(node, x, t);
  const [OH, OW] = pciltConvOut(node, x, a);
  const O = t.shape[0], K = t.shape[1], T = t.shape[2], L = T - 1;
  const s = ins[2] ? numbers(ins[2]) : null, b = ins[3] ? numbers(ins[3]) : null;
  if ((s && s.length !== O) || (b && b.length !== O)) fail(node, `${s?.length ?? b?.length} scales or biases for ${O} output channels`);
  const N = x.shape[0], C = a.dense ? K : x.shape[1], H = a.dense ? 1 : x.shape[2], W = a.dense ? 1 : x.shape[3];
  const xd = x.data as Float32Array, td = numbers(t);
  const code = (v: number) => {
    const q = roundEven(Math.fround(v / a.scale));
    return q < 0 ? 0 : q > L ? L : q;
  };
  const y = zeros('float32', a.dense ? [N, O] : [N, O, OH, OW]), yd = y.data as Float32Array;
  const [KH, KW] = a.kernel;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let sum = 0;
          for (let c = 0; c < C; c++) {
            for (let kh = 0; kh < KH; kh++) {
              for (let kw = 0; kw < KW; kw++) {
                const ih = oh * a.strides[0] - a.pads[0] + kh, iw = ow * a.strides[1] - a.pads[1] + kw;
                const inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                const q = inside ? code(xd[((n * C + c) * H + ih) * W + iw]) : 0;
                sum += td[((o * K) + (c * KH + kh) * KW + kw) * T + q];
              }
            }
          }
          yd[((n * O + o) * OH + oh) * OW + ow] = sum * (s ? s[o] : 1) + (b ? b[o] : 0);
        }
      }
    }
  }
  return [y];
}

defineOp({ op: '_PciltConv', inputs: [2, 4], run: pciltConvRef });
