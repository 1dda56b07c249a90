import { zeros, type Tensor } from '../../ir/tensor.js';
import { registerKernel, type Inputs } from '../../ops/registry.js';
import type { Node } from '../../ir/graph.js';

/**
 * QuantizeLinear and DequantizeLinear with one scale and zero point for the whole tensor (what
 * activations use) as single typed-array loops; the reference (per-axis closures over any
 * dtype, src/ops/quantize.ts) is their twin.
 */

const LIMITS: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127] };
const MAGIC = 6755399441055744;

/** Scalar float32 scale and, if present, a scalar uint8/int8 zero point. */
function perTensor(ins: Inputs): boolean {
  const [, s, z] = ins;
  return s?.dtype === 'float32' && s.data.length === 1 && (!z || (z.data.length === 1 && z.dtype in LIMITS));
}

registerKernel({
  op: 'QuantizeLinear', backend: 'js', variant: 'per-tensor',
  supports: (ins) => ins[0]?.dtype === 'float32' && perTensor(ins),
  async run(ins: Inputs): Promise<Tensor[]> {
    const x = ins[0]!.data as Float32Array, s = (ins[1]!.data as Float32Array)[0], z = ins[2] ? Number(ins[2].data[0]) : 0;
    const dtype = ins[2]?.dtype ?? 'uint8';
    const y = zeros(dtype, ins[0]!.shape);
    const shift = z + (dtype === 'int8' ? 128 : 0);
    if (shift % 2 === 0) {
      // A Uint8ClampedArray store rounds half to even and saturates to 0..255 (ToUint8Clamp) without
      // the branches a rounding loop mispredicts (Math.round is slower still). Adding an even shift
      // before it keeps ties where they were; int8 codes are stored shifted by 128 and flipped back.
      const bytes = new Uint8ClampedArray(y.data.buffer, y.data.byteOffset, y.data.length);
      // NaN stores as code 0, as in the reference.
      const nan = dtype === 'int8' ? 128 : 0;
      for (let i = 0; i < x.length; i++) {
        const u = Math.fround(x[i] / s);
        bytes[i] = u === u ? u + shift : nan;
      }
      if (dtype === 'int8') {
        const raw = new Uint8Array(y.data.buffer, y.data.byteOffset, y.data.length);
        for (let i = 0; i < raw.length; i++) raw[i] ^= 0x80;
      }
    } else {
      // Odd zero points: u + 1.5 * 2^52 - 1.5 * 2^52 is u rounded half to even (|u| < 2^51; beyond, it saturates anyway).
      const [lo, hi] = LIMITS[dtype], yd = y.data as Uint8Array | Int8Array;
      for (let i = 0; i < x.length; i++) {
        const q = Math.fround(x[i] / s) + MAGIC - MAGIC + z;
        yd[i] = q < lo ? lo : q > hi ? hi : q;
      }
    }
    return [y];
  },
});

registerKernel({
  op: 'DequantizeLinear', backend: 'js', variant: 'per-tensor',
  supports: (ins) => (ins[0]?.dtype === 'uint8' || ins[0]?.dtype === 'int8') && perTensor(ins) && (!ins[2] || ins[2].dtype === ins[0].dtype),
  async run(ins: Inputs, _node: Node): Promise<Tensor[]> {
    const x = ins[0]!.data as Uint8Array | Int8Array, s = (ins[1]!.data as Float32Array)[0], z = ins[2] ? Number(ins[2].data[0]) : 0;
    const y = zeros('float32', ins[0]!.shape), yd = y.data as Float32Array;
    for (let i = 0; i < x.length; i++) yd[i] = (x[i] - z) * s;
    return [y];
  },
});
