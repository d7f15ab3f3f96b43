// Implements the decoding-time product Y[rows, out] (+)= X[rows, in]·Wᵀ for a few rows (at most 8) and a 16-bit
// weight W [out, in] (bf16 or IEEE half): each weight row is read once and widened in registers for all rows, so
// the weight's 16-bit bytes are the memory traffic (decoding is bound by it). bf16 rounds the activations to bf16
// first (autocast, as the training products); f16 uses them as they are. Runs on the calling thread; the
// vectorised path does not allocate per call (the portable one widens each weight row into a per-call buffer).
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include "BF16Internal.h"
#include "KnowTuneBF16.h"

#define KT_ROWS_MAX 8

static pthread_once_t kt_rows_once = PTHREAD_ONCE_INIT;
static int kt_rows_vectorised = 0;

static void kt_rows_probe(void) {
    __builtin_cpu_init();
    kt_rows_vectorised = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

// The rounded activations of a bf16 call, in the thread's kernel workspace (kept between calls: decoding calls this
// hundreds of times per token).
static const float *kt_rows_rounded(const float *X, size_t count) {
    float *rounded = kt_workspace_reserve(count * sizeof(float));
    if (!rounded) abort();
    kt_bf16_rounded_copy(rounded, X, count);
    return rounded;
}

#define KT_AVX2 __attribute__((target("avx2,fma,f16c")))

KT_AVX2 static inline __m256 kt_widen8(const uint16_t *w, int isHalf) {
    __m128i bits = _mm_loadu_si128((const __m128i *)w);
    if (isHalf) return _mm256_cvtph_ps(bits);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}

KT_AVX2 static inline float kt_sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Written for a constant `rows`, instantiated per row count by kt_rows_avx2, so the accumulators stay in registers
// (with a run-time count they lived on the stack, each step waiting for a store to reach the next load).
KT_AVX2 static inline __attribute__((always_inline)) void
kt_rows_fixed(float *Y, int ldc, const float *X, const uint16_t *W, const int rows, int in, int out, int accumulate,
              int isHalf) {
    const int vectorEnd = in / 8 * 8;
    for (int o = 0; o < out; o++) {
        const uint16_t *w = W + (size_t)o * in;
        __m256 sums[KT_ROWS_MAX];
        for (int r = 0; r < rows; r++) sums[r] = _mm256_setzero_ps();
        for (int k = 0; k < vectorEnd; k += 8) {
            const __m256 wk = kt_widen8(w + k, isHalf);
            for (int r = 0; r < rows; r++) sums[r] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(X + (size_t)r * in + k), sums[r]);
        }
        for (int r = 0; r < rows; r++) {
            float sum = kt_sum8(sums[r]);
            for (int k = vectorEnd; k < in; k++)
                sum += (isHalf ? _cvtsh_ss(w[k]) : kt_bf16_float(w[k])) * X[(size_t)r * in + k];
            float *y = Y + (size_t)r * ldc + o;
            *y = accumulate ? *y + sum : sum;
        }
    }
}

KT_AVX2 static void kt_rows_avx2(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out,
                                 int accumulate, int isHalf) {
    switch (rows) {
#define KT_ROWS_CASE(n) \
    case n: kt_rows_fixed(Y, ldc, X, W, n, in, out, accumulate, isHalf); break;
        KT_ROWS_CASE(1) KT_ROWS_CASE(2) KT_ROWS_CASE(3) KT_ROWS_CASE(4)
        KT_ROWS_CASE(5) KT_ROWS_CASE(6) KT_ROWS_CASE(7) KT_ROWS_CASE(8)
#undef KT_ROWS_CASE
    }
}

static void kt_rows_portable(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out,
                             int accumulate, int isHalf) {
    float *widened = malloc((size_t)in * sizeof(float));
    if (!widened) abort();
    for (int o = 0; o < out; o++) {
        if (isHalf) kt_f16_portable_to_floats(widened, W + (size_t)o * in, (size_t)in);
        else kt_bf16_to_floats(widened, W + (size_t)o * in, (size_t)in);
        for (int r = 0; r < rows; r++) {
            float sum = 0;
            for (int k = 0; k < in; k++) sum += widened[k] * X[(size_t)r * in + k];
            float *y = Y + (size_t)r * ldc + o;
            *y = accumulate ? *y + sum : sum;
        }
    }
    free(widened);
}

static int kt_rows_dispatch(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out,
                            int accumulate, int isHalf, int portable) {
    if (rows < 0 || rows > KT_ROWS_MAX) return -1;
    if (rows == 0 || out <= 0) return 0;
    pthread_once(&kt_rows_once, kt_rows_probe);
    const float *activations = isHalf ? X : kt_rows_rounded(X, (size_t)rows * in);
    // One thread: OpenBLAS's threads keep spinning between calls, and a second thread here competed with them
    // (measured 2 × slower at batch 1 with OPENBLAS_NUM_THREADS=2).
    if (kt_rows_vectorised && !portable) kt_rows_avx2(Y, ldc, activations, W, rows, in, out, accumulate, isHalf);
    else kt_rows_portable(Y, ldc, activations, W, rows, in, out, accumulate, isHalf);
    return 0;
}

int kt_half_rows_linear(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out, int accumulate,
                        int isHalf) {
    return kt_rows_dispatch(Y, ldc, X, W, rows, in, out, accumulate, isHalf, 0);
}

int kt_half_rows_linear_portable(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out,
                                 int accumulate, int isHalf) {
    return kt_rows_dispatch(Y, ldc, X, W, rows, in, out, accumulate, isHalf, 1);
}
