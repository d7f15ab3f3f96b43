// Implements the interface of the bf16 frozen-weight products of a linear layer: Y = X·Wᵀ and dX = dY·W with W
// stored as bfloat16 [out, in] row-major and fp32 activations rounded to bf16 (round to nearest even) only as
// inputs to the products, accumulating in fp32 (PyTorch CPU autocast semantics); does not keep state between
// calls other than a per-calling-thread workspace (see kt_bf16_release_workspace).
//
// Two paths compute the same products:
//  - native: AVX-512 BF16 `vdpbf16ps`, chosen at run time (cpuid leaf 7 subleaf 1 EAX bit 5 plus OS-enabled
//    AVX-512 state), own pthreads split over output columns. Each output element is computed by exactly one
//    thread in a fixed order, so results are bitwise identical for every thread count.
//  - fallback: W converted tile by tile to fp32 and multiplied by `cblas_sgemm` (OpenBLAS's own threads) from
//    the same bf16-rounded activations.
// Sizes: rows = N (tokens), in/out = the layer's feature counts. All matrices are dense row-major.
#ifndef KNOWTUNE_BF16_H
#define KNOWTUNE_BF16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    // The native kernel when the CPU has it, else the fallback; KNOWTUNE_BF16_PATH=fallback in the environment
    // (read once per process) forces the fallback.
    KT_BF16_PATH_AUTOMATIC = 0,
    KT_BF16_PATH_NATIVE = 1,    // AVX-512 BF16; a call requesting it on a CPU without it computes nothing
    KT_BF16_PATH_FALLBACK = 2,  // bf16 → fp32 tiles + cblas_sgemm
} kt_bf16_path;

// 1 when this CPU and OS support AVX-512 BF16 (with AVX-512 F/BW/VL), else 0. Cached after the first call.
int kt_bf16_has_avx512bf16(void);

// The path a call with `path` runs: KT_BF16_PATH_NATIVE or KT_BF16_PATH_FALLBACK, or -1 when `path` is
// KT_BF16_PATH_NATIVE and the CPU lacks AVX-512 BF16.
int kt_bf16_resolve_path(kt_bf16_path path);

// Y[rows, out] (+)= alpha · bf16(X[rows, in]) · Wᵀ, W bf16 [out, in]. With accumulate = 0, Y is overwritten.
// Threads: openblas_get_num_threads(). Path: automatic.
void kt_bf16_linear(float *Y, const float *X, const uint16_t *W, int rows, int in, int out, float alpha,
                    int accumulate);

// dX[rows, in] (+)= alpha · bf16(dY[rows, out]) · W, W bf16 [out, in]: the input gradient of kt_bf16_linear.
void kt_bf16_linear_input_gradient(float *dX, const float *dY, const uint16_t *W, int rows, int in, int out,
                                   float alpha, int accumulate);

// As above with an explicit thread count (<= 0: openblas_get_num_threads(); the fallback always uses OpenBLAS's
// threads) and path. Return the path that ran (KT_BF16_PATH_NATIVE or KT_BF16_PATH_FALLBACK), or -1 when
// nothing was computed because the native path was requested on a CPU without it.
int kt_bf16_linear_with(float *Y, const float *X, const uint16_t *W, int rows, int in, int out, float alpha,
                        int accumulate, int threads, kt_bf16_path path);
int kt_bf16_linear_input_gradient_with(float *dX, const float *dY, const uint16_t *W, int rows, int in, int out,
                                       float alpha, int accumulate, int threads, kt_bf16_path path);

// bf16 bits of `count` floats, rounded to nearest even (NaN stays NaN, quiet), as PyTorch's `.to(bfloat16)`.
void kt_bf16_from_floats(uint16_t *destination, const float *source, size_t count);
// The floats that `count` bf16 values represent (exact).
void kt_bf16_to_floats(float *destination, const uint16_t *source, size_t count);

// IEEE binary16 (f16) weights, for a frozen base stored in half precision: W [out, in] f16 is converted tile by
// tile to fp32 (exactly) and multiplied by cblas_sgemm with the fp32 activations as they are (no rounding), so
// only the storage is 16-bit. Same shapes and accumulate rule as the bf16 products.
void kt_f16_linear(float *Y, const float *X, const uint16_t *W, int rows, int in, int out, float alpha, int accumulate);
void kt_f16_linear_input_gradient(float *dX, const float *dY, const uint16_t *W, int rows, int in, int out, float alpha,
                                  int accumulate);

// binary16 bits of `count` floats, rounded to nearest even (overflow to ±inf, as numpy's astype(float16)).
void kt_f16_from_floats(uint16_t *destination, const float *source, size_t count);
// The floats that `count` binary16 values represent (exact).
void kt_f16_to_floats(float *destination, const uint16_t *source, size_t count);
// The same two conversions without F16C, as they run on a CPU that lacks it (for tests on CPUs that have it).
void kt_f16_portable_from_floats(uint16_t *destination, const float *source, size_t count);
void kt_f16_portable_to_floats(float *destination, const uint16_t *source, size_t count);

// Decoding's few rows: Y[r, o] (+)= Σₖ X[r, k]·W[o, k] for rows ≤ 8, W [out, in] bf16 (isHalf = 0; X rounded to
// bf16 first) or binary16 (isHalf = 1; X as it is); output rows are `ldc` floats apart. Each weight row is read
// once for all rows, on the calling thread. Returns 0, or -1 (nothing computed) for more than 8 rows.
int kt_half_rows_linear(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out, int accumulate,
                        int isHalf);
// The same without AVX2/FMA/F16C, as it runs on a CPU that lacks them (for tests on CPUs that have them).
int kt_half_rows_linear_portable(float *Y, int ldc, const float *X, const uint16_t *W, int rows, int in, int out,
                                 int accumulate, int isHalf);

// Frees the calling thread's workspace (packed or rounded activations and weight panels, grown to the largest call so
// far).
void kt_bf16_release_workspace(void);

#ifdef __cplusplus
}
#endif

#endif
