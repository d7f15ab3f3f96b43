// Implements the AVX2+FMA path of KnowTuneElementwise.h: exp as 2^n·p(r) with n = round(x·log2 e), r = x − n·ln 2
// (ln 2 split in two for exactness) and p Cephes' degree-6 expf polynomial, 8 lanes at a time; 2^n is applied as two
// factors so that n = 128 overflows to infinity and n = −127 stays a (subnormal) number. Row tails use the same
// arithmetic in scalar form, so a value's exp does not depend on where it sits in a row. Inputs are clamped to
// [−88, 89] (below: a subnormal instead of a smaller one or 0; above: infinity), NaN passes through. Compiled for AVX2+FMA by
// function attribute; only called after the dispatcher's CPU check.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ElementwiseInternal.h"

#define KT_AVX2 __attribute__((target("avx2,fma")))

static const float kt_exp_upper = 89.0f, kt_exp_lower = -88.0f;
static const float kt_log2e = 1.44269504088896341f, kt_ln2_high = 0.693359375f, kt_ln2_low = -2.12194440e-4f;
static const float kt_p0 = 1.9875691500e-4f, kt_p1 = 1.3981999507e-3f, kt_p2 = 8.3334519073e-3f, kt_p3 = 4.1665795894e-2f,
                   kt_p4 = 1.6666665459e-1f, kt_p5 = 5.0000001201e-1f;

KT_AVX2 static inline __m256 kt_exp8(__m256 x) {
    // min/max return their second operand when either is NaN, so NaN survives the clamp.
    x = _mm256_max_ps(_mm256_set1_ps(kt_exp_lower), _mm256_min_ps(_mm256_set1_ps(kt_exp_upper), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kt_log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kt_ln2_high), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kt_ln2_low), r);
    __m256 p = _mm256_set1_ps(kt_p0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kt_p1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kt_p2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kt_p3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kt_p4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kt_p5));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1));
    const __m256i whole = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(whole, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 first = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    const __m256 second = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(whole, half), bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, first), second);
}

// The same arithmetic for one value (row tails).
KT_AVX2 static inline float kt_exp1(float x) {
    if (!(x == x)) return x;
    x = fmaxf(kt_exp_lower, fminf(kt_exp_upper, x));
    const float n = nearbyintf(x * kt_log2e);
    float r = fmaf(-n, kt_ln2_high, x);
    r = fmaf(-n, kt_ln2_low, r);
    float p = kt_p0;
    p = fmaf(p, r, kt_p1);
    p = fmaf(p, r, kt_p2);
    p = fmaf(p, r, kt_p3);
    p = fmaf(p, r, kt_p4);
    p = fmaf(p, r, kt_p5);
    const float y = fmaf(p, r * r, r) + 1;
    const int32_t whole = (int32_t)n, half = whole >> 1;
    const uint32_t firstBits = (uint32_t)(half + 127) << 23, secondBits = (uint32_t)(whole - half + 127) << 23;
    float first, second;
    memcpy(&first, &firstBits, sizeof first);
    memcpy(&second, &secondBits, sizeof second);
    return (y * first) * second;
}

KT_AVX2 static inline float kt_horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KT_AVX2 void kt_exp_avx2(float *destination, const float *source, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(destination + i, kt_exp8(_mm256_loadu_ps(source + i)));
    for (; i < count; i++) destination[i] = kt_exp1(source[i]);
}

KT_AVX2 void kt_swiglu_forward_avx2(float *out, const float *gate, const float *up, size_t count) {
    const __m256 one = _mm256_set1_ps(1), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = kt_exp8(_mm256_sub_ps(zero, g));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < count; i++) out[i] = gate[i] / (1 + kt_exp1(-gate[i])) * up[i];
}

KT_AVX2 void kt_swiglu_backward_avx2(float *gate_gradient, float *up_gradient, const float *out_gradient, const float *gate,
                                     const float *up, size_t count) {
    const __m256 one = _mm256_set1_ps(1), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), dh = _mm256_loadu_ps(out_gradient + i);
        const __m256 sigmoid = _mm256_div_ps(one, _mm256_add_ps(one, kt_exp8(_mm256_sub_ps(zero, g))));
        _mm256_storeu_ps(up_gradient + i, _mm256_mul_ps(dh, _mm256_mul_ps(g, sigmoid)));
        const __m256 slope = _mm256_fmadd_ps(g, _mm256_sub_ps(one, sigmoid), one);
        _mm256_storeu_ps(gate_gradient + i, _mm256_mul_ps(_mm256_mul_ps(dh, _mm256_loadu_ps(up + i)), _mm256_mul_ps(sigmoid, slope)));
    }
    for (; i < count; i++) {
        const float g = gate[i], sigmoid = 1 / (1 + kt_exp1(-g)), dh = out_gradient[i];
        up_gradient[i] = dh * (g * sigmoid);
        gate_gradient[i] = (dh * up[i]) * (sigmoid * fmaf(g, 1 - sigmoid, 1));
    }
}

KT_AVX2 void kt_rmsnorm_forward_avx2(float *out, float *reciprocal_rms, const float *x, const float *weight, size_t rows,
                                     size_t channels, float epsilon) {
    for (size_t row = 0; row < rows; row++) {
        const float *in = x + row * channels;
        float *y = out + row * channels;
        __m256 squares = _mm256_setzero_ps();
        size_t i = 0;
        for (; i + 8 <= channels; i += 8) {
            const __m256 v = _mm256_loadu_ps(in + i);
            squares = _mm256_fmadd_ps(v, v, squares);
        }
        float sum_of_squares = kt_horizontal_sum(squares);
        for (; i < channels; i++) sum_of_squares += in[i] * in[i];
        const float rstd = 1 / sqrtf(sum_of_squares / (float)channels + epsilon);
        if (reciprocal_rms) reciprocal_rms[row] = rstd;
        const __m256 r = _mm256_set1_ps(rstd);
        for (i = 0; i + 8 <= channels; i += 8) {
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(in + i), r), _mm256_loadu_ps(weight + i)));
        }
        for (; i < channels; i++) y[i] = (in[i] * rstd) * weight[i];
    }
}

KT_AVX2 void kt_rmsnorm_backward_avx2(float *x_gradient, const float *out_gradient, const float *x, const float *weight,
                                      const float *reciprocal_rms, size_t rows, size_t channels) {
    for (size_t row = 0; row < rows; row++) {
        const float *in = x + row * channels, *dy = out_gradient + row * channels;
        float *dx = x_gradient + row * channels;
        const float rstd = reciprocal_rms[row];
        __m256 dots = _mm256_setzero_ps();
        size_t i = 0;
        for (; i + 8 <= channels; i += 8) {
            const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(weight + i));
            dots = _mm256_fmadd_ps(g, _mm256_loadu_ps(in + i), dots);
        }
        float dot = kt_horizontal_sum(dots);
        for (; i < channels; i++) dot += dy[i] * weight[i] * in[i];
        const float coefficient = dot * rstd * rstd * rstd / (float)channels;
        const __m256 r = _mm256_set1_ps(rstd), c = _mm256_set1_ps(coefficient);
        for (i = 0; i + 8 <= channels; i += 8) {
            const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(weight + i));
            const __m256 update = _mm256_fnmadd_ps(_mm256_loadu_ps(in + i), c, _mm256_mul_ps(g, r));
            _mm256_storeu_ps(dx + i, _mm256_add_ps(_mm256_loadu_ps(dx + i), update));
        }
        for (; i < channels; i++) dx[i] += dy[i] * weight[i] * rstd - in[i] * coefficient;
    }
}

KT_AVX2 float kt_max_avx2(const float *x, size_t count) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 8 <= count; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float maximum = _mm_cvtss_f32(h);
    for (; j < count; j++) if (x[j] > maximum) maximum = x[j];
    return maximum;
}

KT_AVX2 float kt_softmax_row_avx2(float *row, size_t visible, size_t width) {
    const float maximum = kt_max_avx2(row, visible);
    const __m256 shift = _mm256_set1_ps(maximum);
    __m256 sums = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= visible; j += 8) {
        const __m256 e = kt_exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), shift));
        _mm256_storeu_ps(row + j, e);
        sums = _mm256_add_ps(sums, e);
    }
    float sum = kt_horizontal_sum(sums);
    for (; j < visible; j++) {
        row[j] = kt_exp1(row[j] - maximum);
        sum += row[j];
    }
    const float inverse = 1 / sum;
    const __m256 scale = _mm256_set1_ps(inverse);
    for (j = 0; j + 8 <= visible; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), scale));
    for (; j < visible; j++) row[j] *= inverse;
    if (visible < width) memset(row + visible, 0, (width - visible) * sizeof(float));
    return maximum + logf(sum);
}

KT_AVX2 void kt_softmax_row_backward_avx2(float *p, float *dp, size_t visible, size_t width, float lse, float delta) {
    const __m256 shift = _mm256_set1_ps(lse), d = _mm256_set1_ps(delta);
    size_t j = 0;
    for (; j + 8 <= visible; j += 8) {
        const __m256 probability = kt_exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), shift));
        _mm256_storeu_ps(p + j, probability);
        _mm256_storeu_ps(dp + j, _mm256_mul_ps(probability, _mm256_sub_ps(_mm256_loadu_ps(dp + j), d)));
    }
    for (; j < visible; j++) {
        p[j] = kt_exp1(p[j] - lse);
        dp[j] = p[j] * (dp[j] - delta);
    }
    if (visible < width) {
        memset(p + visible, 0, (width - visible) * sizeof(float));
        memset(dp + visible, 0, (width - visible) * sizeof(float));
    }
}

KT_AVX2 double kt_sum_exp_shifted_avx2(const float *x, size_t count, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256d low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
    size_t j = 0;
    for (; j + 8 <= count; j += 8) {
        const __m256 e = kt_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), s));
        low = _mm256_add_pd(low, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        high = _mm256_add_pd(high, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(low, high));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; j < count; j++) sum += (double)kt_exp1(x[j] - shift);
    return sum;
}

KT_AVX2 void kt_scaled_exp_shifted_avx2(float *x, size_t count, float shift, float scale) {
    const __m256 s = _mm256_set1_ps(shift), w = _mm256_set1_ps(scale);
    size_t j = 0;
    for (; j + 8 <= count; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(w, kt_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), s))));
    for (; j < count; j++) x[j] = scale * kt_exp1(x[j] - shift);
}

#endif
