// The library's wasm kernels (scripts/build-wasm.mjs compiles this entry three ways: SIMD128,
// SIMD128 + relaxed SIMD, single-threaded). Memory is owned by the JS side: every argument is a byte
// offset into the (shared) memory; the integer convolutions read a parameter record (params.ts,
// generated from src/backends/wasm/params.ts). One file per kernel family, named as XNNPACK names
// its kernels: operation, data types, tile, instruction set.
export { pcilt_rows, pcilt_grouped_rows, scratch_bytes } from './pcilt-bitserial-i16rows';
export { direct_rows } from './qconv-u8s8-i32dot-4x8';
export { direct8_rows } from './qconv-u8s8-i16relaxeddot-4x8';
export { depthwise_rows } from './qdwconv-u8s8';
export { pad_input, pack_groups, quantize_pad, quantize_levels_pad, quantize_pad_channels, quantize_weights, range_f32, layout_direct_weights } from './pack';
export { sgemm, sgemm_bias, sgemm_conv, matmul_batched_f32, sgemm_bias_act, conv_groups_f32, pack_conv_panels, pack_panels, transpose_f32 } from './f32-gemm-4x8-minmax';
export { depthwise_f32_planes } from './f32-dwconv';
export { conv_direct_f32 } from './f32-conv-direct-4x8-minmax';
export { pool_f32, sum_middle_f32 } from './f32-pool';
export { resize_axis_f32 } from './f32-resize';
export { unary_f32, binary_f32, affine_planes_f32 } from './f32-vunary-vbinary';
export { softmax_rows_f32, layernorm_rows_f32 } from './f32-softmax-layernorm-rows';
export { copy_strided_x32 } from './x32-copy-strided';
export { hash_fnv4_x32 } from './x32-hash-fnv4';
