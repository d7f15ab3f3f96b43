// Implements the public entry points of KnowTuneElementwise.h: one CPU check (AVX2 and FMA, with the OS saving YMM
// state, which __builtin_cpu_supports includes) and KNOWTUNE_ELEMENTWISE_PATH=portable, then each call goes to its path;
// does not compute.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ElementwiseInternal.h"
#include "KnowTuneElementwise.h"

static pthread_once_t kt_elementwise_once = PTHREAD_ONCE_INIT;
static int kt_elementwise_avx2 = 0;

static void kt_elementwise_probe(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const char *forced = getenv("KNOWTUNE_ELEMENTWISE_PATH");
    const int portable = forced != NULL && strcmp(forced, "portable") == 0;
    kt_elementwise_avx2 = !portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
}

int kt_elementwise_uses_avx2(void) {
    pthread_once(&kt_elementwise_once, kt_elementwise_probe);
    return kt_elementwise_avx2;
}

#if defined(__x86_64__)
#define KT_DISPATCH(name, ...) (kt_elementwise_uses_avx2() ? name##_avx2(__VA_ARGS__) : name##_portable(__VA_ARGS__))
#else
#define KT_DISPATCH(name, ...) name##_portable(__VA_ARGS__)
#endif

void kt_exp(float *destination, const float *source, size_t count) { KT_DISPATCH(kt_exp, destination, source, count); }

void kt_swiglu_forward(float *out, const float *gate, const float *up, size_t count) {
    KT_DISPATCH(kt_swiglu_forward, out, gate, up, count);
}

void kt_swiglu_backward(float *gate_gradient, float *up_gradient, const float *out_gradient, const float *gate,
                        const float *up, size_t count) {
    KT_DISPATCH(kt_swiglu_backward, gate_gradient, up_gradient, out_gradient, gate, up, count);
}

float kt_softmax_row(float *row, size_t visible, size_t width) { return KT_DISPATCH(kt_softmax_row, row, visible, width); }

void kt_softmax_row_backward(float *p, float *dp, size_t visible, size_t width, float lse, float delta) {
    KT_DISPATCH(kt_softmax_row_backward, p, dp, visible, width, lse, delta);
}

void kt_rmsnorm_forward(float *out, float *reciprocal_rms, const float *x, const float *weight, size_t rows, size_t channels,
                        float epsilon) {
    KT_DISPATCH(kt_rmsnorm_forward, out, reciprocal_rms, x, weight, rows, channels, epsilon);
}

void kt_rmsnorm_backward(float *x_gradient, const float *out_gradient, const float *x, const float *weight,
                         const float *reciprocal_rms, size_t rows, size_t channels) {
    KT_DISPATCH(kt_rmsnorm_backward, x_gradient, out_gradient, x, weight, reciprocal_rms, rows, channels);
}

float kt_max(const float *x, size_t count) { return KT_DISPATCH(kt_max, x, count); }

double kt_sum_exp_shifted(const float *x, size_t count, float shift) { return KT_DISPATCH(kt_sum_exp_shifted, x, count, shift); }

void kt_scaled_exp_shifted(float *x, size_t count, float shift, float scale) {
    KT_DISPATCH(kt_scaled_exp_shifted, x, count, shift, scale);
}
