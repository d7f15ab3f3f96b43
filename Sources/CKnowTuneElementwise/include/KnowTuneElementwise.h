// Implements the interface of the training step's exponential-heavy element-wise passes: SwiGLU forward and backward,
// attention's row softmax and its backward, and the cross-entropy head's max, Σ exp and scaled exp over a vocabulary
// row. An AVX2+FMA path computes exp 8 lanes at a time with a degree-6 polynomial after range reduction (relative
// error within 2 ulp of fp32, tested against libm); other CPUs, and KNOWTUNE_ELEMENTWISE_PATH=portable, take scalar
// loops over libm's expf. The two paths differ in the last bits, as two OpenBLAS kernels do.
#ifndef KNOWTUNE_ELEMENTWISE_H
#define KNOWTUNE_ELEMENTWISE_H

#include <stddef.h>

// 1 when the AVX2+FMA path runs (the CPU has it and it is not turned off), else 0.
int kt_elementwise_uses_avx2(void);

// destination[i] = exp(source[i]) for i < count (destination may equal source).
void kt_exp(float *destination, const float *source, size_t count);

// out[i] = silu(gate[i])·up[i].
void kt_swiglu_forward(float *out, const float *gate, const float *up, size_t count);

// dGate and dUp from dOut (h = silu(gate)·up).
void kt_swiglu_backward(float *gate_gradient, float *up_gradient, const float *out_gradient, const float *gate,
                        const float *up, size_t count);

// Softmax in place over row[0 ..< visible] (visible ≥ 1), zeros over row[visible ..< width]; returns the
// log-sum-exp of the visible entries.
float kt_softmax_row(float *row, size_t visible, size_t width);

// Attention backward of one row: p[j] = exp(p[j] − lse) (scores in, probabilities out), dp[j] = p[j]·(dp[j] − delta)
// for j < visible, both zero from visible to width.
void kt_softmax_row_backward(float *p, float *dp, size_t visible, size_t width, float lse, float delta);

// RMSNorm of `rows` rows of `channels`: out = x·rstd·weight, rstd = 1/√(mean(x²) + ε) saved when `reciprocal_rms` is
// not NULL.
void kt_rmsnorm_forward(float *out, float *reciprocal_rms, const float *x, const float *weight, size_t rows, size_t channels,
                        float epsilon);

// RMSNorm backward: dx += rstd·g − x·rstd³·mean(g·x), g = dOut·weight.
void kt_rmsnorm_backward(float *x_gradient, const float *out_gradient, const float *x, const float *weight,
                         const float *reciprocal_rms, size_t rows, size_t channels);

// max of x[0 ..< count] (count ≥ 1).
float kt_max(const float *x, size_t count);

// Σ exp(x[j] − shift), accumulated in double.
double kt_sum_exp_shifted(const float *x, size_t count, float shift);

// x[j] = scale · exp(x[j] − shift).
void kt_scaled_exp_shifted(float *x, size_t count, float shift, float scale);

#endif
