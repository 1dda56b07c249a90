import { getGpu } from '../backends/webgpu/device.js';
import { ArgumentError, FasterCnnError, KernelError } from '../errors.js';
import { getEngine } from '../backends/wasm/engine.js';
import type { Graph, Node } from '../ir/graph.js';
import { sizeOf, type Tensor } from '../ir/tensor.js';
import { median } from '../backends/auto.js';
import { kernelsFor, opDef, fail, type Kernel, type OpContext } from '../ops/registry.js';
import { copyOf } from '../tensor.js';
import { gpuKernelsFor, isGpu, GpuRun, TooLargeForBinding, type GpuKernel, type GpuTensor, type Meta } from '../kernels/webgpu/gpu.js';
import '../kernels/webgpu/index.js';
import { freeData, ownCopy } from './memory.js';
import { DEAD, deadNode, isDead, predicateOf, route, ROUTING } from '../ops/control.js';
import type { NodeTiming, RunOptions } from './session.js';
import { layerInputs } from '../kernels/wasm/int-conv.js';

/** Each node's engine for one input-shape signature: a WebGPU kernel, or a CPU kernel (null: the reference). */
type Step = { gpu: GpuKernel; rivals?: GpuKernel[] } | { cpu?: Kernel | null };

/**
 * Runs a graph with its tensors on the WebGPU device: one upload per input, one read-back per
 * output. Nodes without a WebGPU kernel run on the CPU (the wasm kernels or the reference); the
 * values they read are copied down and what they make goes back up when a GPU kernel reads it,
 * and `profile` counts those bytes per node. Plans are kept per input-shape signature.
 */
export class GpuExecutor {
  private readonly plans = new Map<string, Step[]>();

  constructor(private readonly graph: Graph, private readonly nodes: Node[], private readonly lastUse: Map<string, number>,
    private readonly isConstant: (t: Tensor) => boolean) {}

  async run(feeds: Record<string, Tensor>, key: string, opts: RunOptions): Promise<Record<string, Tensor>> {
    const g = this.graph;
    // No adapter (or no 'webgpu' package in Node): a typed error that says why, before any work.
    const gctx = await getGpu().catch((e: Error) => {
      throw e instanceof FasterCnnError ? e : new ArgumentError("options.backend", 'webgpu', `an engine this machine has (WebGPU: ${e.message})`);
    });
    if (gctx.lost) throw new KernelError(gctx.lost);
    // CPU kernels the plan falls back to use the wasm engine where it runs.
    if (!this.plans.has(key)) await getEngine().catch(() => undefined);
    const run = new GpuRun(gctx, this.isConstant);
    let plan = this.plans.get(key);
    const fresh = !plan;
    plan ??= [];
    const ctx: OpContext = { opset: g.opset, threads: opts.threads, quant: opts.quant, constant: this.isConstant, device: { dot4: gctx.dot4 } };
    // A value is on the device, on the CPU, or both (a device value a CPU kernel read).
    const dev = new Map<string, GpuTensor>(), host = new Map<string, Tensor>();
    const outputs = new Set(g.outputs.map((o) => o.name));
    // Device buffers are shared by values that alias them (Reshape and kin): freed when the last goes.
    const holders = new Map<GPUBuffer, number>();
    const hold = (t: GpuTensor) => holders.set(t.buffer, (holders.get(t.buffer) ?? 0) + 1);
    // Float inputs go up once, at the start (not counted as crossings); others stay on the host for the CPU kernels.
    for (const i of g.inputs) {
      const f = feeds[i.name];
      host.set(i.name, f);
      if (f.dtype === 'float32') {
        const d = run.onDevice(f, false);
        dev.set(i.name, d);
        hold(d);
      }
    }
    const drop = (t: GpuTensor) => {
      const n = (holders.get(t.buffer) ?? 0) - 1;
      if (n > 0) holders.set(t.buffer, n);
      else if (holders.delete(t.buffer)) run.free(t.buffer);
    };
    const keep = new Set(opts.keep ?? []), kept = new Map<string, Tensor>();
    for (const name of keep) if (feeds[name]) kept.set(name, feeds[name]);
    try {
      for (let i = 0; i < this.nodes.length; i++) {
        const n = this.nodes[i];
        const t0 = performance.now(), crossed0 = run.crossedBytes;
        const names = layerInputs(opts.quant, n, g.consts);
        const args = names.map((t) => (t === '' ? undefined : dev.get(t) ?? host.get(t) ?? g.consts.get(t)));
        // Conditional branches (src/ops/control.ts): a node on the branch not taken runs nothing; routing
        // nodes pass values on where they live (a device value stays on the device).
        const dead = deadNode(n, args);
        const routing = !dead && ROUTING.has(n.op);
        if (plan[i] === undefined && !dead && !routing) plan[i] = this.choose(n, args, ctx, gctx.device.limits.maxStorageBufferBindingSize);
        let step = plan[i] ?? { cpu: null };
        let outs: (Tensor | GpuTensor)[] | null = null;
        if (dead) outs = n.outputs.map(() => DEAD);
        else if (routing) {
          const p = args[1];
          const pred = n.op === 'Switch' && isGpu(p) ? (await run.download([p as GpuTensor]))[0] : p as Tensor | undefined;
          outs = route(n, args, () => predicateOf(n, pred));
        } else if ('gpu' in step) {
          outs = await this.onGpu(step, args, n, ctx, run);
          // An output too large for the device: the CPU runs the node, in this call and the next.
          if (!outs) plan[i] = step = { cpu: undefined };
        }
        if (!outs && !('gpu' in step)) {
          // The CPU kernels read device values copied down (once per value).
          const down = names.filter((t, j) => t !== '' && isGpu(args[j]) && !host.has(t));
          const got = await run.download(down.map((t) => dev.get(t)!));
          down.forEach((t, j) => host.set(t, got[j]));
          const ins = names.map((t) => (t === '' ? undefined : host.get(t) ?? g.consts.get(t)));
          if (step.cpu === undefined) step.cpu = kernelsFor(n.op).find((x) => x.supports(ins, n, ctx)) ?? null;
          outs = step.cpu ? await step.cpu.run(ins, n, ctx) : await opDef(n.op)!.run(ins, n, ctx);
        }
        const made = outs!;
        n.outputs.forEach((o, j) => {
          if (o === '') return;
          const v = made[j] ?? fail(n, `produced no output ${j} (${o})`);
          if (isGpu(v)) {
            dev.set(o, v);
            hold(v);
          } else host.set(o, v);
        });
        if (opts.profile) {
          await run.settle();
          const shape = made[0]?.shape ?? [];
          const kernel = dead ? 'dead' : routing ? 'route' : 'gpu' in step ? `webgpu:${step.gpu.variant}` : step.cpu ? `${step.cpu.backend}:${step.cpu.variant}` : 'ref';
          const timing: NodeTiming = { node: n.name, op: n.op, kernel, ms: performance.now() - t0, shape };
          if (run.crossedBytes > crossed0) timing.crossedBytes = run.crossedBytes - crossed0;
          opts.profile.push(timing);
        }
        for (const o of n.outputs) if (keep.has(o) && host.has(o)) kept.set(o, { ...host.get(o)!, data: copyOf(host.get(o)!.data) });
        for (const t of n.inputs) {
          if (this.lastUse.get(t) !== i || outputs.has(t) || keep.has(t)) continue;
          const d = dev.get(t);
          if (d) {
            dev.delete(t);
            drop(d);
          }
          const h = host.get(t);
          if (h && !g.inputs.some((x) => x.name === t)) {
            host.delete(t);
            if (![...host.values()].some((v) => v.data === h.data)) freeData(h.data);
          }
        }
      }
      if (fresh) this.plans.set(key, plan);
      // Outputs and kept inner values still on the device come back in one submission.
      const back = [...new Set([...outputs, ...keep])].filter((o) => dev.has(o) && !host.has(o));
      const got = await run.download(back.map((o) => dev.get(o)!), false);
      back.forEach((o, j) => host.set(o, got[j]));
      const result: Record<string, Tensor> = {};
      for (const name of keep) {
        const v = kept.get(name) ?? host.get(name);
        if (v) result[name] = v;
      }
      for (const o of g.outputs) {
        const v = host.get(o.name) ?? g.consts.get(o.name) ?? feeds[o.name];
        if (isDead(v)) throw new KernelError(`output ${o.name} lies on a conditional branch this call did not take`);
        result[o.name] = ownCopy(v, g.consts.get(o.name) === v);
      }
      if (opts.gpu) {
        opts.gpu.crossedBytes = run.crossedBytes;
        opts.gpu.dispatches = run.dispatches;
      }
      return result;
    } finally {
      run.submit();
      for (const [b] of holders) run.free(b);
      for (const v of host.values()) freeData(v.data);
    }
  }

  /**
   * The fastest of several kernels for a node, on its real inputs: each run once (its pipeline
   * compiles), then timed 3 times to the queue's completion; the median decides (ties: the first
   * registered). Layers on codes record what each measured in `quant.choices`, as 'auto' does on the CPU.
   */
  private async measure(ks: GpuKernel[], args: (Tensor | GpuTensor | undefined)[], n: Node, ctx: OpContext, run: GpuRun): Promise<GpuKernel> {
    await run.settle();
    const times: number[] = [];
    for (const k of ks) {
      const ms: number[] = [];
      for (let r = 0; r < 4; r++) {
        const t0 = performance.now();
        const outs = k.run(args, n, ctx, run);
        await run.settle();
        if (r) ms.push(performance.now() - t0);
        for (const o of outs) if (isGpu(o) && !args.some((a) => isGpu(a) && a.buffer === o.buffer)) run.free(o.buffer);
      }
      times.push(median(ms));
    }
    let best = 0;
    times.forEach((t, i) => {
      if (t < times[best] * 0.95) best = i;
    });
    const choices = ctx.quant?.choices;
    if (choices) choices.set(n.name, { ...choices.get(n.name), candidates: Object.fromEntries(ks.map((k, i) => [`webgpu:${k.variant}`, times[i]])) });
    return ks[best];
  }

  /**
   * A node's outputs from its WebGPU kernel (the rivals measured on its first run), or null where an
   * output is larger than one storage binding may be (an 8x upscale's last layers): the CPU runs it.
   */
  private async onGpu(step: { gpu: GpuKernel; rivals?: GpuKernel[] }, args: (Tensor | GpuTensor | undefined)[], n: Node, ctx: OpContext, run: GpuRun): Promise<(Tensor | GpuTensor)[] | null> {
    try {
      if (step.rivals) {
        step.gpu = await this.measure(step.rivals, args, n, ctx, run);
        delete step.rivals;
      }
      return step.gpu.run(args, n, ctx, run);
    } catch (e) {
      if (e instanceof TooLargeForBinding) return null;
      throw e;
    }
  }

  /** A node's engine: the first WebGPU kernel that takes its inputs, else the CPU's choice. */
  private choose(n: Node, args: (Tensor | GpuTensor | undefined)[], ctx: OpContext, limit: number): Step {
    const meta = args.map((a): Meta | undefined => (a === undefined ? undefined : isGpu(a) ? { dtype: a.dtype, shape: a.shape, gpu: true } : a));
    // A tensor larger than one binding may be (128 MiB on some adapters) stays on the CPU.
    if (meta.some((m) => m && sizeOf(m.shape) * 4 > limit)) return {};
    const ks = gpuKernelsFor(n.op).filter((x) => x.supports(meta, n, ctx));
    // Several kernels for one node (layers on codes: int32 GEMM, dot4U8Packed): measured when it first runs.
    // Else the CPU kernel is chosen when the node first runs, on its real inputs.
    return ks.length ? { gpu: ks[0], ...(ks.length > 1 ? { rivals: ks } : {}) } : {};
  }
}
