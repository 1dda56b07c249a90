import { attrInt, attrStr, defineOp, fail, need } from './registry.js';
import { take, viewIndex } from './take.js';

/**
 * DepthToSpace and SpaceToDepth are reshape-transpose-reshape: written as one strided view
 * over the 6-d shape they pass through.
 */
defineOp({
  op: 'DepthToSpace', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node);
    if (x.shape.length !== 4) fail(node, `needs a rank-4 input, got [${x.shape}]`);
    const b = attrInt(node, 'blocksize', 0), mode = attrStr(node, 'mode', 'DCR', ['DCR', 'CRD']);
    const [N, C, H, W] = x.shape;
    if (b < 1 || C % (b * b)) fail(node, `blocksize ${b} does not divide ${C} channels into b*b`);
    const c = C / (b * b);
    // Output [N, c, H, b, W, b] reads input channel (DCR) by1*b*c + bx*c + ci or (CRD) ci*b*b + by*b + bx.
    const chan = mode === 'DCR' ? [H * W, b * c * H * W, c * H * W] : [b * b * H * W, b * H * W, H * W];
    const shape = [N, c, H, b, W, b];
    const strides = [C * H * W, chan[0], W, chan[1], 1, chan[2]];
    return [take(x, [N, c, H * b, W * b], viewIndex(shape, 0, strides))];
  },
});

defineOp({
  op: 'SpaceToDepth', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node);
    if (x.shape.length !== 4) fail(node, `needs a rank-4 input, got [${x.shape}]`);
    const b = attrInt(node, 'blocksize', 0);
    const [N, C, H, W] = x.shape;
    if (b < 1 || H % b || W % b) fail(node, `blocksize ${b} does not divide ${H}x${W}`);
    // Output channel (by * b + bx) * C + c, pixel (h, w) reads input (c, h * b + by, w * b + bx).
    const shape = [N, b, b, C, H / b, W / b];
    const strides = [C * H * W, W, 1, H * W, b * W, b];
    return [take(x, [N, C * b * b, H / b, W / b], viewIndex(shape, 0, strides))];
  },
});
