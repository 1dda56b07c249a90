import type { Node } from '../ir/graph.js';
import { fromNumbers, zeros, type Tensor } from '../ir/tensor.js';

/** NHWC -> NCHW and back, for the TF.js importers' spatial ops. */
export const TO_NCHW = [0, 3, 1, 2], TO_NHWC = [0, 2, 3, 1];

/** Nodes and constants of a graph being built by an importer, with fresh names for what it adds. */
export function irBuilder() {
  const consts = new Map<string, Tensor>();
  const nodes: Node[] = [];
  let count = 0;
  const fresh = (s: string) => `${s}#${count++}`;
  const constant = (name: string, t: Tensor) => {
    const k = fresh(name);
    consts.set(k, t);
    return k;
  };
  return {
    consts, nodes, fresh, constant,
    i64: (name: string, v: number[]) => constant(name, fromNumbers('int64', [v.length], v)),
    f32: (name: string, v: number) => constant(name, fromNumbers('float32', [], [v])),
    /** Adds a node; returns its first output's name. */
    add: (op: string, name: string, inputs: string[], attrs: Node['attrs'] = {}, outputs = [fresh(name)]) => {
      nodes.push({ op, name, inputs, outputs, attrs });
      return outputs[0];
    },
  };
}

/** A TF filter, HWIO (convolution) or HWCM (depthwise, channel multiplier M), as OIHW. */
export function filterOihw(w: Tensor, depthwise: boolean): Tensor {
  const [KH, KW, C, M] = w.shape;
  const src = w.data as Float32Array;
  const out = zeros('float32', depthwise ? [C * M, 1, KH, KW] : [M, C, KH, KW]);
  const d = out.data as Float32Array;
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
    const v = src[((kh * KW + kw) * C + c) * M + m];
    if (depthwise) d[((c * M + m) * KH + kh) * KW + kw] = v;
    else d[((m * C + c) * KH + kh) * KW + kw] = v;
  }
  return out;
}
