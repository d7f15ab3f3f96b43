// Implements ggml's block formats Q8_0, Q4_0, Q4_1, Q5_0 and Q4_K: their geometry, dequantization (the same
// arithmetic as ggml's dequantize_row_*, product before sum, no fused multiply-add) and quantization; does not
// multiply (QuantProducts.c).
//
// Layouts (little-endian, f16 = IEEE binary16):
//   Q8_0  34 bytes: f16 d, int8 q[32];                 x = d·q
//   Q4_0  18 bytes: f16 d, u8 qs[16];                  x = d·(q − 8)
//   Q4_1  20 bytes: f16 d, f16 m, u8 qs[16];           x = d·q + m
//   Q5_0  22 bytes: f16 d, u32 qh, u8 qs[16];          x = d·(q − 16), bit j of qh the fifth bit of element j
//   Q4_K 144 bytes: f16 d, f16 dmin, u8 scales[12], u8 qs[128]; eight 32-element sub-blocks with 6-bit scale and
//                   min; x = (d·scale)·q − dmin·min
// The 32-element blocks keep element j in the low nibble of byte j and element j + 16 in its high nibble; Q4_K's
// 64-element chunks keep elements 0–31 in the low nibbles of 32 bytes and 32–63 in their high nibbles.
#pragma STDC FP_CONTRACT OFF
#include <float.h>
#include <math.h>
#include <string.h>
#include "QuantInternal.h"

int kt_quant_block_elements(int type) {
    switch (type) {
    case KT_QUANT_Q4_0: case KT_QUANT_Q4_1: case KT_QUANT_Q5_0: case KT_QUANT_Q8_0: return 32;
    case KT_QUANT_Q4_K: return 256;
    default: return 0;
    }
}

int kt_quant_block_bytes(int type) {
    switch (type) {
    case KT_QUANT_Q4_0: return 18;
    case KT_QUANT_Q4_1: return 20;
    case KT_QUANT_Q5_0: return 22;
    case KT_QUANT_Q8_0: return 34;
    case KT_QUANT_Q4_K: return 144;
    default: return 0;
    }
}

// MARK: - Dequantization

static void kt_q8_0_block(float *y, const uint8_t *b) {
    const float d = kt_q_half(kt_q_load16(b));
    const int8_t *q = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)q[j];
}

static void kt_q4_0_block(float *y, const uint8_t *b) {
    const float d = kt_q_half(kt_q_load16(b));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 0x0F) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

static void kt_q4_1_block(float *y, const uint8_t *b) {
    const float d = kt_q_half(kt_q_load16(b)), m = kt_q_half(kt_q_load16(b + 2));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(b[4 + j] & 0x0F) + m;
        y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
    }
}

static void kt_q5_0_block(float *y, const uint8_t *b) {
    const float d = kt_q_half(kt_q_load16(b));
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    for (int j = 0; j < 16; j++) {
        const int low = (b[6 + j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
        const int high = (b[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
        y[j] = d * (float)(low - 16);
        y[j + 16] = d * (float)(high - 16);
    }
}

// ggml's get_scale_min_k4.
static inline void kt_q4_k_scale_min(int j, const uint8_t *s, int *scale, int *min) {
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void kt_q4_k_block(float *y, const uint8_t *b) {
    const float d = kt_q_half(kt_q_load16(b)), dmin = kt_q_half(kt_q_load16(b + 2));
    const uint8_t *scales = b + 4, *q = b + 16;
    for (int chunk = 0; chunk < 4; chunk++) {
        int scale, min;
        kt_q4_k_scale_min(2 * chunk, scales, &scale, &min);
        const float d1 = d * (float)scale, m1 = dmin * (float)min;
        kt_q4_k_scale_min(2 * chunk + 1, scales, &scale, &min);
        const float d2 = d * (float)scale, m2 = dmin * (float)min;
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 0x0F) - m1;
        for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
        y += 64;
        q += 32;
    }
}

void kt_quant_dequantize(int type, float *destination, const void *source, size_t count) {
    const size_t elements = (size_t)kt_quant_block_elements(type), bytes = (size_t)kt_quant_block_bytes(type);
    if (elements == 0) return;
    const uint8_t *block = source;
    for (size_t start = 0; start < count; start += elements, block += bytes) {
        switch (type) {
        case KT_QUANT_Q8_0: kt_q8_0_block(destination + start, block); break;
        case KT_QUANT_Q4_0: kt_q4_0_block(destination + start, block); break;
        case KT_QUANT_Q4_1: kt_q4_1_block(destination + start, block); break;
        case KT_QUANT_Q5_0: kt_q5_0_block(destination + start, block); break;
        case KT_QUANT_Q4_K: kt_q4_k_block(destination + start, block); break;
        }
    }
}

// MARK: - Quantization

static void kt_q_store16(uint8_t *b, uint16_t value) { memcpy(b, &value, 2); }

static inline int kt_q_min(int a, int b) { return a < b ? a : b; }

static void kt_q8_0_quantize(uint8_t *b, const float *x) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127, id = d != 0 ? 1 / d : 0;
    kt_q_store16(b, kt_q_half_bits(d));
    for (int j = 0; j < 32; j++) ((int8_t *)(b + 2))[j] = (int8_t)roundf(x[j] * id);
}

// The element of largest magnitude, with its sign (ggml's Q4_0 / Q5_0 scale is that over −8 or −16).
static float kt_q_signed_extreme(const float *x) {
    float amax = 0, extreme = 0;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            extreme = x[j];
        }
    return extreme;
}

static void kt_q4_0_quantize(uint8_t *b, const float *x) {
    const float d = kt_q_signed_extreme(x) / -8, id = d != 0 ? 1 / d : 0;
    kt_q_store16(b, kt_q_half_bits(d));
    for (int j = 0; j < 16; j++) {
        const int low = kt_q_min(15, (int8_t)(x[j] * id + 8.5f)), high = kt_q_min(15, (int8_t)(x[j + 16] * id + 8.5f));
        b[2 + j] = (uint8_t)(low | (high << 4));
    }
}

static void kt_q4_1_quantize(uint8_t *b, const float *x) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        min = fminf(min, x[j]);
        max = fmaxf(max, x[j]);
    }
    const float d = (max - min) / 15, id = d != 0 ? 1 / d : 0;
    kt_q_store16(b, kt_q_half_bits(d));
    kt_q_store16(b + 2, kt_q_half_bits(min));
    for (int j = 0; j < 16; j++) {
        const int low = kt_q_min(15, (int8_t)((x[j] - min) * id + 0.5f));
        const int high = kt_q_min(15, (int8_t)((x[j + 16] - min) * id + 0.5f));
        b[4 + j] = (uint8_t)(low | (high << 4));
    }
}

static void kt_q5_0_quantize(uint8_t *b, const float *x) {
    const float d = kt_q_signed_extreme(x) / -16, id = d != 0 ? 1 / d : 0;
    kt_q_store16(b, kt_q_half_bits(d));
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        const int low = kt_q_min(31, (int8_t)(x[j] * id + 16.5f)), high = kt_q_min(31, (int8_t)(x[j + 16] * id + 16.5f));
        b[6 + j] = (uint8_t)((low & 0x0F) | ((high & 0x0F) << 4));
        qh |= ((uint32_t)(low & 0x10) >> 4) << j;
        qh |= ((uint32_t)(high & 0x10) >> 4) << (j + 16);
    }
    memcpy(b + 2, &qh, 4);
}

static inline int kt_q_nibble(float value) {
    const int q = (int)nearbyintf(value);
    return q < 0 ? 0 : (q > 15 ? 15 : q);
}

// One 32-element sub-block x ≈ scale·q − min with q in 0…15 and min ≥ 0: the range first, then two rounds of least
// squares on the chosen quants (the rounding error of a plain range fit is what costs Q4_K its accuracy).
static void kt_q4_k_fit(const float *x, float *scale, float *min) {
    float lo = 0, hi = -FLT_MAX;  // the minimum is clamped to ≤ 0, as ggml does, so that min ≥ 0
    for (int j = 0; j < 32; j++) {
        lo = fminf(lo, x[j]);
        hi = fmaxf(hi, x[j]);
    }
    float s = (hi - lo) / 15, m = -lo;
    if (s == 0) {
        *scale = 0;
        *min = m;
        return;
    }
    for (int round = 0; round < 2; round++) {
        double n = 32, sumQ = 0, sumQQ = 0, sumX = 0, sumXQ = 0;
        for (int j = 0; j < 32; j++) {
            const double q = kt_q_nibble((x[j] + m) / s);
            sumQ += q;
            sumQQ += q * q;
            sumX += x[j];
            sumXQ += x[j] * q;
        }
        const double det = n * sumQQ - sumQ * sumQ;
        if (det <= 0) break;
        const double fittedScale = (n * sumXQ - sumQ * sumX) / det;
        const double fittedOffset = (sumX * sumQQ - sumQ * sumXQ) / det;
        if (fittedScale <= 0 || fittedOffset > 0) break;  // keep the range fit rather than leave the format's domain
        s = (float)fittedScale;
        m = (float)-fittedOffset;
    }
    *scale = s;
    *min = m;
}

static void kt_q4_k_quantize(uint8_t *b, const float *x) {
    float scales[8], mins[8], maxScale = 0, maxMin = 0;
    for (int s = 0; s < 8; s++) {
        kt_q4_k_fit(x + 32 * s, &scales[s], &mins[s]);
        maxScale = fmaxf(maxScale, scales[s]);
        maxMin = fmaxf(maxMin, mins[s]);
    }
    const float inverseScale = maxScale > 0 ? 63 / maxScale : 0, inverseMin = maxMin > 0 ? 63 / maxMin : 0;
    uint8_t *packed = b + 4;
    memset(packed, 0, 12);
    int levels[8], minLevels[8];
    for (int s = 0; s < 8; s++) {
        const int l = kt_q_min(63, (int)nearbyintf(inverseScale * scales[s]));
        const int lm = kt_q_min(63, (int)nearbyintf(inverseMin * mins[s]));
        levels[s] = l;
        minLevels[s] = lm;
        if (s < 4) {
            packed[s] |= (uint8_t)l;
            packed[s + 4] |= (uint8_t)lm;
        } else {
            packed[s + 4] = (uint8_t)((l & 0x0F) | ((lm & 0x0F) << 4));
            packed[s - 4] |= (uint8_t)((l >> 4) << 6);
            packed[s] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    const uint16_t dBits = kt_q_half_bits(maxScale / 63), dminBits = kt_q_half_bits(maxMin / 63);
    kt_q_store16(b, dBits);
    kt_q_store16(b + 2, dminBits);
    // The quants are chosen against the scale and min as they will be decoded.
    const float d = kt_q_half(dBits), dmin = kt_q_half(dminBits);
    uint8_t quants[256];
    for (int s = 0; s < 8; s++) {
        const float step = d * (float)levels[s], offset = dmin * (float)minLevels[s];
        for (int j = 0; j < 32; j++) quants[32 * s + j] = step > 0 ? (uint8_t)kt_q_nibble((x[32 * s + j] + offset) / step) : 0;
    }
    uint8_t *q = b + 16;
    for (int chunk = 0; chunk < 4; chunk++)
        for (int l = 0; l < 32; l++) q[32 * chunk + l] = (uint8_t)(quants[64 * chunk + l] | (quants[64 * chunk + 32 + l] << 4));
}

void kt_quant_quantize(int type, void *destination, const float *source, size_t count) {
    const size_t elements = (size_t)kt_quant_block_elements(type), bytes = (size_t)kt_quant_block_bytes(type);
    if (elements == 0) return;
    uint8_t *block = destination;
    for (size_t start = 0; start < count; start += elements, block += bytes) {
        switch (type) {
        case KT_QUANT_Q8_0: kt_q8_0_quantize(block, source + start); break;
        case KT_QUANT_Q4_0: kt_q4_0_quantize(block, source + start); break;
        case KT_QUANT_Q4_1: kt_q4_1_quantize(block, source + start); break;
        case KT_QUANT_Q5_0: kt_q5_0_quantize(block, source + start); break;
        case KT_QUANT_Q4_K: kt_q4_k_quantize(block, source + start); break;
        }
    }
}
