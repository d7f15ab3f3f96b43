// Implements the interface of the quantized frozen-weight kernels: ggml's block formats Q8_0, Q4_0, Q4_1, Q5_0 and
// Q4_K (the GGUF block layouts, codes as in a GGUF tensor index) turned into fp32 and back, and the two products of a
// linear layer with such a weight W [out, in] row-major (each row whole blocks):
//  - training's products (any row count): tiles of W dequantized into a per-thread buffer and multiplied by
//    cblas_sgemm, so the result is the fp32 product with the dequantized weight;
//  - decoding's few rows (at most 8): each block read once for all rows, on a team of threads; Q8_0 with 8-bit
//    activations, the others expanded in cache against fp32 activations.
// No call allocates except the per-thread tile and activation buffers, kept between calls (kt_quant_release_workspace
// frees both), and the decoding team's threads, started once.
#ifndef KNOWTUNE_QUANT_H
#define KNOWTUNE_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KT_QUANT_Q4_0 = 2,
    KT_QUANT_Q4_1 = 3,
    KT_QUANT_Q5_0 = 6,
    KT_QUANT_Q8_0 = 8,
    KT_QUANT_Q4_K = 12,
} kt_quant_type;

// Elements and bytes of one block of `type`; 0 for a type this target does not implement.
int kt_quant_block_elements(int type);
int kt_quant_block_bytes(int type);

// `count` elements (a multiple of the block) from blocks at `source` into fp32, exactly as ggml's dequantize_row_*.
void kt_quant_dequantize(int type, float *destination, const void *source, size_t count);

// `count` floats (a multiple of the block) into blocks at `destination`, rounding as ggml's reference quantizers
// (quantize_row_*_ref) do for the legacy types; Q4_K takes each 32-element sub-block's range as its scale and min
// and then refines both by least squares on the chosen quants.
void kt_quant_quantize(int type, void *destination, const float *source, size_t count);

// Y[rows, out] (+)= alpha · X[rows, in] · Wᵀ.
void kt_quant_linear(int type, float *Y, const float *X, const void *W, int rows, int in, int out, float alpha,
                     int accumulate);
// dX[rows, in] (+)= alpha · dY[rows, out] · W.
void kt_quant_linear_input_gradient(int type, float *dX, const float *dY, const void *W, int rows, int in, int out,
                                    float alpha, int accumulate);

// Decoding: Y[r, o] (+)= Σₖ X[r, k]·W[o, k] for rows ≤ 8, output rows `ldc` floats apart, split by output feature
// over OpenBLAS's thread count. Q8_0 quantizes the activations to 8 bits per 32-element block first (llama.cpp's
// vec_dot_q8_0_q8_0, scales kept fp32) unless `mode` has KT_QUANT_ROWS_FP32_ACTIVATIONS; other types use fp32
// activations. AVX2 when the CPU has it, else portable C (KT_QUANT_ROWS_PORTABLE forces it). Returns -1 for more
// than 8 rows.
enum {
    KT_QUANT_ROWS_PORTABLE = 1,
    KT_QUANT_ROWS_FP32_ACTIVATIONS = 2,
};
int kt_quant_rows_linear(int type, float *Y, int ldc, const float *X, const void *W, int rows, int in, int out,
                         int accumulate, int mode);

void kt_quant_release_workspace(void);

#endif
