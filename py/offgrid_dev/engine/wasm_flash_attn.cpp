// Offgrid: flash attention's per-position loop for a q8_0 KV cache on WebAssembly. engine_build.py
// puts this into llama.cpp's ggml-cpu/ops.cpp ahead of ggml_compute_forward_flash_attn_ext_f16_one_chunk
// (patch_ops), whose loop over cached positions then
// - takes four positions at a time through offgrid_fa_q8_0_tile4 where none of them is masked:
//   their K.Q dot products as one vector (upstream calls the q8_0 dot product through a pointer
//   per position and reduces each one alone), one max update and one rescale of the accumulator
//   per four positions, and their V rows added in one pass over the accumulator;
// - adds a single q8_0 V row with offgrid_vec_mad_q8_0 otherwise (upstream dequantizes it into a
//   scratch row and reads that back).
// Upstream's loop was a third of decode time at 700 tokens of context (bench/wasm_profile).
// The V rows are added with upstream's arithmetic in upstream's order (q * d, then * v, then + y,
// no fused multiply-add). The tile's softmax is upstream's online softmax regrouped (the running
// max is raised once per four positions), and its K.Q sums each block's integers exactly before
// scaling: the same function, rounded slightly differently.
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>

struct offgrid_block_q8_0 { ggml_fp16_t d; int8_t qs[32]; };
static_assert(sizeof(offgrid_block_q8_0) == 34, "ggml's block_q8_0 layout changed");

// y[0..n) += dequantize(x[r]) * v[r] for r = 0..NR-1 in turn, n a multiple of 32: the same
// operations as NR single calls, with one load and store of y per NR rows.
template <int NR>
static void offgrid_vec_mad_q8_0_rows(const int n, float * GGML_RESTRICT y, const void * const * vx, const float * v) {
    for (int ib = 0; ib < n / 32; ++ib) {
        v128_t d[NR], vv[NR];
        for (int r = 0; r < NR; ++r) {
            d[r] = wasm_f32x4_splat(GGML_CPU_FP16_TO_FP32(((const offgrid_block_q8_0 *) vx[r])[ib].d));
            vv[r] = wasm_f32x4_splat(v[r]);
        }
        for (int j = 0; j < 32; j += 16) {
            v128_t q32[NR][4];
            for (int r = 0; r < NR; ++r) {
                const v128_t q = wasm_v128_load(((const offgrid_block_q8_0 *) vx[r])[ib].qs + j);
                const v128_t lo = wasm_i16x8_extend_low_i8x16(q);
                const v128_t hi = wasm_i16x8_extend_high_i8x16(q);
                q32[r][0] = wasm_i32x4_extend_low_i16x8(lo);
                q32[r][1] = wasm_i32x4_extend_high_i16x8(lo);
                q32[r][2] = wasm_i32x4_extend_low_i16x8(hi);
                q32[r][3] = wasm_i32x4_extend_high_i16x8(hi);
            }
            for (int k = 0; k < 4; ++k) {
                float * yk = y + ib * 32 + j + 4 * k;
                v128_t acc = wasm_v128_load(yk);
                for (int r = 0; r < NR; ++r) {
                    const v128_t xd = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(q32[r][k]), d[r]);
                    acc = wasm_f32x4_add(wasm_f32x4_mul(xd, vv[r]), acc);
                }
                wasm_v128_store(yk, acc);
            }
        }
    }
}

// y[0..n) += dequantize(x) * v: one cached position's V row.
static void offgrid_vec_mad_q8_0(const int n, float * GGML_RESTRICT y, const void * GGML_RESTRICT vx, const float v) {
    const void * rows[1] = {vx};
    offgrid_vec_mad_q8_0_rows<1>(n, y, rows, &v);
}

// Four int32 lanes' sums: [sum(a), sum(b), sum(c), sum(d)].
static inline v128_t offgrid_fa_hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
    const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
    const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// Cached positions ic..ic+3 of one query row (K and V q8_0, Q quantized to q8_0, no softcap):
// updates the running max M, the sum S and the accumulator VKQ32 as upstream's loop does for
// them one by one. Returns false, doing nothing, when one of them is masked.
static bool offgrid_fa_q8_0_tile4(const int64_t DK, const int64_t DV, const char * k_row0, const size_t nbk1,
                                  const char * v_row0, const size_t nbv1, const void * q, const ggml_fp16_t * mp,
                                  const float slope, const float scale, const int64_t ic,
                                  float * M, float * S, float * VKQ32) {
    float mv[4];
    for (int p = 0; p < 4; ++p) {
        mv[p] = mp ? slope*GGML_CPU_FP16_TO_FP32(mp[ic + p]) : 0.0f;
        if (mv[p] == -INFINITY) {
            return false;
        }
    }
    const offgrid_block_q8_0 * qb = (const offgrid_block_q8_0 *) q;
    const offgrid_block_q8_0 * kb[4];
    const void * vrow[4];
    for (int p = 0; p < 4; ++p) {
        kb[p] = (const offgrid_block_q8_0 *) (k_row0 + (ic + p)*nbk1);
        vrow[p] = v_row0 + (ic + p)*nbv1;
    }
    v128_t sv = wasm_f32x4_splat(0.0f);  // lane p: position ic + p
    for (int ib = 0; ib < DK / 32; ++ib) {
        const v128_t q0 = wasm_v128_load(qb[ib].qs), q1 = wasm_v128_load(qb[ib].qs + 16);
        const v128_t q0l = wasm_i16x8_extend_low_i8x16(q0), q0h = wasm_i16x8_extend_high_i8x16(q0);
        const v128_t q1l = wasm_i16x8_extend_low_i8x16(q1), q1h = wasm_i16x8_extend_high_i8x16(q1);
        v128_t acc[4];
        for (int p = 0; p < 4; ++p) {
            const v128_t k0 = wasm_v128_load(kb[p][ib].qs), k1 = wasm_v128_load(kb[p][ib].qs + 16);
            acc[p] = wasm_i32x4_add(
                wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(k0), q0l),
                               wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(k0), q0h)),
                wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(k1), q1l),
                               wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(k1), q1h)));
        }
        const v128_t d = wasm_f32x4_mul(
            wasm_f32x4_make(GGML_CPU_FP16_TO_FP32(kb[0][ib].d), GGML_CPU_FP16_TO_FP32(kb[1][ib].d),
                            GGML_CPU_FP16_TO_FP32(kb[2][ib].d), GGML_CPU_FP16_TO_FP32(kb[3][ib].d)),
            wasm_f32x4_splat(GGML_CPU_FP16_TO_FP32(qb[ib].d)));
        sv = wasm_f32x4_add(sv, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(offgrid_fa_hsum4(acc[0], acc[1], acc[2], acc[3])), d));
    }
    sv = wasm_f32x4_add(wasm_f32x4_mul(sv, wasm_f32x4_splat(scale)), wasm_v128_load(mv));
    float s[4];
    wasm_v128_store(s, sv);
    const float smax = fmaxf(fmaxf(s[0], s[1]), fmaxf(s[2], s[3]));
    float ms = 1.0f;
    if (smax > *M) {
        ms = expf(*M - smax);
        *M = smax;
        ggml_vec_scale_f32(DV, VKQ32, ms);
    }
    float vs[4];
    for (int p = 0; p < 4; ++p) {
        vs[p] = expf(s[p] - *M);
    }
    offgrid_vec_mad_q8_0_rows<4>(DV, VKQ32, vrow, vs);
    *S = *S*ms + ((vs[0] + vs[1]) + (vs[2] + vs[3]));
    return true;
}
#define OFFGRID_FUSED_V_Q8_0(type) ((type) == GGML_TYPE_Q8_0)
#define OFFGRID_FA_TILE4(k_type, v_type, vec_dot_type, softcap) \
    ((k_type) == GGML_TYPE_Q8_0 && (v_type) == GGML_TYPE_Q8_0 && (vec_dot_type) == GGML_TYPE_Q8_0 && (softcap) == 0.0f)
#else
#define OFFGRID_FUSED_V_Q8_0(type) false
#define offgrid_vec_mad_q8_0(n, y, x, v) ((void) 0)
#define OFFGRID_FA_TILE4(k_type, v_type, vec_dot_type, softcap) false
#define offgrid_fa_q8_0_tile4(...) false
#endif
