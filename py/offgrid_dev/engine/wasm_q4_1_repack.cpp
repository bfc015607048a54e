// Offgrid: ggml's q4_1 matrices repacked at load for WebAssembly, as ggml's repack.cpp does for
// ARM and x86 (an "extra" CPU buffer type whose tensors carry their own matrix product).
//
// Why: a q4_1 block keeps its scales d and m as fp16 and WebAssembly has no fp16 conversion, so
// each block costs two table lookups and lane inserts per matrix row (and two more for the
// activation's d and s), which bench/wasm_kernels measured at about 30% of the dot product, the
// largest share of decode. Here each row is stored once, at load, as
//     [16-byte quants of block 0, 1, ... nb-1][d of each block as f32][m of each block as f32]
// (24 bytes per 32 weights instead of 20), and the activation's d and s are converted once per
// product into f32 arrays beside its q8_1 blocks. The integer sums and the float operations are
// those of wasm_dot_kernels.c in the same order, so results are bit-identical to it.
//
// engine_patches.py puts this file (after wasm_dot_kernels.c) into ggml-cpu and registers the
// buffer type; llama.cpp then places each 2-D q4_1 weight that a matrix product uses here.
#if defined(__wasm_simd128__)

// The C declarations (anonymous members, as wasm_dot_kernels.c uses them); clang takes them in C++.
#define GGML_COMMON_DECL_C
#include "ggml-common.h"
#include "ggml-backend-impl.h"
#include "ggml-impl.h"
#include "ggml-cpu.h"
#include "ggml-cpu-impl.h"
#include "simd-mappings.h"
#include "traits.h"

#include <cstring>

#include "offgrid_wasm_dot_kernels.h"

ggml_backend_buffer_type_t offgrid_q4_1_buffer_type(void);

namespace {

constexpr size_t Q_BYTES = QK4_1 / 2;  // one block's 4-bit quants

// One repacked row of nb blocks.
struct q4_1_row {
    const uint8_t * q;
    const float *   d;
    const float *   m;

    q4_1_row(const char * p, int64_t nb)
        : q((const uint8_t *) p), d((const float *) (p + nb * Q_BYTES)), m(d + nb) {}
};

size_t row_bytes(int64_t nb) { return nb * (Q_BYTES + 2 * sizeof(float)); }

// One activation column: ggml's q8_1 blocks and their d and s as f32.
struct q8_1_col {
    const block_q8_1 * b;
    const float *      d;
    const float *      s;
};

float finish(v128_t sumv, v128_t summ, const q4_1_row & x, const q8_1_col & y, int ib, int nb) {
    float sumf = offgrid_hsum_f32x4(sumv) + offgrid_hsum_f32x4(summ);
    for (; ib < nb; ++ib) {
        sumf += offgrid_hsum_i32x4(offgrid_dot_q4_y(x.q + ib * Q_BYTES, y.b[ib].qs)) * (x.d[ib] * y.d[ib]) +
                x.m[ib] * y.s[ib];
    }
    return sumf;
}

inline void scale4(v128_t acc, const q4_1_row & x, const q8_1_col & y, int ib, v128_t * sumv, v128_t * summ) {
    offgrid_q4_1_scale4(acc, wasm_v128_load(x.d + ib), wasm_v128_load(y.d + ib), wasm_v128_load(x.m + ib),
                        wasm_v128_load(y.s + ib), sumv, summ);
}

float dot(int nb, const q4_1_row & x, const q8_1_col & y) {
    v128_t sumv = wasm_f32x4_splat(0.0f);
    v128_t summ = wasm_f32x4_splat(0.0f);
    int ib = 0;
    for (; ib + 3 < nb; ib += 4) {
        scale4(offgrid_q4_1_sums4(x.q + ib * Q_BYTES, Q_BYTES, y.b[ib].qs), x, y, ib, &sumv, &summ);
    }
    return finish(sumv, summ, x, y, ib, nb);
}

// r[0] = x0.y0, r[1] = x1.y0, r[2] = x0.y1, r[3] = x1.y1
void dot_2x2(int nb, const q4_1_row & x0, const q4_1_row & x1, const q8_1_col & y0, const q8_1_col & y1, float r[4]) {
    v128_t sumv[4], summ[4];
    for (int k = 0; k < 4; ++k) sumv[k] = summ[k] = wasm_f32x4_splat(0.0f);
    int ib = 0;
    for (; ib + 3 < nb; ib += 4) {
        v128_t p[4];
        offgrid_q4_1_sums4_2x2(x0.q + ib * Q_BYTES, x1.q + ib * Q_BYTES, Q_BYTES, y0.b[ib].qs, y1.b[ib].qs, p);
        scale4(p[0], x0, y0, ib, &sumv[0], &summ[0]);
        scale4(p[1], x1, y0, ib, &sumv[1], &summ[1]);
        scale4(p[2], x0, y1, ib, &sumv[2], &summ[2]);
        scale4(p[3], x1, y1, ib, &sumv[3], &summ[3]);
    }
    r[0] = finish(sumv[0], summ[0], x0, y0, ib, nb);
    r[1] = finish(sumv[1], summ[1], x1, y0, ib, nb);
    r[2] = finish(sumv[2], summ[2], x0, y1, ib, nb);
    r[3] = finish(sumv[3], summ[3], x1, y1, ib, nb);
}

// The work buffer of a product with ncols activation columns of nb blocks: every column's q8_1
// blocks, then every column's d and s.
size_t work_bytes(int64_t nb, int64_t ncols) { return ncols * nb * (sizeof(block_q8_1) + 2 * sizeof(float)); }

class q4_1_traits : public ggml::cpu::tensor_traits {
    bool work_size(int, const ggml_tensor * op, size_t & size) override {
        if (op->op != GGML_OP_MUL_MAT) {
            return false;
        }
        size = work_bytes(op->src[0]->ne[0] / QK4_1, ggml_nrows(op->src[1]));
        return true;
    }

    bool compute_forward(ggml_compute_params * params, ggml_tensor * op) override {
        if (op->op != GGML_OP_MUL_MAT) {
            return false;
        }
        const ggml_tensor * src0 = op->src[0];
        const ggml_tensor * src1 = op->src[1];
        const ggml_tensor * dst = op;
        GGML_TENSOR_BINARY_OP_LOCALS
        const int64_t nb = ne00 / QK4_1;
        const int64_t ncols = ne11 * ne12 * ne13;
        const int ith = params->ith, nth = params->nth;
        GGML_ASSERT(params->wsize >= work_bytes(nb, ncols));

        // The activation, columns shared out among the threads.
        block_q8_1 * yb = (block_q8_1 *) params->wdata;
        float * yf = (float *) (yb + ncols * nb);
        const ggml_from_float_t to_q8_1 = ggml_get_type_traits_cpu(GGML_TYPE_Q8_1)->from_float;
        // Column c's byte offset in src1 or dst, given its strides (columns run over ne11, ne12, ne13).
        auto offset = [&](int64_t c, size_t s1, size_t s2, size_t s3) {
            return (c % ne11) * s1 + ((c / ne11) % ne12) * s2 + (c / (ne11 * ne12)) * s3;
        };
        for (int64_t c = ith; c < ncols; c += nth) {
            block_q8_1 * b = yb + c * nb;
            to_q8_1((const float *) ((const char *) src1->data + offset(c, nb11, nb12, nb13)), b, ne10);
            float * d = yf + 2 * c * nb;
            for (int64_t i = 0; i < nb; ++i) {
                d[i] = GGML_CPU_FP16_TO_FP32(b[i].d);
                d[nb + i] = GGML_CPU_FP16_TO_FP32(b[i].s);
            }
        }
        auto col = [&](int64_t c) { return q8_1_col{yb + c * nb, yf + 2 * c * nb, yf + 2 * c * nb + nb}; };
        auto out = [&](int64_t c) { return (float *) ((char *) dst->data + offset(c, nb1, nb2, nb3)); };

        // Rows in even chunks, four per thread, taken as threads come free (as ggml's own product).
        const int64_t nchunk = nth == 1 ? 1 : 4 * nth;
        const int64_t chunk = ((ne01 + nchunk - 1) / nchunk + 1) & ~int64_t(1);
        if (ith == 0) {
            ggml_threadpool_chunk_set(params->threadpool, nth);
        }
        ggml_barrier(params->threadpool);

        const char * rows = (const char *) src0->data;
        const size_t rb = row_bytes(nb);
        for (int64_t k = ith; k * chunk < ne01; k = ggml_threadpool_chunk_add(params->threadpool, 1)) {
            const int64_t r0 = k * chunk, r1 = MIN(r0 + chunk, ne01);
            // Columns in blocks of 16 so that a block's activations stay in cache across the rows.
            for (int64_t c0 = 0; c0 < ncols; c0 += 16) {
                const int64_t c1 = MIN(c0 + 16, ncols);
                int64_t r = r0;
                for (; r + 1 < r1; r += 2) {
                    const q4_1_row x0(rows + r * rb, nb), x1(rows + (r + 1) * rb, nb);
                    int64_t c = c0;
                    for (; c + 1 < c1; c += 2) {
                        float v[4];
                        dot_2x2(nb, x0, x1, col(c), col(c + 1), v);
                        out(c)[r] = v[0];
                        out(c)[r + 1] = v[1];
                        out(c + 1)[r] = v[2];
                        out(c + 1)[r + 1] = v[3];
                    }
                    if (c < c1) {
                        out(c)[r] = dot(nb, x0, col(c));
                        out(c)[r + 1] = dot(nb, x1, col(c));
                    }
                }
                if (r < r1) {
                    const q4_1_row x(rows + r * rb, nb);
                    for (int64_t c = c0; c < c1; ++c) out(c)[r] = dot(nb, x, col(c));
                }
            }
        }
        return true;
    }
};

q4_1_traits traits;

// ggml's q4_1 rows (20-byte blocks) to the repacked layout above.
void repack(ggml_tensor * t, const void * data, size_t size) {
    GGML_ASSERT(size == ggml_nbytes(t));
    const int64_t nb = t->ne[0] / QK4_1;
    const int64_t nrows = ggml_nrows(t);
    for (int64_t r = 0; r < nrows; ++r) {
        const block_q4_1 * x = (const block_q4_1 *) ((const char *) data + r * t->nb[1]);
        char * out = (char *) t->data + r * row_bytes(nb);
        float * d = (float *) (out + nb * Q_BYTES);
        for (int64_t i = 0; i < nb; ++i) {
            memcpy(out + i * Q_BYTES, x[i].qs, Q_BYTES);
            d[i] = GGML_CPU_FP16_TO_FP32(x[i].d);
            d[nb + i] = GGML_CPU_FP16_TO_FP32(x[i].m);
        }
    }
}

bool is_ours(const ggml_tensor * t) {
    return t->buffer && t->buffer->buft == offgrid_q4_1_buffer_type();
}

class buffer_type : public ggml::cpu::extra_buffer_type {
    // 2-D q4_1 weights times f32 activations with contiguous rows; anything else (lookups of a
    // q4_1 embedding, mixture-of-experts products) keeps ggml's layout in the plain CPU buffer.
    bool supports_op(ggml_backend_dev_t, const ggml_tensor * op) override {
        const ggml_tensor * w = op->src[0];
        const ggml_tensor * a = op->src[1];
        return op->op == GGML_OP_MUL_MAT && w->type == GGML_TYPE_Q4_1 && is_ours(w) && ggml_n_dims(w) == 2 &&
               ggml_is_contiguous(w) && a->type == GGML_TYPE_F32 && a->nb[0] == sizeof(float) &&
               (!a->buffer || ggml_backend_buft_is_host(a->buffer->buft));
    }

    ggml::cpu::tensor_traits * get_tensor_traits(const ggml_tensor * op) override {
        return op->op == GGML_OP_MUL_MAT && is_ours(op->src[0]) ? &traits : nullptr;
    }
};

ggml_status init_tensor(ggml_backend_buffer_t, ggml_tensor * t) {
    t->extra = &traits;
    return GGML_STATUS_SUCCESS;
}

void set_tensor(ggml_backend_buffer_t, ggml_tensor * t, const void * data, size_t offset, size_t size) {
    GGML_ASSERT(offset == 0);
    repack(t, data, size);
}

const char * get_name(ggml_backend_buffer_type_t) { return "WASM_Q4_1_F32"; }

ggml_backend_buffer_t alloc_buffer(ggml_backend_buffer_type_t buft, size_t size) {
    ggml_backend_buffer_t buffer = ggml_backend_buft_alloc_buffer(ggml_backend_cpu_buffer_type(), size);
    if (buffer == nullptr) {
        return nullptr;
    }
    buffer->buft = buft;
    buffer->iface.init_tensor = init_tensor;
    buffer->iface.set_tensor = set_tensor;
    buffer->iface.get_tensor = nullptr;
    buffer->iface.cpy_tensor = nullptr;
    return buffer;
}

size_t get_alignment(ggml_backend_buffer_type_t) { return TENSOR_ALIGNMENT; }

size_t get_alloc_size(ggml_backend_buffer_type_t, const ggml_tensor * t) {
    return t->type == GGML_TYPE_Q4_1 ? ggml_nrows(t) * row_bytes(t->ne[0] / QK4_1) : ggml_nbytes(t);
}

}  // namespace

ggml_backend_buffer_type_t offgrid_q4_1_buffer_type(void) {
    static ggml_backend_buffer_type buft = {
        /* .iface    = */ {
            /* .get_name       = */ get_name,
            /* .alloc_buffer   = */ alloc_buffer,
            /* .get_alignment  = */ get_alignment,
            /* .get_max_size   = */ nullptr,
            /* .get_alloc_size = */ get_alloc_size,
            /* .is_host        = */ nullptr,
        },
        /* .device   = */ ggml_backend_reg_dev_get(ggml_backend_cpu_reg(), 0),
        /* .context  = */ new buffer_type(),
    };
    return &buft;
}

#endif
