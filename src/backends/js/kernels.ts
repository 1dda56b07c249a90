import { allocOutput, type ConvGeometry } from '../../conv/geometry.js';
import type { OutputData } from '../../tensor.js';
import type { Backend, DirectJob, PciltJob } from '../types.js';

/**
 * Copies the receptive field of output pixel (oh, ow) of group gi in image n into col,
 * in weight order (c, kh, kw); positions in the padding read as code 0.
 */
export function gatherField(x: Uint8Array, g: ConvGeometry, n: number, gi: number, oh: number, ow: number, col: Uint8Array): void {
  const { C, H, W, Cg, KH, KW } = g;
  let k = 0;
  for (let c = 0; c < Cg; c++) {
    const plane = (n * C + gi * Cg + c) * H * W;
    for (let kh = 0; kh < KH; kh++) {
      const ih = oh * g.strideH - g.padT + kh * g.dilH;
      for (let kw = 0; kw < KW; kw++, k++) {
        const iw = ow * g.strideW - g.padL + kw * g.dilW;
        col[k] = ih >= 0 && ih < H && iw >= 0 && iw < W ? x[plane + ih * W + iw] : 0;
      }
    }
  }
}

/** Reference PCILT convolution: quantized codes -> packed indices -> look-ups and additions. */
export function pciltReference({ input, tables: t, geometry: g, bias, integer }: PciltJob): OutputData {
  const out = allocOutput(g, integer);
  const { N, O, OH, OW, groups, Og, Cg, KH, KW } = g;
  const K = Cg * KH * KW, S = t.segments, G = t.groupSize, ib = t.indexBits, T = t.tableSize, planes = t.planes;
  const e = t.entries;
  const base = new Float64Array(t.tableOf.length);
  for (let i = 0; i < base.length; i++) base[i] = t.tableOf[i] * T;
  const col = new Uint8Array(K);
  const idx = new Int32Array(planes * S);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < groups; gi++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          gatherField(input, g, n, gi, oh, ow, col);
          // The packed indices depend only on the input: built once, used by every output channel.
          for (let p = 0; p < planes; p++) {
            for (let s = 0; s < S; s++) {
              let v = 0;
              for (let i = 0, k = s * G; i < G && k < K; i++, k++) {
                const code = t.bitSerial ? (col[k] >> p) & 1 : col[k];
                v |= code << (i * ib);
              }
              idx[p * S + s] = v;
            }
          }
          for (let oo = 0; oo < Og; oo++) {
            const o = gi * Og + oo;
            let acc = 0;
            for (let p = 0; p < planes; p++) {
              let sum = 0;
              for (let s = 0; s < S; s++) sum += e[base[o * S + s] + idx[p * S + s]];
              acc += sum * 2 ** p;
            }
            out[((n * O + o) * OH + oh) * OW + ow] = acc + (bias ? bias[o] : 0);
          }
        }
      }
    }
  }
  return out;
}

/** Reference direct convolution: one multiplication (or fn call) per weight and activation. */
export function directReference({ input, weight, geometry: g, bias, fn, integer }: DirectJob): OutputData {
  const out = allocOutput(g, integer);
  const { N, O, OH, OW, groups, Og, Cg, KH, KW } = g;
  const K = Cg * KH * KW;
  const col = new Uint8Array(K);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < groups; gi++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          gatherField(input, g, n, gi, oh, ow, col);
          for (let oo = 0; oo < Og; oo++) {
            const o = gi * Og + oo;
            let acc = 0;
            if (fn) for (let k = 0; k < K; k++) acc += fn(weight[o * K + k], col[k]);
            else for (let k = 0; k < K; k++) acc += weight[o * K + k] * col[k];
            out[((n * O + o) * OH + oh) * OW + ow] = acc + (bias ? bias[o] : 0);
          }
        }
      }
    }
  }
  return out;
}

export const jsBackend: Backend = {
  name: 'js',
  unavailableReason: async () => null,
  supportsPcilt: () => null,
  supportsDirect: () => null,
  pcilt: pciltReference,
  direct: directReference,
};
