/** Every fast kernel, registered on import (one line per kernel family; earlier lines take precedence). */
import './wasm/int-conv.js';
import './wasm/pcilt-conv.js';
import './wasm/float.js';
import './wasm/eltwise.js';
import './wasm/resize.js';
import './wasm/softmax-layernorm.js';
import './wasm/transpose.js';
import './wasm/concat.js';
import './wasm/reduce.js';
import './js/elementwise.js';
import './js/reduce.js';
import './js/movement.js';
import './js/select.js';
import './js/softmax.js';
import './js/quantize.js';
