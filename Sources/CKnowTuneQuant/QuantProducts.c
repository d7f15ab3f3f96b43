// Implements the products of a linear layer with a quantized weight W [out, in]: training's (tiles of W dequantized
// into a per-thread buffer, then cblas_sgemm with OpenBLAS's threads) and decoding's few rows, split by output
// feature over as many threads as OpenBLAS has (QuantThreads.c): Q8_0 weights meet activations quantized to 8 bits
// per 32-element block as llama.cpp does (integer dot products, one scale product per block); other types, and Q8_0
// when asked, keep fp32 activations and expand each weight row 256 elements at a time in L1. Either way a step reads
// the quantized bytes once. Does not quantize weights.
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "QuantInternal.h"

// MARK: - Workspace

// Per-thread buffers grown to the largest request and kept: the products run hundreds of times per training or
// decoding step. One holds the dequantized weight tile, one the 8-bit activations of a decoding product.
typedef struct {
    void *data;
    size_t bytes;
} kt_q_buffer;

static _Thread_local kt_q_buffer kt_q_tile = {NULL, 0};
static _Thread_local kt_q_buffer kt_q_activations = {NULL, 0};

static void *kt_q_reserve(kt_q_buffer *buffer, size_t bytes) {
    if (bytes <= buffer->bytes) return buffer->data;
    free(buffer->data);
    buffer->bytes = (bytes + 4095) / 4096 * 4096;
    buffer->data = aligned_alloc(64, buffer->bytes);
    if (!buffer->data) abort();
    return buffer->data;
}

static void kt_q_release(kt_q_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->bytes = 0;
}

void kt_quant_release_workspace(void) {
    kt_q_release(&kt_q_tile);
    kt_q_release(&kt_q_activations);
}

// MARK: - Training products

// Weight rows per tile: at least 1,024 (or 4 MiB of fp32 where that is more). Each tile's sgemm packs the whole other
// operand again, so thin tiles of a wide weight spend more time packing than multiplying: 95-row tiles of Llama-2-7B's
// down projection packed 45 MB of activations per 2 GFLOP. 1,024 rows keep packing near 5 % at the cost of a tile of
// up to 45 MB (7B) or 56 MB (13B) per calling thread.
static int kt_q_tile_rows(int in, int out) {
    int tile = (1 << 20) / (in > 0 ? in : 1);
    if (tile < 1024) tile = 1024;
    return tile < out ? tile : out;
}

static void kt_q_run(int type, float *C, const float *A, const void *W, int rows, int in, int out, float alpha,
                     int accumulate, int inputGradient) {
    if (rows <= 0 || out <= 0 || in <= 0) return;
    const int tile = kt_q_tile_rows(in, out);
    float *weights = kt_q_reserve(&kt_q_tile, (size_t)tile * in * sizeof(float));
    const size_t rowBytes = kt_q_row_bytes(type, in);
    for (int o = 0; o < out; o += tile) {
        const int tileRows = out - o < tile ? out - o : tile;
        kt_quant_dequantize(type, weights, (const uint8_t *)W + (size_t)o * rowBytes, (size_t)tileRows * in);
        if (!inputGradient) {
            // Y[:, o:o+tileRows] (+)= alpha · X · W[o:o+tileRows]ᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, tileRows, in, alpha, A, in, weights, in,
                        accumulate ? 1.0f : 0.0f, C + o, out);
        } else {
            // dX (+)= alpha · dY[:, o:o+tileRows] · W[o:o+tileRows]; later tiles add to the first
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, tileRows, alpha, A + o, out, weights, in,
                        (accumulate || o > 0) ? 1.0f : 0.0f, C, in);
        }
    }
}

void kt_quant_linear(int type, float *Y, const float *X, const void *W, int rows, int in, int out, float alpha,
                     int accumulate) {
    kt_q_run(type, Y, X, W, rows, in, out, alpha, accumulate, 0);
}

void kt_quant_linear_input_gradient(int type, float *dX, const float *dY, const void *W, int rows, int in, int out,
                                    float alpha, int accumulate) {
    kt_q_run(type, dX, dY, W, rows, in, out, alpha, accumulate, 1);
}

// MARK: - Decoding rows

#define KT_Q_ROWS_MAX 8
#define KT_Q_CHUNK 256  // a multiple of every block size

static pthread_once_t kt_q_probe_once = PTHREAD_ONCE_INIT;
static int kt_q_vectorised = 0;

static void kt_q_probe(void) {
    __builtin_cpu_init();
    kt_q_vectorised = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

#define KT_Q_AVX2 __attribute__((target("avx2,fma")))

KT_Q_AVX2 static inline float kt_q_sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Y[r, o] (+)= the horizontal sum of sums[r], for each row r.
KT_Q_AVX2 static inline void kt_q_store_sums(float *Y, int ldc, int o, const __m256 *sums, int rows, int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *y = Y + (size_t)r * ldc + o;
        const float sum = kt_q_sum8(sums[r]);
        *y = accumulate ? *y + sum : sum;
    }
}

// The AVX2 row kernels are written for a constant `rows` and instantiated once per row count through this switch, so
// their accumulators live in registers: with a run-time row count they lived on the stack, and each block waited for
// a store to reach the next load (Q8_0 with 8-bit activations, one row, weights in cache: 8.7 → 4.0 ns per block).
#define KT_Q_ROWS_SWITCH(rows, call)                                      \
    switch (rows) {                                                       \
    case 1: call(1); break; case 2: call(2); break; case 3: call(3); break; \
    case 4: call(4); break; case 5: call(5); break; case 6: call(6); break; \
    case 7: call(7); break; case 8: call(8); break;                        \
    }

// Q8_0 straight from its blocks: each block's 32 int8 widened in registers and scaled by d (the d·q of
// kt_quant_dequantize, so the sums are the generic path's bit for bit), without the trip through the chunk buffer.
KT_Q_AVX2 static inline __attribute__((always_inline)) void
kt_q8_0_rows_fixed(float *Y, int ldc, const float *X, const uint8_t *W, const int rows, int in, int out, int accumulate) {
    const int blocks = in / 32;
    const size_t rowBytes = (size_t)blocks * 34;
    for (int o = 0; o < out; o++) {
        const uint8_t *w = W + (size_t)o * rowBytes;
        __m256 sums[KT_Q_ROWS_MAX];
        for (int r = 0; r < rows; r++) sums[r] = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *block = w + (size_t)b * 34;
            const __m256 d = _mm256_set1_ps(kt_q_half(kt_q_load16(block)));
            for (int part = 0; part < 4; part++) {
                const __m128i bytes = _mm_loadl_epi64((const __m128i *)(block + 2 + 8 * part));
                const __m256 wk = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)));
                for (int r = 0; r < rows; r++)
                    sums[r] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(X + (size_t)r * in + 32 * b + 8 * part), sums[r]);
            }
        }
        kt_q_store_sums(Y, ldc, o, sums, rows, accumulate);
    }
}

KT_Q_AVX2 static inline __attribute__((always_inline)) void
kt_q_rows_fixed(int type, float *Y, int ldc, const float *X, const uint8_t *W, const int rows, int in, int out,
                int accumulate) {
    float chunk[KT_Q_CHUNK] __attribute__((aligned(32)));
    const size_t rowBytes = kt_q_row_bytes(type, in);
    const int blockElements = kt_quant_block_elements(type), blockBytes = kt_quant_block_bytes(type);
    for (int o = 0; o < out; o++) {
        const uint8_t *w = W + (size_t)o * rowBytes;
        __m256 sums[KT_Q_ROWS_MAX];
        for (int r = 0; r < rows; r++) sums[r] = _mm256_setzero_ps();
        for (int k = 0; k < in; k += KT_Q_CHUNK) {
            const int count = in - k < KT_Q_CHUNK ? in - k : KT_Q_CHUNK;
            kt_quant_dequantize(type, chunk, w + (size_t)(k / blockElements) * blockBytes, (size_t)count);
            for (int i = 0; i < count; i += 8) {
                const __m256 wk = _mm256_load_ps(chunk + i);
                for (int r = 0; r < rows; r++)
                    sums[r] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(X + (size_t)r * in + k + i), sums[r]);
            }
        }
        kt_q_store_sums(Y, ldc, o, sums, rows, accumulate);
    }
}

KT_Q_AVX2 static void kt_q_rows_avx2(int type, float *Y, int ldc, const float *X, const uint8_t *W, int rows, int in,
                                     int out, int accumulate) {
#define KT_Q8_0_ROWS(n) kt_q8_0_rows_fixed(Y, ldc, X, W, n, in, out, accumulate)
#define KT_Q_ROWS(n) kt_q_rows_fixed(type, Y, ldc, X, W, n, in, out, accumulate)
    if (type == KT_QUANT_Q8_0) {
        KT_Q_ROWS_SWITCH(rows, KT_Q8_0_ROWS)
    } else {
        KT_Q_ROWS_SWITCH(rows, KT_Q_ROWS)
    }
#undef KT_Q8_0_ROWS
#undef KT_Q_ROWS
}

static void kt_q_rows_portable(int type, float *Y, int ldc, const float *X, const uint8_t *W, int rows, int in, int out,
                               int accumulate) {
    float chunk[KT_Q_CHUNK];
    const size_t rowBytes = kt_q_row_bytes(type, in);
    const int blockElements = kt_quant_block_elements(type), blockBytes = kt_quant_block_bytes(type);
    for (int o = 0; o < out; o++) {
        const uint8_t *w = W + (size_t)o * rowBytes;
        float sums[KT_Q_ROWS_MAX] = {0};
        for (int k = 0; k < in; k += KT_Q_CHUNK) {
            const int count = in - k < KT_Q_CHUNK ? in - k : KT_Q_CHUNK;
            kt_quant_dequantize(type, chunk, w + (size_t)(k / blockElements) * blockBytes, (size_t)count);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < count; i++) sums[r] += chunk[i] * X[(size_t)r * in + k + i];
        }
        for (int r = 0; r < rows; r++) {
            float *y = Y + (size_t)r * ldc + o;
            *y = accumulate ? *y + sums[r] : sums[r];
        }
    }
}

// MARK: - Decoding rows with 8-bit activations

// Activations quantized as llama.cpp's quantize_row_q8_0 does (d = max|x| / 127 per 32 elements, q = x / d rounded),
// except that d stays fp32 rather than f16: rows × in int8 and rows × in/32 scales.
static void kt_q8_activations(const float *X, int rows, int in, int8_t *q, float *d) {
    const int blocks = in / 32;
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < blocks; b++) {
            const float *x = X + (size_t)r * in + 32 * b;
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
            const float scale = amax / 127.0f, inverse = scale > 0 ? 1.0f / scale : 0.0f;
            int8_t *out = q + (size_t)r * in + 32 * b;
            for (int j = 0; j < 32; j++) out[j] = (int8_t)nearbyintf(x[j] * inverse);
            d[(size_t)r * blocks + b] = scale;
        }
    }
}

#define KT_Q_AVX2_F16C __attribute__((target("avx2,fma,f16c")))

// Y[r, o] (+)= Σ_blocks d_w·d_x·Σ q_w·q_x: |q_w| times q_x carrying q_w's sign, multiplied to int16 pairs and
// summed to int32 (maddubs, madd; no overflow: |q| ≤ 127 for activations, 128 · 127 · 2 < 2¹⁵), one fused
// multiply-add of the block's scale product per 8 lanes. Up to 4 rows, even and odd blocks go to two accumulators,
// so one row is not bound by the fused multiply-add's latency.
KT_Q_AVX2_F16C static inline __attribute__((always_inline)) void
kt_q8_0_rows_q8_fixed(float *Y, int ldc, const int8_t *xq, const float *xd, const uint8_t *W, const int rows, int in,
                      int out, int accumulate) {
    const int blocks = in / 32, banks = rows <= 4 ? 2 : 1;
    const size_t rowBytes = (size_t)blocks * 34;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int o = 0; o < out; o++) {
        const uint8_t *w = W + (size_t)o * rowBytes;
        __m256 sums[2][KT_Q_ROWS_MAX];
        for (int bank = 0; bank < banks; bank++)
            for (int r = 0; r < rows; r++) sums[bank][r] = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const int bank = banks == 2 ? (b & 1) : 0;
            const uint8_t *block = w + (size_t)b * 34;
            const float dw = _cvtsh_ss(kt_q_load16(block));
            const __m256i qw = _mm256_loadu_si256((const __m256i *)(block + 2));
            const __m256i magnitude = _mm256_sign_epi8(qw, qw);
            for (int r = 0; r < rows; r++) {
                const __m256i qx = _mm256_loadu_si256((const __m256i *)(xq + (size_t)r * in + 32 * b));
                const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(qx, qw));
                const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                sums[bank][r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[(size_t)r * blocks + b]), dot, sums[bank][r]);
            }
        }
        if (banks == 2)
            for (int r = 0; r < rows; r++) sums[0][r] = _mm256_add_ps(sums[0][r], sums[1][r]);
        kt_q_store_sums(Y, ldc, o, sums[0], rows, accumulate);
    }
}

KT_Q_AVX2_F16C static void kt_q8_0_rows_q8_avx2(float *Y, int ldc, const int8_t *xq, const float *xd, const uint8_t *W,
                                                int rows, int in, int out, int accumulate) {
#define KT_Q8_0_ROWS_Q8(n) kt_q8_0_rows_q8_fixed(Y, ldc, xq, xd, W, n, in, out, accumulate)
    KT_Q_ROWS_SWITCH(rows, KT_Q8_0_ROWS_Q8)
#undef KT_Q8_0_ROWS_Q8
}

static void kt_q8_0_rows_q8_portable(float *Y, int ldc, const int8_t *xq, const float *xd, const uint8_t *W, int rows,
                                     int in, int out, int accumulate) {
    const int blocks = in / 32;
    const size_t rowBytes = (size_t)blocks * 34;
    for (int o = 0; o < out; o++) {
        const uint8_t *w = W + (size_t)o * rowBytes;
        for (int r = 0; r < rows; r++) {
            float sum = 0;
            for (int b = 0; b < blocks; b++) {
                const int8_t *qw = (const int8_t *)(w + (size_t)b * 34 + 2), *qx = xq + (size_t)r * in + 32 * b;
                int dot = 0;
                for (int j = 0; j < 32; j++) dot += qw[j] * qx[j];
                sum += kt_q_half(kt_q_load16(w + (size_t)b * 34)) * xd[(size_t)r * blocks + b] * (float)dot;
            }
            float *y = Y + (size_t)r * ldc + o;
            *y = accumulate ? *y + sum : sum;
        }
    }
}

// MARK: - Dispatch

typedef struct {
    int type, ldc, rows, in, out, accumulate, mode;
    float *Y;
    const float *X;
    const uint8_t *W;
    const int8_t *xq;  // 8-bit activations, or NULL
    const float *xd;
    int chunk;          // output features per claim, a multiple of 8
    atomic_int claimed;  // chunks handed out so far
} kt_q_rows_job;

// Output features `first` … `first + out` − 1 of the job.
static void kt_q_rows_range(const kt_q_rows_job *job, int first, int out) {
    float *Y = job->Y + first;
    const uint8_t *W = job->W + (size_t)first * kt_q_row_bytes(job->type, job->in);
    const int portable = (job->mode & KT_QUANT_ROWS_PORTABLE) || !kt_q_vectorised;
    if (job->xq) {
        if (portable) kt_q8_0_rows_q8_portable(Y, job->ldc, job->xq, job->xd, W, job->rows, job->in, out, job->accumulate);
        else kt_q8_0_rows_q8_avx2(Y, job->ldc, job->xq, job->xd, W, job->rows, job->in, out, job->accumulate);
    } else if (portable) {
        kt_q_rows_portable(job->type, Y, job->ldc, job->X, W, job->rows, job->in, out, job->accumulate);
    } else {
        kt_q_rows_avx2(job->type, Y, job->ldc, job->X, W, job->rows, job->in, out, job->accumulate);
    }
}

// Each thread claims chunks of output features until none is left, rather than a fixed share: on a shared host one
// core is often slower than the other, and with fixed halves the product waited for the slower one. Every output is
// computed by the same kernel whichever thread claims it, so the result does not depend on the split.
static void kt_q_rows_part(void *context, int part, int parts) {
    (void)part, (void)parts;
    kt_q_rows_job *job = context;
    for (;;) {
        const int first = atomic_fetch_add_explicit(&job->claimed, 1, memory_order_relaxed) * job->chunk;
        if (first >= job->out) return;
        kt_q_rows_range(job, first, first + job->chunk < job->out ? job->chunk : job->out - first);
    }
}

// Below this many weights a product runs on the calling thread: waking the team costs more than it saves.
#define KT_Q_PARALLEL_WEIGHTS (64 * 1024)

int kt_quant_rows_linear(int type, float *Y, int ldc, const float *X, const void *W, int rows, int in, int out,
                         int accumulate, int mode) {
    if (rows < 0 || rows > KT_Q_ROWS_MAX) return -1;
    if (rows == 0 || out <= 0) return 0;
    pthread_once(&kt_q_probe_once, kt_q_probe);
    kt_q_rows_job job = {type, ldc, rows, in, out, accumulate, mode, Y, X, W, NULL, NULL, out, 0};
    if (type == KT_QUANT_Q8_0 && !(mode & KT_QUANT_ROWS_FP32_ACTIVATIONS)) {
        // int8 values, then (64-byte aligned) one float scale per block
        const size_t count = (size_t)rows * in, scaleOffset = (count + 63) / 64 * 64;
        int8_t *values = kt_q_reserve(&kt_q_activations, scaleOffset + count / 32 * sizeof(float));
        float *scaleBuffer = (float *)(values + scaleOffset);
        kt_q8_activations(X, rows, in, values, scaleBuffer);
        job.xq = values;
        job.xd = scaleBuffer;
    }
    int parts = openblas_get_num_threads();
    if ((size_t)out * (size_t)in < KT_Q_PARALLEL_WEIGHTS || out < 16) parts = 1;
    // About eight chunks per thread: enough to even out a slower core, few enough that claiming costs nothing.
    if (parts > 1) job.chunk = ((out + 8 * parts - 1) / (8 * parts) + 7) / 8 * 8;
    kt_q_parallel(parts, kt_q_rows_part, &job);
    return 0;
}
