// Implements the declarations shared by the dispatcher and the two paths of KnowTuneElementwise.h; does not contain
// code.
#ifndef KNOWTUNE_ELEMENTWISE_INTERNAL_H
#define KNOWTUNE_ELEMENTWISE_INTERNAL_H

#include <stddef.h>

#define KT_ELEMENTWISE_PATH_FUNCTIONS(suffix)                                                                             \
    void kt_exp_##suffix(float *destination, const float *source, size_t count);                                         \
    void kt_swiglu_forward_##suffix(float *out, const float *gate, const float *up, size_t count);                       \
    void kt_swiglu_backward_##suffix(float *gate_gradient, float *up_gradient, const float *out_gradient,                \
                                     const float *gate, const float *up, size_t count);                                  \
    float kt_softmax_row_##suffix(float *row, size_t visible, size_t width);                                            \
    void kt_softmax_row_backward_##suffix(float *p, float *dp, size_t visible, size_t width, float lse, float delta);    \
    void kt_rmsnorm_forward_##suffix(float *out, float *reciprocal_rms, const float *x, const float *weight, size_t rows, \
                                     size_t channels, float epsilon);                                                    \
    void kt_rmsnorm_backward_##suffix(float *x_gradient, const float *out_gradient, const float *x, const float *weight,  \
                                      const float *reciprocal_rms, size_t rows, size_t channels);                        \
    float kt_max_##suffix(const float *x, size_t count);                                                                 \
    double kt_sum_exp_shifted_##suffix(const float *x, size_t count, float shift);                                      \
    void kt_scaled_exp_shifted_##suffix(float *x, size_t count, float shift, float scale);

KT_ELEMENTWISE_PATH_FUNCTIONS(portable)
KT_ELEMENTWISE_PATH_FUNCTIONS(avx2)

#endif
