// Tried in bench/wasm_kernels and not shipped: the q4_0 and q8_0 dot products done the way of
// py/offgrid_dev/engine/wasm_dot_kernels.c (four blocks per step, relaxed dot). Slower than
// upstream's in Chromium and node (bench/RESULTS.md): for signed x signed int8, relaxed dot needs
// the sign moved onto one operand (neg, compare, bitselect, abs), which costs more than it saves.
// Included after wasm_dot_kernels.c, whose helpers it uses.
//
// With the q8 operand's sign moved: |b| is within 0..127 (ggml's q8 quants lie within -127..127),
// and a pmaddubsw pair sum is at most 2*127*127 = 32258 < 32767, so relaxed dot is exact here too.

// acc + four partial sums of a * b over 16 int8 pairs, both within -127..127.
static inline v128_t offgrid_dot_i8_i8(v128_t a, v128_t b, v128_t acc) {
#if defined(__wasm_relaxed_simd__)
    // a * b = (a with b's sign) * |b|
    const v128_t a_signed = wasm_v128_bitselect(wasm_i8x16_neg(a), a, wasm_i8x16_lt(b, wasm_i8x16_splat(0)));
    return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(a_signed, wasm_i8x16_abs(b), acc);
#else
    return wasm_i32x4_add(acc, wasm_i32x4_add(
        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b)),
        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b))));
#endif
}

// sum((q4 - 8) * y) for one q4_0 block.
static inline v128_t offgrid_dot_q4_0_y(const uint8_t * q4, const int8_t * y) {
#if defined(__wasm_relaxed_simd__)
    // q4 - 8 would be a signed second operand: take q4 * y - 8 * y.
    const v128_t eight = wasm_i8x16_splat(8);
    const v128_t off = offgrid_dot_i8_u7(wasm_v128_load(y + 16), eight,
                                         offgrid_dot_i8_u7(wasm_v128_load(y), eight, wasm_i32x4_splat(0)));
    return wasm_i32x4_sub(offgrid_dot_q4_y(q4, y), off);
#else
    const v128_t q = wasm_v128_load(q4);
    const v128_t eight = wasm_i8x16_splat(8);
    const v128_t lo = wasm_i8x16_sub(wasm_v128_and(q, wasm_i8x16_splat(0x0F)), eight);
    const v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(q, 4), eight);
    return offgrid_dot_i8_i8(wasm_v128_load(y + 16), hi, offgrid_dot_i8_i8(wasm_v128_load(y), lo, wasm_i32x4_splat(0)));
#endif
}

// sum(x * y) for one q8_0 block.
static inline v128_t offgrid_dot_q8_y(const int8_t * x, const int8_t * y) {
    const v128_t acc = offgrid_dot_i8_i8(wasm_v128_load(y), wasm_v128_load(x), wasm_i32x4_splat(0));
    return offgrid_dot_i8_i8(wasm_v128_load(y + 16), wasm_v128_load(x + 16), acc);
}

// The block-wise sum over x and y: sum_i dot_i * x[i].d * y[i].d, four blocks per step.
#define OFFGRID_SCALED_SUM(x, y, nb, dot, sumf)                                                        \
    do {                                                                                                \
        v128_t sumv_ = wasm_f32x4_splat(0.0f);                                                         \
        int ib_ = 0;                                                                                    \
        for (; ib_ + 3 < (nb); ib_ += 4) {                                                              \
            const v128_t acc_ = offgrid_hsum4_i32x4(dot(x[ib_].qs, y[ib_].qs), dot(x[ib_ + 1].qs, y[ib_ + 1].qs), \
                                                    dot(x[ib_ + 2].qs, y[ib_ + 2].qs), dot(x[ib_ + 3].qs, y[ib_ + 3].qs)); \
            const v128_t d_ = wasm_f32x4_mul(OFFGRID_F16X4(x, ib_, d), OFFGRID_F16X4(y, ib_, d));      \
            sumv_ = wasm_f32x4_add(sumv_, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(acc_), d_));         \
        }                                                                                               \
        sumf = offgrid_hsum_f32x4(sumv_);                                                               \
        for (; ib_ < (nb); ++ib_) {                                                                     \
            sumf += offgrid_hsum_i32x4(dot(x[ib_].qs, y[ib_].qs)) *                                     \
                    (GGML_CPU_FP16_TO_FP32(x[ib_].d) * GGML_CPU_FP16_TO_FP32(y[ib_].d));               \
        }                                                                                               \
    } while (0)

static void offgrid_vec_dot_q4_0_q8_0(int n, float * s, const block_q4_0 * x, const block_q8_0 * y) {
    float sumf;
    OFFGRID_SCALED_SUM(x, y, n / QK8_0, offgrid_dot_q4_0_y, sumf);
    *s = sumf;
}

static void offgrid_vec_dot_q8_0_q8_0(int n, float * s, const block_q8_0 * x, const block_q8_0 * y) {
    float sumf;
    OFFGRID_SCALED_SUM(x, y, n / QK8_0, offgrid_dot_q8_y, sumf);
    *s = sumf;
}

#if defined(__wasm_simd128__)
// q4_1 for decode, four matrix rows per call: s[r] = x_r . y for rows x_r (x + r * bx bytes) and
// one activation column, the activation's scales converted once for the four rows and ggml's
// per-call work paid once per four rows. Bit-identical to single calls, but slower than them in
// node and Chromium (2026-11-29: 100-230 against 60-110 ns per 576-wide row, in and out of the
// caches), with or without the row loop unrolled.
static void offgrid_vec_dot_q4_1_q8_1_4x1(int n, float * s, const block_q4_1 * x, size_t bx, const block_q8_1 * y) {
    const int nb = n / QK8_1;
    const block_q4_1 * xr[4];
    v128_t sumv[4], summ[4];
#pragma clang loop unroll(full)
    for (int r = 0; r < 4; ++r) {
        xr[r] = (const block_q4_1 *) ((const char *) x + r * bx);
        sumv[r] = summ[r] = wasm_f32x4_splat(0.0f);
    }
    int ib = 0;
    for (; ib + 3 < nb; ib += 4) {
        const v128_t yd = OFFGRID_F16X4(y, ib, d), ys = OFFGRID_F16X4(y, ib, s);
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; ++r) {
            const block_q4_1 * xx = xr[r];
            const v128_t acc = offgrid_hsum4_i32x4(offgrid_dot_q4_y(xx[ib].qs, y[ib].qs), offgrid_dot_q4_y(xx[ib + 1].qs, y[ib + 1].qs),
                                                   offgrid_dot_q4_y(xx[ib + 2].qs, y[ib + 2].qs), offgrid_dot_q4_y(xx[ib + 3].qs, y[ib + 3].qs));
            sumv[r] = wasm_f32x4_add(sumv[r], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(acc), wasm_f32x4_mul(OFFGRID_F16X4(xx, ib, d), yd)));
            summ[r] = wasm_f32x4_add(summ[r], wasm_f32x4_mul(OFFGRID_F16X4(xx, ib, m), ys));
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < 4; ++r) s[r] = offgrid_q4_1_finish(sumv[r], summ[r], xr[r], y, ib, nb);
}
#endif
