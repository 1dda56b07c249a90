/** A minimal protocol-buffers writer: enough to emit ONNX models (varints, lengths, packed arrays). */
export class ProtoWriter {
    chunks = [];
    buf = new Uint8Array(256);
    pos = 0;
    ensure(n) {
        if (this.pos + n <= this.buf.length)
            return;
        this.chunks.push(this.buf.subarray(0, this.pos));
        this.buf = new Uint8Array(Math.max(256, n));
        this.pos = 0;
    }
    varint(v) {
        let x = BigInt.asUintN(64, BigInt(v));
        this.ensure(10);
        while (x >= 0x80n) {
            this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
            x >>= 7n;
        }
        this.buf[this.pos++] = Number(x);
    }
    tag(field, wire) {
        this.varint((field << 3) | wire);
    }
    int(field, v) {
        this.tag(field, 0);
        this.varint(v);
        return this;
    }
    float(field, v) {
        this.tag(field, 5);
        this.ensure(4);
        new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.pos, v, true);
        this.pos += 4;
        return this;
    }
    bytes(field, b) {
        this.tag(field, 2);
        this.varint(b.length);
        this.ensure(b.length);
        this.buf.set(b, this.pos);
        this.pos += b.length;
        return this;
    }
    string(field, s) {
        return this.bytes(field, new TextEncoder().encode(s));
    }
    message(field, build) {
        const w = new ProtoWriter();
        build(w);
        return this.bytes(field, w.finish());
    }
    /** Repeated int64 as a packed field. */
    packedInts(field, vs) {
        const w = new ProtoWriter();
        for (let i = 0; i < vs.length; i++)
            w.varint(vs[i]);
        return this.bytes(field, w.finish());
    }
    /** Repeated float as a packed field. */
    packedFloats(field, vs) {
        const b = new Uint8Array(vs.length * 4);
        const dv = new DataView(b.buffer);
        for (let i = 0; i < vs.length; i++)
            dv.setFloat32(i * 4, vs[i], true);
        return this.bytes(field, b);
    }
    finish() {
        const parts = [...this.chunks, this.buf.subarray(0, this.pos)];
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
            out.set(p, o);
            o += p.length;
        }
        return out;
    }
}
//# sourceMappingURL=protobuf.js.map