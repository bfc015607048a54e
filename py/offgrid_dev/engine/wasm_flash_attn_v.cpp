// Offgrid: flash attention's V step for a q8_0 KV cache on WebAssembly. engine_build.py puts this
// into llama.cpp's ggml-cpu/ops.cpp ahead of ggml_compute_forward_flash_attn_ext_f16_one_chunk,
// which then calls it for q8_0 V rows instead of dequantize_row_q8_0 + ggml_vec_mad_f32.
// Upstream dequantizes each cached V row into a scratch buffer and reads it back, once per cached
// position per generated token: a quarter of the attention time in a profile at 600 tokens of
// context (bench/wasm_profile). Here both happen in registers. The arithmetic is upstream's, in
// the same order (q * d, then * v, then + y, no fused multiply-add), so results are bit-identical.
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>

struct offgrid_block_q8_0 { ggml_fp16_t d; int8_t qs[32]; };
static_assert(sizeof(offgrid_block_q8_0) == 34, "ggml's block_q8_0 layout changed");

// y[0..n) += dequantize(x) * v, for n a multiple of 32.
static void offgrid_vec_mad_q8_0(const int n, float * GGML_RESTRICT y, const void * GGML_RESTRICT vx, const float v) {
    const offgrid_block_q8_0 * x = (const offgrid_block_q8_0 *) vx;
    const v128_t vv = wasm_f32x4_splat(v);
    for (int ib = 0; ib < n / 32; ++ib) {
        const v128_t d = wasm_f32x4_splat(GGML_CPU_FP16_TO_FP32(x[ib].d));
        for (int j = 0; j < 32; j += 16) {
            const v128_t q = wasm_v128_load(x[ib].qs + j);
            const v128_t lo = wasm_i16x8_extend_low_i8x16(q);
            const v128_t hi = wasm_i16x8_extend_high_i8x16(q);
            const v128_t q32[4] = {wasm_i32x4_extend_low_i16x8(lo), wasm_i32x4_extend_high_i16x8(lo),
                                   wasm_i32x4_extend_low_i16x8(hi), wasm_i32x4_extend_high_i16x8(hi)};
            for (int k = 0; k < 4; ++k) {
                float * yk = y + ib * 32 + j + 4 * k;
                const v128_t xd = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(q32[k]), d);
                wasm_v128_store(yk, wasm_f32x4_add(wasm_f32x4_mul(xd, vv), wasm_v128_load(yk)));
            }
        }
    }
}
#define OFFGRID_FUSED_V_Q8_0(type) ((type) == GGML_TYPE_Q8_0)
#else
#define OFFGRID_FUSED_V_Q8_0(type) false
#define offgrid_vec_mad_q8_0(n, y, x, v) ((void) 0)
#endif
