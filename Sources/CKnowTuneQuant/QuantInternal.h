// Implements the helpers the block code and the products share: f16 conversions and unaligned loads; does not
// know any block layout.
#ifndef KNOWTUNE_QUANT_INTERNAL_H
#define KNOWTUNE_QUANT_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "KnowTuneQuant.h"

static inline uint16_t kt_q_load16(const uint8_t *bytes) {
    uint16_t value;
    memcpy(&value, bytes, 2);
    return value;
}

// The float an IEEE binary16 value represents (exact).
static inline float kt_q_half(uint16_t bits) {
    const uint32_t sign = (uint32_t)(bits & 0x8000u) << 16, magnitude = bits & 0x7FFFu;
    union { uint32_t u; float f; } value;
    if (magnitude >= 0x7C00u) value.u = sign | 0x7F800000u | ((magnitude & 0x3FFu) << 13);
    else if (magnitude >= 0x0400u) value.u = sign | ((magnitude << 13) + 0x38000000u);
    else {
        value.f = (float)magnitude * 5.9604644775390625e-8f;  // subnormal: m · 2⁻²⁴, exact
        value.u |= sign;
    }
    return value.f;
}

// binary16 bits of a float, rounded to nearest even (ggml's GGML_FP32_TO_FP16).
static inline uint16_t kt_q_half_bits(float value) {
    union { float f; uint32_t u; } bits = {value};
    const uint16_t sign = (uint16_t)((bits.u >> 16) & 0x8000u);
    uint32_t magnitude = bits.u & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return sign | 0x7E00u;
    if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // 65520 and above round to infinity
    if (magnitude < 0x38800000u) return sign | (uint16_t)nearbyintf(fabsf(value) * 16777216.0f);
    magnitude += 0x0FFFu + ((magnitude >> 13) & 1u);
    return sign | (uint16_t)((magnitude - 0x38000000u) >> 13);
}

// Bytes of one row of `in` elements.
static inline size_t kt_q_row_bytes(int type, int in) {
    return (size_t)in / (size_t)kt_quant_block_elements(type) * (size_t)kt_quant_block_bytes(type);
}

// Runs task(context, part, parts) for part 0 … parts − 1, part 0 on the calling thread and the others on the
// decoding team's workers (QuantThreads.c), and returns when all have finished. Fewer parts may run (parts = 1
// when another product holds the team); a task must cover its share for whatever `parts` it is given.
typedef void (*kt_q_part_fn)(void *context, int part, int parts);
void kt_q_parallel(int parts, kt_q_part_fn task, void *context);

#endif
