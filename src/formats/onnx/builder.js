import { ProtoWriter } from './protobuf.js';
/** ONNX TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT16: 5, INT32: 6, INT64: 7 };
export function tensor(name, dataType, dims, values) {
    return { name, dataType, dims, raw: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice() };
}
function writeTensor(w, t) {
    w.packedInts(1, t.dims).int(2, t.dataType).string(8, t.name).bytes(9, t.raw);
}
function writeValue(w, v) {
    w.string(1, v.name).message(2, (type) => type.message(1, (tt) => tt.int(1, v.dataType).message(2, (shape) => {
        for (const d of v.dims)
            shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
    })));
}
function writeAttr(w, name, a) {
    w.string(1, name);
    if (typeof a === 'number')
        w.int(3, a).int(20, 2);
    else if (typeof a === 'string')
        w.string(4, a).int(20, 3);
    else if (Array.isArray(a))
        w.packedInts(8, a).int(20, 7);
    else if ('floats' in a)
        w.packedFloats(7, a.floats).int(20, 6);
    else
        w.float(2, a.float).int(20, 1);
}
/** Serialises a model (IR version 8, default-domain opset `opset`). */
export function encodeModel(graph, opset = 13, producer = 'faster-cnn') {
    const w = new ProtoWriter();
    w.int(1, 8).string(2, producer).string(3, '0.1.0');
    w.message(8, (o) => o.string(1, '').int(2, opset));
    w.message(7, (g) => {
        for (const n of graph.nodes) {
            g.message(1, (nw) => {
                for (const i of n.inputs)
                    nw.string(1, i);
                for (const o of n.outputs)
                    nw.string(2, o);
                if (n.name)
                    nw.string(3, n.name);
                nw.string(4, n.op);
                for (const [k, v] of Object.entries(n.attrs ?? {}))
                    nw.message(5, (aw) => writeAttr(aw, k, v));
                if (n.domain)
                    nw.string(7, n.domain);
            });
        }
        g.string(2, graph.name);
        for (const t of graph.initializers)
            g.message(5, (tw) => writeTensor(tw, t));
        for (const v of graph.inputs)
            g.message(11, (vw) => writeValue(vw, v));
        for (const v of graph.outputs)
            g.message(12, (vw) => writeValue(vw, v));
    });
    return w.finish();
}
//# sourceMappingURL=builder.js.map