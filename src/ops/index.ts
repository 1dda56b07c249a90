/**
 * Every op's file, registered on import: adding an op is its file here plus a line in each
 * importer's name table (ONNX op names are the IR's own).
 */
import './unary.js';
import './binary.js';
import './clip.js';
import './cast.js';
import './constant.js';
import './shape.js';
import './reshape.js';
import './transpose.js';
import './gather.js';
import './scatter.js';
import './slice.js';
import './concat.js';
import './expand.js';
import './pad.js';
import './range.js';
import './depth-space.js';
import './space-batch.js';
import './conv.js';
import './matmul.js';
import './einsum.js';
import './pool.js';
import './normalization.js';
import './softmax.js';
import './reduce.js';
import './resize.js';
import './quantize.js';
import './nms.js';
import './control.js';
import './loop.js';
import './tensor-list.js';
import './nonzero.js';
import './pcilt-conv.js';

export { registeredOps, opDef, kernelsFor, registerKernel, OpError } from './registry.js';
export type { OpDef, Kernel, OpContext } from './registry.js';
