// Offgrid: the WebAssembly dot product for ggml's q4_1 blocks (the SmolLM2 default model's
// matrices; 57% of decode time in bench/wasm_profile). engine_build.py puts this file into
// llama.cpp's ggml-cpu/arch/wasm/quants.c ahead of the dot-product functions and makes
// ggml_vec_dot_q4_1_q8_1 return through offgrid_vec_dot_q4_1_q8_1. bench/wasm_kernels times it
// against upstream's and checks it against a scalar reference; the same approach for q4_0 and
// q8_0 was slower than upstream there (bench/wasm_kernels/tried.c), so those stay upstream's.
//
// What differs from upstream's wasm code:
// - Four blocks per step. Upstream converts, scales and accumulates each block's integer sum on
//   its own (four fp16 lookups, a splat, convert, mul, add per 32 weights); that float work, not
//   the integer dot product, bounded its speed. Here the four blocks' sums are reduced into one
//   i32x4 (lane i = block i) and scaled by a vector of the four blocks' scales.
// - With -mrelaxed-simd, i32x4.relaxed_dot_i8x16_i7x16_add_s does 16 int8 pairs in one
//   instruction (pmaddubsw + pmaddwd on x64, sdot on arm64) instead of widening to int16.
//   It is "relaxed" only where the second operand has its top bit set or pmaddubsw's int16 pair
//   sum saturates; neither can happen here: the second operand is a 4-bit quant (0..15) and a
//   pair sum is at most 2*15*127 = 3810.
//   So every engine computes the same exact integer sums. Floats are multiplied and added
//   separately, never fused, as upstream does.
// - Prefill: ggml asks for 2 rows x 2 columns per call (its nrc == 2, which engine_build.py turns
//   on for q4_1 on wasm, as ARM's i8mm build does); offgrid_vec_dot_q4_1_q8_1_2x2 unpacks each
//   weight block once for both columns and loads each activation block once for both rows. Each
//   of its four results goes through the same operations in the same order as a single call, so
//   they are bit-identical to it.
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>

// acc + four partial sums of a * b over 16 int8 pairs, for b within 0..127.
static inline v128_t offgrid_dot_i8_u7(v128_t a, v128_t b, v128_t acc) {
#if defined(__wasm_relaxed_simd__)
    return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a, b, acc);
#else
    return wasm_i32x4_add(acc, wasm_i32x4_add(
        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_u16x8_extend_low_u8x16(b)),
        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_u16x8_extend_high_u8x16(b))));
#endif
}

// sum(q4 * y) for one block, q4 unsigned: low nibbles pair with y[0..15], high ones with y[16..31].
static inline v128_t offgrid_dot_q4_y(const uint8_t * q4, const int8_t * y) {
    const v128_t q = wasm_v128_load(q4);
    const v128_t acc = offgrid_dot_i8_u7(wasm_v128_load(y), wasm_v128_and(q, wasm_i8x16_splat(0x0F)), wasm_i32x4_splat(0));
    return offgrid_dot_i8_u7(wasm_v128_load(y + 16), wasm_u8x16_shr(q, 4), acc);
}

// [sum(a), sum(b), sum(c), sum(d)]
static inline v128_t offgrid_hsum4_i32x4(v128_t a, v128_t b, v128_t c, v128_t d) {
    const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

static inline float offgrid_hsum_f32x4(v128_t v) {
    return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
           wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

static inline int offgrid_hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) +
           wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3);
}

// Field f of blocks p[i..i+3] as four floats.
#define OFFGRID_F16X4(p, i, f) wasm_f32x4_make(GGML_CPU_FP16_TO_FP32((p)[(i)].f), GGML_CPU_FP16_TO_FP32((p)[(i) + 1].f), \
                                               GGML_CPU_FP16_TO_FP32((p)[(i) + 2].f), GGML_CPU_FP16_TO_FP32((p)[(i) + 3].f))

// sumv += four blocks' integer sums (lane i = block i) times their d products (xd * yd); summ += the
// blocks' m * s terms (q4_1 weights are d * q + m: m * sum(y) = m * y.s).
static inline void offgrid_q4_1_scale4(v128_t acc, v128_t xd, v128_t yd, v128_t xm, v128_t ys,
                                       v128_t * sumv, v128_t * summ) {
    *sumv = wasm_f32x4_add(*sumv, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(acc), wasm_f32x4_mul(xd, yd)));
    *summ = wasm_f32x4_add(*summ, wasm_f32x4_mul(xm, ys));
}

// offgrid_q4_1_scale4 with the scales of blocks x[ib..ib+3] and y[ib..ib+3] (fp16 in the blocks).
#define OFFGRID_Q4_1_SCALE4_F16(acc, x, y, ib, sumv, summ) \
    offgrid_q4_1_scale4((acc), OFFGRID_F16X4(x, ib, d), OFFGRID_F16X4(y, ib, d), OFFGRID_F16X4(x, ib, m), \
                        OFFGRID_F16X4(y, ib, s), (sumv), (summ))

// The four blocks' integer sums q4 . y (lane k = block k) from the quants of block 0 of each
// operand and the distance in bytes between blocks: q4_1 rows come as ggml's blocks or repacked.
static inline v128_t offgrid_q4_1_sums4(const uint8_t * xq, size_t xs, const int8_t * yq) {
    const size_t ys = sizeof(block_q8_1);
    return offgrid_hsum4_i32x4(offgrid_dot_q4_y(xq, yq), offgrid_dot_q4_y(xq + xs, yq + ys),
                               offgrid_dot_q4_y(xq + 2 * xs, yq + 2 * ys), offgrid_dot_q4_y(xq + 3 * xs, yq + 3 * ys));
}

// Four blocks of two rows against two columns: p = [x0.y0, x1.y0, x0.y1, x1.y1], each as
// offgrid_q4_1_sums4 gives it; each weight block is unpacked once for both columns.
static inline void offgrid_q4_1_sums4_2x2(const uint8_t * x0, const uint8_t * x1, size_t xs,
                                          const int8_t * y0, const int8_t * y1, v128_t p[4]) {
    const v128_t m4 = wasm_i8x16_splat(0x0F);
    const v128_t zero = wasm_i32x4_splat(0);
    v128_t s[4][4];  // s[pair][block]
    for (int k = 0; k < 4; ++k) {
        const v128_t q0 = wasm_v128_load(x0 + k * xs), q1 = wasm_v128_load(x1 + k * xs);
        const v128_t l0 = wasm_v128_and(q0, m4), h0 = wasm_u8x16_shr(q0, 4);
        const v128_t l1 = wasm_v128_and(q1, m4), h1 = wasm_u8x16_shr(q1, 4);
        const int8_t * a = y0 + k * sizeof(block_q8_1);
        const int8_t * b = y1 + k * sizeof(block_q8_1);
        const v128_t a0 = wasm_v128_load(a), b0 = wasm_v128_load(a + 16);
        const v128_t a1 = wasm_v128_load(b), b1 = wasm_v128_load(b + 16);
        s[0][k] = offgrid_dot_i8_u7(b0, h0, offgrid_dot_i8_u7(a0, l0, zero));
        s[1][k] = offgrid_dot_i8_u7(b0, h1, offgrid_dot_i8_u7(a0, l1, zero));
        s[2][k] = offgrid_dot_i8_u7(b1, h0, offgrid_dot_i8_u7(a1, l0, zero));
        s[3][k] = offgrid_dot_i8_u7(b1, h1, offgrid_dot_i8_u7(a1, l1, zero));
    }
    for (int j = 0; j < 4; ++j) p[j] = offgrid_hsum4_i32x4(s[j][0], s[j][1], s[j][2], s[j][3]);
}

// The dot product from the accumulated vectors and the blocks from ib on (fewer than four).
static inline float offgrid_q4_1_finish(v128_t sumv, v128_t summ, const block_q4_1 * x, const block_q8_1 * y,
                                        int ib, int nb) {
    float sumf = offgrid_hsum_f32x4(sumv) + offgrid_hsum_f32x4(summ);
    for (; ib < nb; ++ib) {
        sumf += offgrid_hsum_i32x4(offgrid_dot_q4_y(x[ib].qs, y[ib].qs)) *
                (GGML_CPU_FP16_TO_FP32(x[ib].d) * GGML_CPU_FP16_TO_FP32(y[ib].d)) +
                GGML_CPU_FP16_TO_FP32(x[ib].m) * GGML_CPU_FP16_TO_FP32(y[ib].s);
    }
    return sumf;
}

static void offgrid_vec_dot_q4_1_q8_1(int n, float * s, const block_q4_1 * x, const block_q8_1 * y) {
    const int nb = n / QK8_1;
    v128_t sumv = wasm_f32x4_splat(0.0f);
    v128_t summ = wasm_f32x4_splat(0.0f);
    int ib = 0;
    for (; ib + 3 < nb; ib += 4) {
        OFFGRID_Q4_1_SCALE4_F16(offgrid_q4_1_sums4(x[ib].qs, sizeof(block_q4_1), y[ib].qs), x, y, ib, &sumv, &summ);
    }
    *s = offgrid_q4_1_finish(sumv, summ, x, y, ib, nb);
}

// s[0] = x0.y0, s[1] = x1.y0, s[bs] = x0.y1, s[bs + 1] = x1.y1 (ggml's nrc == 2 layout).
static void offgrid_vec_dot_q4_1_q8_1_2x2(int n, float * s, size_t bs, const block_q4_1 * x0, const block_q4_1 * x1,
                                          const block_q8_1 * y0, const block_q8_1 * y1) {
    const int nb = n / QK8_1;
    v128_t sumv[4], summ[4];  // [x0.y0, x1.y0, x0.y1, x1.y1]
    for (int k = 0; k < 4; ++k) sumv[k] = summ[k] = wasm_f32x4_splat(0.0f);
    int ib = 0;
    for (; ib + 3 < nb; ib += 4) {
        v128_t p[4];
        offgrid_q4_1_sums4_2x2(x0[ib].qs, x1[ib].qs, sizeof(block_q4_1), y0[ib].qs, y1[ib].qs, p);
        OFFGRID_Q4_1_SCALE4_F16(p[0], x0, y0, ib, &sumv[0], &summ[0]);
        OFFGRID_Q4_1_SCALE4_F16(p[1], x1, y0, ib, &sumv[1], &summ[1]);
        OFFGRID_Q4_1_SCALE4_F16(p[2], x0, y1, ib, &sumv[2], &summ[2]);
        OFFGRID_Q4_1_SCALE4_F16(p[3], x1, y1, ib, &sumv[3], &summ[3]);
    }
    s[0] = offgrid_q4_1_finish(sumv[0], summ[0], x0, y0, ib, nb);
    s[1] = offgrid_q4_1_finish(sumv[1], summ[1], x1, y0, ib, nb);
    s[bs] = offgrid_q4_1_finish(sumv[2], summ[2], x0, y1, ib, nb);
    s[bs + 1] = offgrid_q4_1_finish(sumv[3], summ[3], x1, y1, ib, nb);
}

#endif
