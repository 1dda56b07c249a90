import { numberAt } from '../ir/tensor.js';
import { mapBroadcast } from './broadcast.js';
import { attrFloat, checkDType, defineOp, need } from './registry.js';

defineOp({
  op: 'Clip', inputs: [1, 3],
  run(ins, node) {
    const x = need(ins, 0, node);
    checkDType(node, x, ['float32', 'int32', 'int64', 'uint8', 'int8']);
    // Opset 11 on: min and max are optional inputs; before: attributes.
    const lo = ins[1] ? numberAt(ins[1], 0) : attrFloat(node, 'min', -Infinity);
    const hi = ins[2] ? numberAt(ins[2], 0) : attrFloat(node, 'max', Infinity);
    return [mapBroadcast(node, [x], x.dtype, (v) => {
      const a = v < lo ? lo : v;
      return a > hi ? hi : a;
    })];
  },
});
