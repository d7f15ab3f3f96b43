// Implements the portable path of KnowTuneElementwise.h: scalar loops over libm's expf, the arithmetic KnowTune's
// Swift kernels used before the AVX2 path; does not vectorize by hand.
#include <math.h>
#include <string.h>
#include "ElementwiseInternal.h"

void kt_exp_portable(float *destination, const float *source, size_t count) {
    for (size_t i = 0; i < count; i++) destination[i] = expf(source[i]);
}

void kt_swiglu_forward_portable(float *out, const float *gate, const float *up, size_t count) {
    for (size_t i = 0; i < count; i++) out[i] = gate[i] / (1 + expf(-gate[i])) * up[i];
}

void kt_swiglu_backward_portable(float *gate_gradient, float *up_gradient, const float *out_gradient, const float *gate,
                                 const float *up, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const float g = gate[i], sigmoid = 1 / (1 + expf(-g)), dh = out_gradient[i];
        up_gradient[i] = dh * (g * sigmoid);
        gate_gradient[i] = dh * up[i] * sigmoid * (1 + g * (1 - sigmoid));
    }
}

float kt_softmax_row_portable(float *row, size_t visible, size_t width) {
    const float maximum = kt_max_portable(row, visible);
    float sum = 0;
    for (size_t j = 0; j < visible; j++) {
        row[j] = expf(row[j] - maximum);
        sum += row[j];
    }
    const float inverse = 1 / sum;
    for (size_t j = 0; j < visible; j++) row[j] *= inverse;
    if (visible < width) memset(row + visible, 0, (width - visible) * sizeof(float));
    return maximum + logf(sum);
}

void kt_softmax_row_backward_portable(float *p, float *dp, size_t visible, size_t width, float lse, float delta) {
    for (size_t j = 0; j < visible; j++) {
        p[j] = expf(p[j] - lse);
        dp[j] = p[j] * (dp[j] - delta);
    }
    if (visible < width) {
        memset(p + visible, 0, (width - visible) * sizeof(float));
        memset(dp + visible, 0, (width - visible) * sizeof(float));
    }
}

void kt_rmsnorm_forward_portable(float *out, float *reciprocal_rms, const float *x, const float *weight, size_t rows,
                                 size_t channels, float epsilon) {
    for (size_t row = 0; row < rows; row++) {
        const float *in = x + row * channels;
        float *y = out + row * channels;
        float sum_of_squares = 0;
        for (size_t i = 0; i < channels; i++) sum_of_squares += in[i] * in[i];
        const float rstd = 1 / sqrtf(sum_of_squares / (float)channels + epsilon);
        if (reciprocal_rms) reciprocal_rms[row] = rstd;
        for (size_t i = 0; i < channels; i++) y[i] = (in[i] * rstd) * weight[i];
    }
}

void kt_rmsnorm_backward_portable(float *x_gradient, const float *out_gradient, const float *x, const float *weight,
                                  const float *reciprocal_rms, size_t rows, size_t channels) {
    for (size_t row = 0; row < rows; row++) {
        const float *in = x + row * channels, *dy = out_gradient + row * channels;
        float *dx = x_gradient + row * channels;
        const float rstd = reciprocal_rms[row];
        float dot = 0;
        for (size_t i = 0; i < channels; i++) dot += dy[i] * weight[i] * in[i];
        const float coefficient = dot * rstd * rstd * rstd / (float)channels;
        for (size_t i = 0; i < channels; i++) dx[i] += dy[i] * weight[i] * rstd - in[i] * coefficient;
    }
}

float kt_max_portable(const float *x, size_t count) {
    float maximum = -INFINITY;
    for (size_t j = 0; j < count; j++) if (x[j] > maximum) maximum = x[j];
    return maximum;
}

double kt_sum_exp_shifted_portable(const float *x, size_t count, float shift) {
    double sum = 0;
    for (size_t j = 0; j < count; j++) sum += (double)expf(x[j] - shift);
    return sum;
}

void kt_scaled_exp_shifted_portable(float *x, size_t count, float shift, float scale) {
    for (size_t j = 0; j < count; j++) x[j] = scale * expf(x[j] - shift);
}
