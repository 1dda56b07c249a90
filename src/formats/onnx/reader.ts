import { MAX_ELEMENTS, ModelImportError } from '../errors.js';

/** One protobuf field: a varint / fixed value, or the byte range of a length-delimited one. */
export interface Field { f: number; wire: number; value: number; start: number; end: number }

const bad = (why: string): never => {
  throw new ModelImportError(`ONNX model: ${why}`);
};

/**
 * The fields of one protobuf message in bytes[start, end). Every length is checked against the
 * message it lies in, so a truncated or corrupted file gives a ModelImportError, never a read
 * past the end or an allocation of what a bad length claims.
 */
export function fields(b: Uint8Array, start = 0, end = b.length): Field[] {
  const out: Field[] = [];
  let p = start;
  // Negative int64 values take 10 bytes; beyond 7 bytes the value is assembled as a BigInt.
  const varint = (): number => {
    const from = p;
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= end) bad(`a varint runs past the end of its message at byte ${p}`);
      const byte = b[p++];
      v += (byte & 0x7f) * mul;
      mul *= 128;
      if (!(byte & 0x80)) {
        if (i < 7) return v;
        let big = 0n;
        for (let j = p - 1; j >= from; j--) big = (big << 7n) | BigInt(b[j] & 0x7f);
        return Number(BigInt.asIntN(64, big));
      }
    }
    return bad(`a varint longer than 10 bytes at byte ${p}`);
  };
  while (p < end) {
    const key = varint();
    const f = Math.floor(key / 8), wire = key % 8;
    if (f <= 0) bad(`field number ${f} at byte ${p}`);
    if (wire === 0) {
      const v = varint();
      out.push({ f, wire, value: v, start: p, end: p });
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (p + n > end) bad(`a fixed field runs past the end at byte ${p}`);
      out.push({ f, wire, value: 0, start: p, end: p + n });
      p += n;
    } else if (wire === 2) {
      const n = varint();
      if (n < 0 || n > end - p) bad(`a field claims ${n} bytes at byte ${p}, its message has ${end - p} left`);
      out.push({ f, wire, value: n, start: p, end: p + n });
      p += n;
    } else bad(`wire type ${wire} at byte ${p}`);
  }
  return out;
}

/** Reads messages lazily: typed accessors over the fields of one message. */
export class Msg {
  readonly list: Field[];
  constructor(readonly b: Uint8Array, start = 0, end = b.length) {
    this.list = fields(b, start, end);
  }

  all(f: number): Field[] {
    return this.list.filter((x) => x.f === f);
  }

  msgs(f: number): Msg[] {
    return this.all(f).map((x) => (x.wire === 2 ? new Msg(this.b, x.start, x.end) : bad(`field ${f} is not a message`)));
  }

  msg(f: number): Msg | undefined {
    return this.msgs(f)[0];
  }

  str(f: number): string {
    const x = this.all(f)[0];
    return x ? new TextDecoder().decode(this.b.subarray(x.start, x.end)) : '';
  }

  strs(f: number): string[] {
    return this.all(f).map((x) => new TextDecoder().decode(this.b.subarray(x.start, x.end)));
  }

  bytes(f: number): Uint8Array | undefined {
    const x = this.all(f)[0];
    return x ? this.b.subarray(x.start, x.end) : undefined;
  }

  int(f: number, fallback = 0): number {
    const x = this.all(f)[0];
    return x ? x.value : fallback;
  }

  float(f: number): number {
    const x = this.all(f)[0];
    return x ? new DataView(this.b.buffer, this.b.byteOffset + x.start, 4).getFloat32(0, true) : 0;
  }

  /** A repeated int64 field, packed or not. */
  ints(f: number): number[] {
    const out: number[] = [];
    for (const x of this.all(f)) {
      if (x.wire === 0) out.push(x.value);
      else if (x.wire === 2) for (const y of fields(packedVarints(this.b, x.start, x.end))) out.push(y.value);
    }
    return out;
  }

  /** A repeated float field, packed or not. */
  floats(f: number): number[] {
    const out: number[] = [];
    for (const x of this.all(f)) {
      const dv = new DataView(this.b.buffer, this.b.byteOffset + x.start, x.end - x.start);
      if (x.wire === 5) out.push(dv.getFloat32(0, true));
      else if (x.wire === 2) for (let i = 0; i + 4 <= x.end - x.start; i += 4) out.push(dv.getFloat32(i, true));
    }
    return out;
  }
}

/** Packed varints re-keyed as field 1 so that `fields` can read them. */
function packedVarints(b: Uint8Array, start: number, end: number): Uint8Array {
  const out: number[] = [];
  let p = start;
  while (p < end) {
    out.push(0x08);
    let byte;
    do {
      byte = b[p++];
      out.push(byte);
    } while (byte & 0x80 && p < end);
  }
  return Uint8Array.from(out);
}

/** ONNX TensorProto data types this reader converts to float32. */
const DTYPES: Record<number, { name: string; bytes: number }> = {
  1: { name: 'float', bytes: 4 }, 2: { name: 'uint8', bytes: 1 }, 3: { name: 'int8', bytes: 1 }, 4: { name: 'uint16', bytes: 2 },
  5: { name: 'int16', bytes: 2 }, 6: { name: 'int32', bytes: 4 }, 7: { name: 'int64', bytes: 8 }, 9: { name: 'bool', bytes: 1 },
  11: { name: 'double', bytes: 8 }, 12: { name: 'uint32', bytes: 4 },
};

export interface OnnxTensor { name: string; dims: number[]; dtype: string; data: Float32Array }

/** A TensorProto as float32 values (integer types converted), sizes checked before allocation. */
export function readTensor(m: Msg): OnnxTensor {
  const name = m.str(8);
  const dims = m.ints(1);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor ${name} has dims [${dims}]`);
  const n = dims.reduce((a, d) => a * d, 1);
  if (n > MAX_ELEMENTS) bad(`tensor ${name} claims ${n} elements (limit ${MAX_ELEMENTS})`);
  const type = m.int(2);
  const t = DTYPES[type] ?? bad(`tensor ${name} has data type ${type} (supported: ${Object.values(DTYPES).map((d) => d.name).join(', ')})`);
  if (m.int(14) === 1) bad(`tensor ${name} keeps its data in an external file (not supported: save the model with its data inside)`);
  const data = new Float32Array(n);
  const raw = m.bytes(9);
  if (raw) {
    if (raw.length !== n * t.bytes) bad(`tensor ${name}: ${raw.length} raw bytes for ${n} ${t.name} values`);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) {
      const p = i * t.bytes;
      data[i] = t.name === 'float' ? dv.getFloat32(p, true) : t.name === 'uint8' || t.name === 'bool' ? raw[p] : t.name === 'int8' ? dv.getInt8(p)
        : t.name === 'uint16' ? dv.getUint16(p, true) : t.name === 'int16' ? dv.getInt16(p, true) : t.name === 'int32' ? dv.getInt32(p, true)
          : t.name === 'uint32' ? dv.getUint32(p, true) : t.name === 'int64' ? Number(dv.getBigInt64(p, true)) : dv.getFloat64(p, true);
    }
  } else {
    const vals = type === 1 ? m.floats(4) : type === 7 ? m.ints(7) : type === 11 ? [] : m.ints(5);
    if (type === 11) {
      for (const x of m.all(10)) {
        const dv = new DataView(m.b.buffer, m.b.byteOffset + x.start, x.end - x.start);
        for (let i = 0; i + 8 <= x.end - x.start; i += 8) vals.push(dv.getFloat64(i, true));
      }
    }
    if (vals.length !== n) bad(`tensor ${name}: ${vals.length} values for ${n} elements`);
    data.set(vals);
  }
  return { name, dims, dtype: t.name, data };
}
