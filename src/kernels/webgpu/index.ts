/** Every WebGPU kernel of the graph runtime, registered on import (earlier lines take precedence). */
import './qconv-i32-tiled.js';
import './codes-pcilt.js';
import './window-f32.js';
import './gemm-f32-tiled.js';
import './eltwise-f32.js';
import './movement-f32.js';
import './reduce-f32.js';
import './resize-f32.js';
