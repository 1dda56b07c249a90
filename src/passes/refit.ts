import { ArgumentError } from '../errors.js';
import { topoSort, type Graph, type Node } from '../ir/graph.js';
import { sizeOf, type Tensor } from '../ir/tensor.js';
import { activationQuant, layerQuant, quantizePerChannel, type QuantOptions } from '../kernels/wasm/int-conv.js';
import { attrInt, attrInts } from '../ops/registry.js';
import { forEachWindow, windowOf } from '../ops/window.js';
import { roundEven } from '../ops/unary.js';
import { fusedActivation } from '../ops/conv.js';
import { Session } from '../runtime/session.js';
import { gemm } from '../nn/gemm.js';

/**
 * Refitting layers to their quantized inputs (issue 19; docs/perf-notes.md sections 67, 69, 70, 75).
 *
 * Bias correction removes the mean of a layer's output error; a refit removes its linear part. For each
 * layer given (calibration passes the pointwise ones, or with refitLayers 'all' every convolution and dense
 * layer on uniform codes), in run order, each group's weights W' and bias b' minimize, over every output
 * pixel's window of every refit input,
 *
 *   |y - W' x_q - b'|^2 + lambda |W' - W|^2,   lambda = ALPHA x the mean of diag(sum x_q x_q^T),
 *
 * where y is the float layer's output (before its activation) on the float model's input, and x_q is the input
 * the model quantized so far gives the layer (the layers before it already refitted), quantized to the layer's
 * codes. Under a fused ReLU or clip, an output the float layer has beyond a bound only has to stay beyond it (its
 * target is the bound, or the layer's own quantized output where that is beyond it too): without this, refitting
 * MobileNetV2's ReLU6 layers made it worse. One Cholesky solve per group. Sequential, the refit also absorbs the
 * drift of the layers before it. The ridge term pulls towards the float weights: with few inputs (fewer pixels
 * than unknowns) a plain fit matches the calibration inputs and nothing else. The solution is then rounded to the
 * kernels' 8-bit weights with each rounding's error compensated (GPTQ's update), and the bias solved again for the
 * rounded weights: rounded plainly, the refitted weights lost most of what the fit gained.
 */

/** lambda's share of the mean diagonal of the inputs' Gram matrix (best of 0.01, 0.1, 1 in perf-notes 67; 0.1 did worse in 69). */
export const REFIT_ALPHA = 1;
/** Layers with more input channels are left as they are (their Gram matrix and solve grow as C^2 and C^3). */
export const MAX_REFIT_CHANNELS = 2048;

/** A graph of one node reading 'x' (the rest of its inputs constants), with or without its fused activation. */
export function alone(g: Graph, n: Node, activation: boolean): Session {
  const attrs = activation ? n.attrs : Object.fromEntries(Object.entries(n.attrs).filter(([k]) => !k.startsWith('_')));
  const consts = new Map(n.inputs.slice(1).filter((t) => t).map((t) => [t, g.consts.get(t)!] as [string, Tensor]));
  return new Session({
    inputs: [{ name: 'x', dtype: 'float32', shape: null }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: g.opset,
    nodes: [{ ...n, attrs, inputs: ['x', ...n.inputs.slice(1)], outputs: ['y'] }], consts,
  });
}

/** A layer whose output pixels each read one input pixel: a 1 x 1 convolution (no groups, stride 1, no padding) or Gemm. */
export function isPointwise(g: Graph, n: Node): boolean {
  if (n.op === 'Gemm') return true;
  const w = g.consts.get(n.inputs[1]);
  if (n.op !== 'Conv' || w?.shape.length !== 4 || w.shape[2] !== 1 || w.shape[3] !== 1 || attrInt(n, 'group', 1) !== 1) return false;
  const pads = attrInts(n, 'pads', [0, 0, 0, 0])!, strides = attrInts(n, 'strides', [1, 1])!;
  // 'SAME' padding of a 1 x 1 window at stride 1 pads nothing.
  return pads.every((p) => p === 0) && strides.every((s) => s === 1);
}

export interface RefitOptions {
  threads?: number;
  onProgress?: (message: string) => void;
}

/**
 * Refits `nodes` (layers on codes, in run order) as above, on `feeds`. `quant` is the calibrated
 * quantization: each refitted layer gets constants `<node>/refit` (weight) and `<node>/refit-bias` added to the
 * graph and named in quant.layers, and loses its bias correction (its bias absorbs it). Returns the layers refitted.
 */
export async function refit(g: Graph, feeds: Record<string, Tensor>[], nodes: Node[], quant: QuantOptions & { layers: NonNullable<QuantOptions['layers']> }, opts: RefitOptions = {}): Promise<string[]> {
  if (!feeds.length) throw new ArgumentError('calibration refit', feeds, 'at least one input');
  const progress = opts.onProgress ?? (() => undefined), threads = opts.threads;
  const done: string[] = [];
  const order = topoSort(g);
  const producer = new Map<string, Node>();
  for (const n of order) for (const o of n.outputs) producer.set(o, n);
  for (const [k, n] of nodes.entries()) {
    const w = g.consts.get(n.inputs[1])!, b = n.inputs[2] ? g.consts.get(n.inputs[2]) : undefined;
    // Each output channel reads CK inputs (Cg channels x the kernel's taps) of its group's G: one least-squares
    // problem of CK weights and a bias per group, shared by the group's Og outputs.
    const O = w.shape[0], CK = w.data.length / O, n1 = CK + 1, G = n.op === 'Conv' ? attrInt(n, 'group', 1) : 1, Og = O / G;
    const { bits, range, weightBits } = layerQuant(quant, n);
    if (CK > MAX_REFIT_CHANNELS || !range || !Number.isInteger(Og) || (b && b.data.length !== O) || g.inputs.some((i) => i.name === n.inputs[0])) continue;
    progress(`calibrating: refitting weights, layer ${k + 1}/${nodes.length}`);
    const x = n.inputs[0], prefix = new Session(prefixGraph(g, order, producer, x));
    const layer = alone(g, n, false);
    const { scale, zero } = activationQuant(range, bits), L = (1 << bits) - 1, s = Math.fround(scale);
    const A = new Float64Array(G * n1 * n1), R = new Float64Array(G * n1 * Og);
    // A value's code less the zero point (an integer), and the value that stands for.
    const code = (v: number) => Math.min(L, Math.max(0, roundEven(Math.fround(v / s)) + zero)) - zero, q = (v: number) => code(v) * s;
    // Under a fused ReLU or clip, an output the float layer has beyond a bound only needs to stay beyond it: its target
    // is the layer's own quantized output (before the refit) where that is beyond the bound too, else the bound.
    const act = fusedActivation(n), clipped = act.kind === 'relu' || act.kind === 'clip';
    const [lo, hi] = act.kind === 'relu' ? [0, Infinity] : [act.min, act.max];
    const own: QuantOptions = { ...quant, ranges: { x: range }, layers: { [n.name]: { bits } }, biasCorrection: quant.biasCorrection?.[n.name] ? { [n.name]: quant.biasCorrection[n.name] } : {} };
    let fitted = 0;
    const windows = new WindowCache(n, w.shape);
    for (const f of feeds) {
      const xf = (await prefix.run(f, { threads }))[x], xq = (await prefix.run(f, { threads, quant }))[x];
      const y = (await layer.run({ x: xf }, { threads })).y;
      if (clipped) {
        const yd = y.data as Float32Array, pred = (await layer.run({ x: xq }, { threads, quant: own })).y.data as Float32Array;
        for (let i = 0; i < yd.length; i++) if (yd[i] <= lo) yd[i] = Math.min(pred[i], lo); else if (yd[i] >= hi) yd[i] = Math.max(pred[i], hi);
      }
      const ws = windows.of(xq.shape as number[]);
      // Wide windows as a matrix product in wasm (exact: integer codes, sums kept below 2^24), narrow ones in JS.
      if (CK >= GEMM_FROM ? await accumulateByGemm(A, R, ws, windows.identity, xq, y, w.shape, G, code, s, threads) : accumulate(A, R, ws, xq, y, w.shape, G, q)) fitted++;
    }
    const wd = w.data as Float32Array;
    const lambdas = Array.from({ length: G }, (_, gi) => {
      let trace = 0;
      for (let i = 0; i < CK; i++) trace += A[gi * n1 * n1 + i * n1 + i];
      return (REFIT_ALPHA * trace) / CK;
    });
    // A group whose inputs were all zero keeps its float weights (the ridge at the layer's mean lambda); its bias is fitted.
    const mean = lambdas.reduce((a, v) => a + v, 0) / G;
    if (!fitted || !(mean > 0)) continue;
    const weight = new Float32Array(O * CK), bias = new Float32Array(O);
    let solved = true;
    for (let gi = 0; gi < G; gi++) {
      const Ag = A.subarray(gi * n1 * n1, (gi + 1) * n1 * n1), Rg = R.subarray(gi * n1 * Og, (gi + 1) * n1 * Og);
      const lambda = lambdas[gi] > 0 ? lambdas[gi] : mean;
      // Upper triangle to full, the ridge on the weights (not the bias) towards W.
      for (let i = 0; i < n1; i++) for (let j = 0; j < i; j++) Ag[i * n1 + j] = Ag[j * n1 + i];
      for (let i = 0; i < CK; i++) {
        Ag[i * n1 + i] += lambda;
        for (let o = 0; o < Og; o++) Rg[i * Og + o] += lambda * wd[(gi * Og + o) * CK + i];
      }
      const theta = choleskySolve(Ag, Rg, n1, Og);
      if (!theta) {
        solved = false;
        break;
      }
      // Rounded to the kernels' integer weights with the error of each rounding spread over the weights not yet rounded
      // (GPTQ's column order and update, on this group's Gram matrix), then the bias solved again for the rounded
      // weights (its row of the normal equations, which the ridge leaves alone).
      const wg = roundCompensated(theta, Ag, CK, Og, weightBits);
      weight.set(wg, gi * Og * CK);
      for (let o = 0; o < Og; o++) {
        let v = Rg[CK * Og + o];
        for (let c = 0; c < CK; c++) v -= wg[o * CK + c] * Ag[CK * n1 + c];
        bias[gi * Og + o] = v / Ag[CK * n1 + CK];
      }
    }
    if (!solved) continue;
    const wName = unused(g, `${n.name}/refit`), bName = unused(g, `${n.name}/refit-bias`);
    g.consts.set(wName, { dtype: 'float32', shape: [...w.shape], data: weight });
    g.consts.set(bName, { dtype: 'float32', shape: [O], data: bias });
    quant.layers[n.name] = { ...quant.layers[n.name], bits, weight: wName, bias: bName };
    if (quant.biasCorrection) delete quant.biasCorrection[n.name];
    done.push(n.name);
  }
  return done;
}

/** `name`, or with a number appended where the graph already has a constant of that name. */
function unused(g: Graph, name: string): string {
  let k = 1, s = name;
  while (g.consts.has(s)) s = `${name}${++k}`;
  return s;
}

/** The nodes `value` depends on, with every graph input and `value` as the output (the whole graph where control flow hides reads). */
function prefixGraph(g: Graph, order: Node[], producer: Map<string, Node>, value: string): Graph {
  const outputs = [{ name: value, dtype: 'float32' as const, shape: null }];
  if (order.some((n) => Object.values(n.attrs).some((a) => typeof a === 'object' && a !== null && 'nodes' in a))) return { ...g, outputs };
  const need = new Set<Node>(), stack = [value];
  while (stack.length) {
    const n = producer.get(stack.pop()!);
    if (!n || need.has(n)) continue;
    need.add(n);
    stack.push(...n.inputs.filter((t) => t));
  }
  return { ...g, nodes: order.filter((n) => need.has(n)), outputs };
}

/** Each output pixel's window: the input cells it reads (per channel plane) and the kernel taps they meet. */
type Windows = [number[], number[]][];

/** A layer's windows, listed once per input shape (the refit inputs usually share one). */
class WindowCache {
  private key = '';
  private windows: Windows = [];
  /** Every window is the one cell of its own output pixel (a 1 x 1 convolution at stride 1, no padding). */
  identity = false;

  constructor(private readonly node: Node, private readonly wShape: number[]) {}

  of(shape: number[]): Windows {
    const key = shape.join('x');
    if (key === this.key) return this.windows;
    this.key = key;
    this.windows = [];
    if (shape.length === 2) this.windows.push([[0], [0]]);
    else forEachWindow(windowOf(this.node, shape, this.wShape.slice(2)), (_, cells, taps) => this.windows.push([cells, taps]));
    this.identity = shape.length === 4 && this.windows.length === shape[2] * shape[3]
      && this.windows.every(([cells, taps], p) => cells.length === 1 && cells[0] === p && taps[0] === 0);
    return this.windows;
  }
}

/**
 * Adds one input's windows to each group's A (upper triangle of sum [q(x); 1] [q(x); 1]^T, the window's cells in the
 * weight's order: channel of the group, then kernel tap; padding 0) and R (sum [q(x); 1] y^T over the group's
 * outputs). x is the layer's input ([N, C, H, W], or [N, C] for a dense layer), y its float output, q the layer's
 * quantization. Returns false (and adds nothing) where the shapes do not match the layer's geometry.
 */
function accumulate(A: Float64Array, R: Float64Array, windows: Windows, x: Tensor, y: Tensor, wShape: number[], G: number, q: (v: number) => number): boolean {
  const xd = x.data as Float32Array, yd = y.data as Float32Array, [N, C] = x.shape as number[], O = wShape[0], Og = O / G, Cg = C / G;
  const dense = x.shape.length === 2, K = dense ? 1 : wShape[2] * wShape[3], CK = Cg * K, n1 = CK + 1;
  if (Cg * K * O !== sizeOf(wShape) || y.shape[0] !== N || y.shape[1] !== O) return false;
  const S = xd.length / (N * C), P = windows.length;
  if (yd.length !== N * O * P) return false;
  const xq = Float64Array.from(xd, q), out = new Float64Array(Og);
  // The window's nonzero entries (codes after a ReLU are mostly zero): only their products are added (a zero product
  // would add nothing), nnz^2 / 2 of them rather than nnz x n1 / 2. Index order, so each entry of A gets the same sums.
  const at = new Int32Array(n1), val = new Float64Array(n1);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < G; gi++) {
      const Ag = gi * n1 * n1, Rg = gi * n1 * Og;
      for (let p = 0; p < P; p++) {
        const [cells, taps] = windows[p];
        let nnz = 0;
        for (let c = 0; c < Cg; c++) {
          const xo = (n * C + gi * Cg + c) * S;
          // A window's taps come in increasing order, so the entries c * K + tap do too.
          for (let t = 0; t < cells.length; t++) {
            const v = xq[xo + cells[t]];
            if (v !== 0) {
              at[nnz] = c * K + taps[t];
              val[nnz++] = v;
            }
          }
        }
        at[nnz] = CK;
        val[nnz++] = 1;
        for (let o = 0; o < Og; o++) out[o] = yd[(n * O + gi * Og + o) * P + p];
        for (let u = 0; u < nnz; u++) {
          const a = val[u], i = at[u];
          const ai = Ag + i * n1;
          for (let v = u; v < nnz; v++) A[ai + at[v]] += a * val[v];
          const ri = Rg + i * Og;
          for (let o = 0; o < Og; o++) R[ri + o] += a * out[o];
        }
      }
    }
  }
  return true;
}

/** From this many weights per output (a window's cells), accumulateByGemm does the sums. */
const GEMM_FROM = 32;

/**
 * accumulate's sums as matrix products: per group, the windows' codes less the zero point (integers, and a last
 * column of ones) as X [P x n1], A += s^2 X^T X (s and 1 on the last row and column) and R += s X^T y. X^T X runs in
 * float32 in wasm (nn/gemm.ts) on runs of pixels short enough that no sum reaches 2^24, so it is exact; X^T y stays in
 * float64 (float32's rounding changed the refitted weights, docs/perf-notes.md section 75). For 960 channels at 7 x 7,
 * accumulate streams all of A (7 MB) once per pixel.
 */
async function accumulateByGemm(A: Float64Array, R: Float64Array, windows: Windows, identity: boolean, x: Tensor, y: Tensor, wShape: number[], G: number,
  code: (v: number) => number, s: number, threads?: number): Promise<boolean> {
  const xd = x.data as Float32Array, yd = y.data as Float32Array, [N, C] = x.shape as number[], O = wShape[0], Og = O / G, Cg = C / G;
  const dense = x.shape.length === 2, K = dense ? 1 : wShape[2] * wShape[3], CK = Cg * K, n1 = CK + 1;
  if (Cg * K * O !== sizeOf(wShape) || y.shape[0] !== N || y.shape[1] !== O) return false;
  const S = xd.length / (N * C), P = windows.length;
  if (yd.length !== N * O * P) return false;
  const codes = new Float32Array(xd.length);
  let largest = 0;
  for (let i = 0; i < xd.length; i++) largest = Math.max(largest, Math.abs((codes[i] = code(xd[i]))));
  // Pixels per product: each entry of X^T X adds at most `largest^2` per pixel.
  const run = Math.max(1, Math.min(P, Math.floor(2 ** 24 / Math.max(1, largest * largest))));
  const X = new Float32Array(run * n1), gram = new Float32Array(n1 * n1), Y = new Float32Array(Og * run);
  const at = new Int32Array(run), val = new Float64Array(run);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < G; gi++) {
      const Ag = gi * n1 * n1, Rg = gi * n1 * Og;
      for (let p0 = 0; p0 < P; p0 += run) {
        const len = Math.min(run, P - p0);
        if (identity) {
          // A 1 x 1 layer: X is the planes transposed.
          for (let c = 0; c < Cg; c++) {
            const xo = (n * C + gi * Cg + c) * S + p0;
            for (let p = 0; p < len; p++) X[p * n1 + c] = codes[xo + p];
          }
          for (let p = 0; p < len; p++) X[p * n1 + CK] = 1;
        } else {
          X.fill(0);
          for (let p = 0; p < len; p++) {
            const [cells, taps] = windows[p0 + p], row = p * n1;
            for (let c = 0; c < Cg; c++) {
              const xo = (n * C + gi * Cg + c) * S;
              for (let t = 0; t < cells.length; t++) X[row + c * K + taps[t]] = codes[xo + cells[t]];
            }
            X[row + CK] = 1;
          }
        }
        for (let o = 0; o < Og; o++) Y.set(yd.subarray((n * O + gi * Og + o) * P + p0, (n * O + gi * Og + o) * P + p0 + len), o * len);
        // X is stored [len][n1]: X^T X with A transposed. y as [Og][len].
        await gemm(X, X, gram, n1, n1, len, { transA: true, threads });
        // X^T y in float64 (in float32 its rounding moved the refitted weights: docs/perf-notes.md section 75), a column of X
        // at a time.
        for (let i = 0; i < n1; i++) {
          // The column's nonzero entries (codes after a ReLU are mostly zero; a zero adds nothing to the sums).
          let nnz = 0;
          for (let p = 0; p < len; p++) {
            const v = X[p * n1 + i];
            if (v !== 0) {
              at[nnz] = p;
              val[nnz++] = v;
            }
          }
          if (!nnz) continue;
          const ri = Rg + i * Og, si = i < CK ? s : 1;
          for (let o = 0; o < Og; o++) {
            let sum = 0;
            for (let k = 0, yo = o * len; k < nnz; k++) sum += val[k] * Y[yo + at[k]];
            R[ri + o] += sum * si;
          }
        }
        for (let i = 0; i < n1; i++) {
          const si = i < CK ? s : 1;
          for (let j = i; j < n1; j++) A[Ag + i * n1 + j] += gram[i * n1 + j] * si * (j < CK ? s : 1);
        }
      }
    }
  }
  return true;
}

/**
 * The weights of theta (rows 0..C-1: [C x O], input channel major) as the kernels will run them: per output channel
 * symmetric integers of `bits` bits at scale max |w| / (2^(bits-1) - 1), returned dequantized (float32, [O x C]; the
 * kernels quantize them again to the same integers). Input channels are rounded in order; each rounding's error is
 * compensated on the channels after it through the inverse of the inputs' centred Gram matrix with the ridge (the
 * objective the fit minimized, the bias free; 1% of the mean diagonal as GPTQ dampens did worse on held-out photos), as GPTQ does,
 * so that the rounded weights' outputs stay close to the fitted ones. A channel whose largest integer would not reach
 * the top of the range (the kernels would then pick another scale) is rounded plainly instead.
 */
function roundCompensated(theta: Float64Array, A: Float64Array, C: number, O: number, bits: number): Float32Array {
  const n1 = C + 1, top = 2 ** (bits - 1) - 1;
  const H = new Float64Array(C * C);
  // The bias is solved again afterwards: what the weights' errors cost is their centred part (the Schur complement).
  for (let i = 0; i < C; i++) for (let j = 0; j < C; j++) H[i * C + j] = A[i * n1 + j] - (A[i * n1 + C] * A[C * n1 + j]) / A[C * n1 + C];
  const inverse = inverseLower(H, C);
  // inverse = U^T U: U[i][j] = L[j][i] of its lower factor (cholesky reads the lower triangle only).
  const L = inverse && cholesky(inverse, C);
  const out = new Float32Array(O * C), w = new Float64Array(C);
  for (let o = 0; o < O; o++) {
    let m = 0;
    for (let c = 0; c < C; c++) m = Math.max(m, Math.abs(Math.fround(theta[c * O + o])));
    const s = m > 0 ? m / top : 1;
    const plain = () => {
      const { q, scales } = quantizePerChannel(Float32Array.from({ length: C }, (_, c) => theta[c * O + o]), 1, top);
      for (let c = 0; c < C; c++) out[o * C + c] = Math.fround(q[c] * scales[0]);
    };
    if (!L) {
      plain();
      continue;
    }
    for (let c = 0; c < C; c++) w[c] = theta[c * O + o];
    let reached = 0;
    for (let i = 0; i < C; i++) {
      const q = Math.max(-top, Math.min(top, Math.round(w[i] / s)));
      reached = Math.max(reached, Math.abs(q));
      const e = (w[i] - q * s) / L[i * C + i];
      for (let j = i + 1; j < C; j++) w[j] -= e * L[j * C + i];
      out[o * C + i] = Math.fround(q * s);
    }
    if (reached !== top) plain();
  }
  return out;
}

/** The lower Cholesky factor L of A (n x n symmetric positive definite; A = L L^T); null where A is not positive definite. */
function cholesky(A: Float64Array, n: number): Float64Array | null {
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = A[j * n + j];
    for (let k = 0; k < j; k++) d -= L[j * n + k] ** 2;
    if (!(d > 0)) return null;
    d = Math.sqrt(d);
    L[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let v = A[i * n + j];
      for (let k = 0; k < j; k++) v -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = v / d;
    }
  }
  return L;
}

/**
 * The lower triangle of A^-1 (A n x n symmetric positive definite; the upper triangle left 0), by Cholesky; null where
 * A is not positive definite. choleskySolve(A, I) does the same sums for these entries, but also every product with an
 * entry that is still 0 and the upper triangle: about 3x the work.
 */
function inverseLower(A: Float64Array, n: number): Float64Array | null {
  const L = cholesky(A, n);
  if (!L) return null;
  const X = new Float64Array(n * n);
  // L Z = I: row i of Z is 0 right of the diagonal.
  for (let i = 0; i < n; i++) {
    X[i * n + i] = 1;
    for (let k = 0; k < i; k++) {
      const l = L[i * n + k];
      if (l !== 0) for (let c = 0; c <= k; c++) X[i * n + c] -= l * X[k * n + c];
    }
    const d = L[i * n + i];
    for (let c = 0; c <= i; c++) X[i * n + c] /= d;
  }
  // L^T X = Z, entries c <= i only: each reads rows below i at the same column, already done.
  for (let i = n - 1; i >= 0; i--) {
    for (let k = i + 1; k < n; k++) {
      const l = L[k * n + i];
      if (l !== 0) for (let c = 0; c <= i; c++) X[i * n + c] -= l * X[k * n + c];
    }
    const d = L[i * n + i];
    for (let c = 0; c <= i; c++) X[i * n + c] /= d;
  }
  return X;
}

/** X with A X = B (A n x n symmetric positive definite, B n x m), by Cholesky; null where A is not positive definite. */
export function choleskySolve(A: Float64Array, B: Float64Array, n: number, m: number): Float64Array | null {
  const L = cholesky(A, n);
  if (!L) return null;
  const X = Float64Array.from(B);
  // L Z = B, then L^T X = Z, all m columns at once (rows of X are contiguous).
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < i; k++) {
      const l = L[i * n + k];
      if (l !== 0) for (let c = 0; c < m; c++) X[i * m + c] -= l * X[k * m + c];
    }
    const d = L[i * n + i];
    for (let c = 0; c < m; c++) X[i * m + c] /= d;
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let k = i + 1; k < n; k++) {
      const l = L[k * n + i];
      if (l !== 0) for (let c = 0; c < m; c++) X[i * m + c] -= l * X[k * m + c];
    }
    const d = L[i * n + i];
    for (let c = 0; c < m; c++) X[i * m + c] /= d;
  }
  return X;
}
