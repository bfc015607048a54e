// Times ggml's wasm dot-product kernels (as shipped in llama.cpp) against ours, on one row of a
// SmolLM2-sized matrix (576 columns) repeated, checking every result against the scalar reference.
// Build twice: -msimd128 and -msimd128 -mrelaxed-simd; run under node (see run.sh).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <wasm_simd128.h>

typedef uint16_t ggml_half;
#define GGML_RESTRICT restrict
#define QK4_0 32
#define QK4_1 32
#define QK8_0 32
#define QK8_1 32
typedef struct { ggml_half d; uint8_t qs[16]; } block_q4_0;
typedef struct { ggml_half d, m; uint8_t qs[16]; } block_q4_1;
typedef struct { ggml_half d; int8_t qs[32]; } block_q8_0;
typedef struct { ggml_half d, s; int8_t qs[32]; } block_q8_1;

static float table_f32_f16[1 << 16];
static float h2f(uint16_t h) {
    uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 31, man = h & 1023;
    float v = exp == 0 ? ldexpf((float)man, -24) : exp == 31 ? INFINITY : ldexpf((float)(man | 1024), (int)exp - 25);
    return sign ? -v : v;
}
static uint16_t f2h(float f) {  // good enough for test data: round to nearest, normal range
    if (f == 0) return 0;
    uint16_t sign = f < 0 ? 0x8000 : 0; f = fabsf(f);
    int e; float m = frexpf(f, &e);  // f = m * 2^e, m in [0.5, 1)
    int exp = e + 14; int man = (int)lrintf((m * 2 - 1) * 1024);
    if (man == 1024) { man = 0; exp++; }
    return sign | (uint16_t)(exp << 10) | (uint16_t)man;
}
#define GGML_CPU_FP16_TO_FP32(x) table_f32_f16[(uint16_t)(x)]
#define UNUSED(x) (void)(x)
#define assert(x) ((void)0)

#include "upstream.inc"
#include "../../py/offgrid_dev/engine/wasm_dot_kernels.c"
#include "tried.c"
#define OURS(q, X, Y) static void ours_##q(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc) \
    { (void)bs; (void)bx; (void)by; (void)nrc; offgrid_vec_dot_##q(n, s, (const X *)vx, (const Y *)vy); }
OURS(q4_1_q8_1, block_q4_1, block_q8_1)
OURS(q4_0_q8_0, block_q4_0, block_q8_0)
OURS(q8_0_q8_0, block_q8_0, block_q8_0)

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

typedef void (*dot_fn)(int, float *, size_t, const void *, size_t, const void *, size_t, int);

static float ref_q4_1(int n, const block_q4_1 *x, const block_q8_1 *y) {
    float s = 0;
    for (int b = 0; b < n / 32; b++) {
        int si = 0;
        for (int j = 0; j < 16; j++) si += (x[b].qs[j] & 15) * y[b].qs[j] + (x[b].qs[j] >> 4) * y[b].qs[j + 16];
        s += h2f(x[b].d) * h2f(y[b].d) * si + h2f(x[b].m) * h2f(y[b].s);
    }
    return s;
}
static float ref_q4_0(int n, const block_q4_0 *x, const block_q8_0 *y) {
    float s = 0;
    for (int b = 0; b < n / 32; b++) {
        int si = 0;
        for (int j = 0; j < 16; j++) si += ((x[b].qs[j] & 15) - 8) * y[b].qs[j] + ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
        s += h2f(x[b].d) * h2f(y[b].d) * si;
    }
    return s;
}
static float ref_q8_0(int n, const block_q8_0 *x, const block_q8_0 *y) {
    float s = 0;
    for (int b = 0; b < n / 32; b++) {
        int si = 0;
        for (int j = 0; j < 32; j++) si += x[b].qs[j] * y[b].qs[j];
        s += h2f(x[b].d) * h2f(y[b].d) * si;
    }
    return s;
}

static int8_t q8(void) { return (int8_t)(rand() % 255 - 127); }

#define N 1536
#define ROWS 2048
#define PASSES 20  // ~8 ms per timing: Chromium's clock is coarse
static block_q4_1 X41[ROWS][N / 32]; static block_q8_1 Y81[N / 32], Y81b[N / 32];
static block_q4_0 X40[ROWS][N / 32]; static block_q8_0 Y80[N / 32];
static block_q8_0 X80[ROWS][N / 32];

static volatile float sink;  // keeps the timed calls from being optimized away

static void time_it(const char *name, dot_fn f, const void *x, size_t row_bytes, const void *y,
                    float (*ref)(int, const void *, const void *)) {
    float worst = 0, out;
    for (int r = 0; r < 64; r++) {
        const void *xr = (const char *)x + r * row_bytes;
        f(N, &out, 0, xr, 0, y, 0, 1);
        float want = ref(N, xr, y);
        float err = fabsf(out - want) / (fabsf(want) + 1.0f);  // +1: sums near 0
        if (err > worst) worst = err;
    }
    double best = 1e9;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now_ms();
        for (int pass = 0; pass < PASSES; pass++)
            for (int r = 0; r < ROWS; r++) { f(N, &out, 0, (const char *)x + r * row_bytes, 0, y, 0, 1); sink += out; }
        double t = now_ms() - t0;
        if (t < best) best = t;
    }
    printf("%-24s %8.1f ns/row  %6.2f GMAC/s  max rel err %.2e\n", name, best * 1e6 / ROWS / PASSES,
           (double)N * ROWS * PASSES / best / 1e6, worst);
}

// Prefill's 2 rows x 2 columns per call (ggml's nrc == 2): each result must equal the single
// call's bit for bit. ns per row and column, comparable with time_it's ns/row.
static void time_2x2(void) {
    float out[32], one;
    int mismatches = 0;
    for (int r = 0; r + 1 < 64; r += 2) {
        offgrid_vec_dot_q4_1_q8_1_2x2(N, out, 16, X41[r], X41[r + 1], Y81, Y81b);
        const float *want[4] = {&out[0], &out[1], &out[16], &out[17]};
        const block_q4_1 *xs[4] = {X41[r], X41[r + 1], X41[r], X41[r + 1]};
        const block_q8_1 *ys[4] = {Y81, Y81, Y81b, Y81b};
        for (int k = 0; k < 4; k++) {
            offgrid_vec_dot_q4_1_q8_1(N, &one, xs[k], ys[k]);
            if (memcmp(&one, want[k], sizeof one) != 0) mismatches++;
        }
    }
    double best = 1e9;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now_ms();
        for (int pass = 0; pass < PASSES / 2; pass++)
            for (int r = 0; r + 1 < ROWS; r += 2) { offgrid_vec_dot_q4_1_q8_1_2x2(N, out, 16, X41[r], X41[r + 1], Y81, Y81b); sink += out[0] + out[17]; }
        double t = now_ms() - t0;
        if (t < best) best = t;
    }
    printf("%-24s %8.1f ns/row  %6.2f GMAC/s  results differing from single calls: %d\n", "q4_1 x q8_1 offgrid 2x2",
           best * 1e6 / ROWS / PASSES, (double)N * ROWS * PASSES / best / 1e6, mismatches);
}

#ifdef __wasm_relaxed_simd__
// Decode's output matrix is a q8_0 matrix times one activation row: what depends on the row alone
// (its sign and magnitude) can be computed once for all 49152 matrix rows. Then x * y is
// (x with y's sign) * |y|, one relaxed dot per 16 pairs (|y| <= 127, pair sums <= 32258: exact).
typedef struct { v128_t neg_mask[2], abs[2]; float d; } y_prepared;
static y_prepared YP[N / 32];
static void prepare_y(const block_q8_0 *y) {
    for (int b = 0; b < N / 32; b++)
        for (int h = 0; h < 2; h++) {
            const v128_t v = wasm_v128_load(y[b].qs + 16 * h);
            YP[b].neg_mask[h] = wasm_i8x16_lt(v, wasm_i8x16_splat(0));
            YP[b].abs[h] = wasm_i8x16_abs(v);
            YP[b].d = GGML_CPU_FP16_TO_FP32(y[b].d);
        }
}
static void prepared_q8_0(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc) {
    (void)bs; (void)bx; (void)by; (void)nrc; (void)vy;
    const block_q8_0 *x = vx;
    v128_t sumv = wasm_f32x4_splat(0.0f);
    int ib = 0;
    for (; ib + 3 < n / 32; ib += 4) {
        v128_t acc[4];
        for (int k = 0; k < 4; k++) {
            const y_prepared *yp = &YP[ib + k];
            v128_t a = wasm_i32x4_splat(0);
            for (int h = 0; h < 2; h++) {
                const v128_t xv = wasm_v128_load(x[ib + k].qs + 16 * h);
                a = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_bitselect(wasm_i8x16_neg(xv), xv, yp->neg_mask[h]), yp->abs[h], a);
            }
            acc[k] = a;
        }
        const v128_t d = wasm_f32x4_mul(OFFGRID_F16X4(x, ib, d), wasm_f32x4_make(YP[ib].d, YP[ib + 1].d, YP[ib + 2].d, YP[ib + 3].d));
        sumv = wasm_f32x4_add(sumv, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(offgrid_hsum4_i32x4(acc[0], acc[1], acc[2], acc[3])), d));
    }
    *s = offgrid_hsum_f32x4(sumv);  // N is a multiple of 128 here
}
#endif

// Decode: one activation column times a matrix 576 wide (SmolLM2's rows), once within the caches
// (1 MiB) and once bigger than them (a token streams 66 MB of q4_1 weights): one row per call
// against four rows per call (offgrid_vec_dot_q4_1_q8_1_4x1), whose results must equal the single
// calls' bit for bit.
#define DN 576
#define DROWS 131072
static void time_decode(void) {
    const int nb = DN / 32;
    const size_t bx = sizeof(block_q4_1) * nb;
    block_q4_1 *x = malloc(bx * DROWS);
    float *out = malloc(sizeof(float) * DROWS), *out4 = malloc(sizeof(float) * DROWS);
    for (size_t i = 0; i < (size_t)nb * DROWS; i++) {
        x[i] = X41[i % ROWS][i % (N / 32)];
        x[i].qs[i % 16] ^= (uint8_t)i;
    }
    const int sizes[2] = {1 << 20, DROWS * (int)bx};
    for (int si = 0; si < 2; si++) {
        const int rows = sizes[si] / (int)bx / 4 * 4, reps = DROWS / rows;
        double best1 = 1e9, best4 = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            double t0 = now_ms();
            for (int k = 0; k < reps; k++)
                for (int r = 0; r < rows; r++) offgrid_vec_dot_q4_1_q8_1(DN, &out[r], x + (size_t)r * nb, Y81);
            double t1 = now_ms();
            for (int k = 0; k < reps; k++)
                for (int r = 0; r < rows; r += 4) offgrid_vec_dot_q4_1_q8_1_4x1(DN, &out4[r], x + (size_t)r * nb, bx, Y81);
            double t2 = now_ms();
            if (t1 - t0 < best1) best1 = t1 - t0;
            if (t2 - t1 < best4) best4 = t2 - t1;
        }
        int mismatches = 0;
        for (int r = 0; r < rows; r++) mismatches += memcmp(&out[r], &out4[r], sizeof(float)) != 0;
        const double n = (double)rows * reps;
        printf("q4_1 decode %5.1f MB 1 row/call  %6.1f ns/row  %5.2f GB/s\n", sizes[si] / 1e6, best1 * 1e6 / n, bx * n / best1 / 1e6);
        printf("q4_1 decode %5.1f MB 4 rows/call %6.1f ns/row  %5.2f GB/s  results differing from single calls: %d\n",
               sizes[si] / 1e6, best4 * 1e6 / n, bx * n / best4 / 1e6, mismatches);
    }
    free(x); free(out); free(out4);
}

int main(void) {
    for (int i = 0; i < 65536; i++) table_f32_f16[i] = h2f((uint16_t)i);
    srand(1);
    for (int r = 0; r < ROWS; r++) for (int b = 0; b < N / 32; b++) {
        X41[r][b].d = f2h(0.01f + rand() % 100 / 5000.0f); X41[r][b].m = f2h(-0.1f + rand() % 100 / 1000.0f);
        X40[r][b].d = X41[r][b].d; X80[r][b].d = X41[r][b].d;
        for (int j = 0; j < 16; j++) X41[r][b].qs[j] = X40[r][b].qs[j] = (uint8_t)rand();
        for (int j = 0; j < 32; j++) X80[r][b].qs[j] = q8();
    }
    for (int b = 0; b < N / 32; b++) {
        int s = 0;
        Y81[b].d = Y80[b].d = f2h(0.02f + rand() % 100 / 3000.0f);
        for (int j = 0; j < 32; j++) { Y81[b].qs[j] = Y80[b].qs[j] = q8(); s += Y81[b].qs[j]; }
        Y81[b].s = f2h(h2f(Y81[b].d) * s);
        s = 0;
        Y81b[b].d = f2h(0.02f + rand() % 100 / 3000.0f);
        for (int j = 0; j < 32; j++) { Y81b[b].qs[j] = q8(); s += Y81b[b].qs[j]; }
        Y81b[b].s = f2h(h2f(Y81b[b].d) * s);
    }
#ifdef __wasm_relaxed_simd__
    puts("build: simd128 + relaxed-simd");
#else
    puts("build: simd128");
#endif
    time_it("q4_1 x q8_1 upstream", upstream_vec_dot_q4_1_q8_1, X41, sizeof X41[0], Y81, (void *)ref_q4_1);
    time_it("q4_0 x q8_0 upstream", upstream_vec_dot_q4_0_q8_0, X40, sizeof X40[0], Y80, (void *)ref_q4_0);
    time_it("q8_0 x q8_0 upstream", upstream_vec_dot_q8_0_q8_0, X80, sizeof X80[0], Y80, (void *)ref_q8_0);
    time_it("q4_1 x q8_1 offgrid", ours_q4_1_q8_1, X41, sizeof X41[0], Y81, (void *)ref_q4_1);
    time_2x2();
    time_decode();
    time_it("q4_0 x q8_0 offgrid", ours_q4_0_q8_0, X40, sizeof X40[0], Y80, (void *)ref_q4_0);
#ifdef __wasm_relaxed_simd__
    prepare_y(Y80);
    time_it("q8_0 x q8_0 y prepared", prepared_q8_0, X80, sizeof X80[0], Y80, (void *)ref_q8_0);
#endif
    time_it("q8_0 x q8_0 offgrid", ours_q8_0_q8_0, X80, sizeof X80[0], Y80, (void *)ref_q8_0);
    return 0;
}
