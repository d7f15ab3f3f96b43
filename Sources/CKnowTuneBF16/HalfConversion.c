// Implements the conversions between fp32 and IEEE binary16 declared in KnowTuneBF16.h: F16C when the CPU has it
// (every x86-64 CPU with AVX2 does), else exact scalar bit manipulation; does not multiply anything.
#include <immintrin.h>
#include <pthread.h>
#include <string.h>
#include "BF16Internal.h"
#include "KnowTuneBF16.h"

static pthread_once_t kt_f16c_once = PTHREAD_ONCE_INIT;
static int kt_f16c_available = 0;

static void kt_f16c_probe(void) {
    __builtin_cpu_init();
    kt_f16c_available = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
}

static int kt_has_f16c(void) {
    pthread_once(&kt_f16c_once, kt_f16c_probe);
    return kt_f16c_available;
}

#define KT_F16C __attribute__((target("avx,f16c")))

KT_F16C void kt_f16c_to_floats(float *destination, const uint16_t *source, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(destination + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(source + i))));
    for (; i < count; i++) destination[i] = _cvtsh_ss(source[i]);
}

KT_F16C void kt_f16c_from_floats(uint16_t *destination, const float *source, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm_storeu_si128((__m128i *)(destination + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(source + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < count; i++) destination[i] = _cvtss_sh(source[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static float kt_f16_scalar_float(uint16_t bits) {
    const uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
    uint32_t exponent = (bits >> 10) & 0x1Fu, mantissa = bits & 0x3FFu, result;
    if (exponent == 0x1F) {
        result = sign | 0x7F800000u | (mantissa << 13);  // inf, NaN
    } else if (exponent != 0) {
        result = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        result = sign;
    } else {
        // Subnormal: normalise the mantissa.
        int shift = 0;
        while (!(mantissa & 0x400u)) { mantissa <<= 1; shift++; }
        result = sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3FFu) << 13);
    }
    float value;
    memcpy(&value, &result, sizeof value);
    return value;
}

static uint16_t kt_f16_scalar_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return sign | 0x7E00u | (uint16_t)((magnitude >> 13) & 0x3FFu);  // NaN stays NaN
    if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // rounds to ≥ 65520: infinity
    if (magnitude < 0x38800000u) {
        // Below the smallest normal half: round the value scaled by 2^24 to an integer count of 2^-24 units.
        if (magnitude < 0x33000000u) return sign;  // below half the smallest subnormal
        const uint32_t exponent = magnitude >> 23, mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
        const uint32_t shift = 126 - exponent;  // mantissa · 2^(exponent−150) / 2^−24
        uint32_t units = mantissa >> shift;
        const uint32_t remainder = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (units & 1u))) units++;
        return sign | (uint16_t)units;
    }
    // Normal: rebias the exponent and round the mantissa to 10 bits, nearest even (a carry bumps the exponent).
    uint32_t rebased = magnitude - 0x38000000u;
    rebased += 0xFFFu + ((rebased >> 13) & 1u);
    return sign | (uint16_t)(rebased >> 13);
}

void kt_f16_portable_to_floats(float *destination, const uint16_t *source, size_t count) {
    for (size_t i = 0; i < count; i++) destination[i] = kt_f16_scalar_float(source[i]);
}

void kt_f16_portable_from_floats(uint16_t *destination, const float *source, size_t count) {
    for (size_t i = 0; i < count; i++) destination[i] = kt_f16_scalar_bits(source[i]);
}

void kt_f16_to_floats(float *destination, const uint16_t *source, size_t count) {
    if (kt_has_f16c()) kt_f16c_to_floats(destination, source, count);
    else kt_f16_portable_to_floats(destination, source, count);
}

void kt_f16_from_floats(uint16_t *destination, const float *source, size_t count) {
    if (kt_has_f16c()) kt_f16c_from_floats(destination, source, count);
    else kt_f16_portable_from_floats(destination, source, count);
}
