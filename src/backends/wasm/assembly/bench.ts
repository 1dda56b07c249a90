// The micro-benchmarks' entry (builds bench-simd and bench-relaxed): instantiated by `faster-cnn bench`'s
// profile over the engine's memory, never by the library.
export { lookup_bench, swizzle_bench, swizzle_stream_bench } from './micro-bench';
