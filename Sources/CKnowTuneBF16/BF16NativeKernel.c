// Implements the AVX-512 BF16 path of the frozen-weight products (see BF16Internal.h): activation packing to bf16
// pairs, weight packing into vdpbf16ps panels, and a 6×64 register-tiled micro-kernel; does not choose the path,
// start threads or allocate (BF16Dispatch.c does).
//
// Every function here is compiled for AVX-512 BF16 through a per-function target attribute, so the package still
// builds for any x86-64; the dispatcher calls in only after checking cpuid.
//
// Layout (GotoBLAS-style blocking, "pairs" = 2 bf16 along the depth in one 32-bit lane):
//  - activations: packed once per call to bf16 [rows, 2·pairs] row-major; the micro-kernel broadcasts one pair
//    of a row per step (vpbroadcastd).
//  - weight: for each block of KT_NC columns and ≤ KT_KC_MAX depth pairs, packed into panels of 64 columns laid out
//    [pair][64 columns] (uint32 each), so one step of the micro-kernel loads four zmm of 16 column pairs. Each
//    weight element is packed exactly once per call (the block is reused across all rows).
//  - micro-kernel: 6 rows × 4 zmm accumulators (24 of the 32 registers), fp32, one vdpbf16ps per (row, vector) per
//    pair. The block's sum is then C = alpha·acc (+ C), so depth blocks add in order.
#include <immintrin.h>
#include <string.h>
#include "BF16Internal.h"

#define KT_NATIVE __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
#define KT_INLINE static inline __attribute__((always_inline))

// MARK: - Activations: fp32 → bf16

// Round to nearest even on the integer bits (as kt_bf16_round): vcvtne2ps2bf16 would flush denormals to zero,
// which PyTorch's conversion does not.
KT_NATIVE KT_INLINE __m256i kt_round_lanes(__m512i bits) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
    const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(magnitude, _mm512_set1_epi32(0x7F800000));
    __m512i high = _mm512_srli_epi32(bits, 16);
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(bias, _mm512_and_si512(high, one))), 16);
    rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(rounded);
}

KT_NATIVE static void kt_round_row(uint16_t *destination, const float *source, size_t count) {
    size_t j = 0;
    for (; j + 16 <= count; j += 16) {
        __m256i rounded = kt_round_lanes(_mm512_loadu_si512(source + j));
        _mm256_storeu_si256((__m256i *)(destination + j), rounded);
    }
    if (j < count) {
        __mmask16 mask = (__mmask16)((1u << (count - j)) - 1);
        __m256i rounded = kt_round_lanes(_mm512_maskz_loadu_epi32(mask, source + j));
        _mm256_mask_storeu_epi16(destination + j, mask, rounded);
    }
}

KT_NATIVE void kt_bf16_native_from_floats(uint16_t *destination, const float *source, size_t count) {
    kt_round_row(destination, source, count);
}

KT_NATIVE void kt_bf16_native_pack_activations(uint16_t *packed, const kt_bf16_problem *problem, int rowBegin,
                                               int rowEnd) {
    const int depth = problem->depth, pairs = kt_pairs(depth);
    for (int row = rowBegin; row < rowEnd; row++) {
        uint16_t *destination = packed + (size_t)row * 2 * pairs;
        kt_round_row(destination, problem->activations + (size_t)row * depth, (size_t)depth);
        if (depth & 1) destination[depth] = 0;
    }
}

// MARK: - Weight panels

// One pair of a row of W: (row[2p], row[2p+1]), the second zero past the end of the row.
KT_INLINE uint32_t kt_row_pair(const uint16_t *row, int length, int pair) {
    int i = 2 * pair;
    uint32_t low = row[i], high = i + 1 < length ? row[i + 1] : 0;
    return low | (high << 16);
}

// Transposes a 16×16 matrix of 32-bit elements held as 16 zmm rows.
KT_NATIVE KT_INLINE void kt_transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // r[4i+e], 128-bit lane l: rows 4i..4i+3 at column 4l+e.
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int e = 0; e < 4; e++) {
        __m512i a = _mm512_shuffle_i32x4(r[e], r[4 + e], 0x88), b = _mm512_shuffle_i32x4(r[e], r[4 + e], 0xDD);
        __m512i c = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], 0x88), d = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], 0xDD);
        t[e] = _mm512_shuffle_i32x4(a, c, 0x88);
        t[8 + e] = _mm512_shuffle_i32x4(a, c, 0xDD);
        t[4 + e] = _mm512_shuffle_i32x4(b, d, 0x88);
        t[12 + e] = _mm512_shuffle_i32x4(b, d, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

// Linear (B[k][j] = W[j][k]): panel[k][j] = pair pairBegin+k of W row columnBegin+j, for j < width (zero up to
// stride). Rows of W are read along the depth; 16×16 blocks are transposed in registers.
KT_NATIVE static void kt_pack_weight_rows(uint32_t *panel, const kt_bf16_problem *problem, int columnBegin, int width,
                                          int stride, int pairBegin, int pairCount) {
    const int in = problem->in, wholePairs = in / 2;
    const uint16_t *weight = problem->weight;
    int j = 0;
    for (; j + 16 <= width; j += 16) {
        const uint16_t *rows = weight + (size_t)(columnBegin + j) * in;
        int k = 0;
        for (; k + 16 <= pairCount && pairBegin + k + 16 <= wholePairs; k += 16) {
            __m512i r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(rows + (size_t)i * in + 2 * (pairBegin + k));
            kt_transpose16(r);
            for (int e = 0; e < 16; e++) _mm512_storeu_si512(panel + (size_t)(k + e) * stride + j, r[e]);
        }
        for (; k < pairCount; k++)
            for (int i = 0; i < 16; i++)
                panel[(size_t)k * stride + j + i] = kt_row_pair(rows + (size_t)i * in, in, pairBegin + k);
    }
    for (; j < width; j++) {
        const uint16_t *row = weight + (size_t)(columnBegin + j) * in;
        for (int k = 0; k < pairCount; k++) panel[(size_t)k * stride + j] = kt_row_pair(row, in, pairBegin + k);
    }
    for (; j < stride; j++)
        for (int k = 0; k < pairCount; k++) panel[(size_t)k * stride + j] = 0;
}

// Input gradient (B[k][j] = W[k][j]): panel[k][j] = (W[2(pairBegin+k)][c], W[2(pairBegin+k)+1][c]) with
// c = columnBegin + j; two rows of W interleaved 16 columns at a time.
KT_NATIVE static void kt_pack_weight_columns(uint32_t *panel, const kt_bf16_problem *problem, int columnBegin,
                                             int width, int stride, int pairBegin, int pairCount) {
    const int in = problem->in, out = problem->out;
    for (int k = 0; k < pairCount; k++) {
        const int o = 2 * (pairBegin + k);
        const uint16_t *row0 = problem->weight + (size_t)o * in + columnBegin;
        const uint16_t *row1 = o + 1 < out ? row0 + in : NULL;
        uint32_t *destination = panel + (size_t)k * stride;
        for (int j = 0; j < stride; j += 16) {
            int valid = width - j;
            __mmask16 mask = valid >= 16 ? 0xFFFF : valid > 0 ? (__mmask16)((1u << valid) - 1) : 0;
            __m512i low = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, row0 + j));
            __m512i high = row1 ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, row1 + j)) : _mm512_setzero_si512();
            _mm512_storeu_si512(destination + j, _mm512_or_si512(low, _mm512_slli_epi32(high, 16)));
        }
    }
}

// Packs columns [columnBegin, columnBegin + columnCount) × pairs [pairBegin, pairBegin + pairCount) as panels of
// KT_NR columns; panel p starts at p·KT_NR·pairCount and has stride (its width rounded up to 16).
KT_NATIVE static void kt_pack_weight(uint32_t *panel, const kt_bf16_problem *problem, int columnBegin, int columnCount,
                                     int pairBegin, int pairCount) {
    for (int jr = 0; jr < columnCount; jr += KT_NR) {
        int width = columnCount - jr < KT_NR ? columnCount - jr : KT_NR;
        int stride = (width + 15) / 16 * 16;
        uint32_t *destination = panel + (size_t)jr * pairCount;
        if (problem->weightTransposed)
            kt_pack_weight_rows(destination, problem, columnBegin + jr, width, stride, pairBegin, pairCount);
        else
            kt_pack_weight_columns(destination, problem, columnBegin + jr, width, stride, pairBegin, pairCount);
    }
}

// MARK: - Micro-kernel

// C[mr, 16·nv] = alpha · Σ_k A[mr, k]·B[k, 16·nv] (+ C when loadOutput), the last vector's columns masked by
// lastMask. a: packed activation pairs (row stride lda uint32); b: panel [kc][16·nv]. mr and nv are compile-time
// constants in every instantiation, so the accumulators live in registers.
KT_NATIVE KT_INLINE void kt_tile(const int mr, const int nv, int kc, const uint16_t *a, int lda, const uint32_t *b,
                                 float *c, int ldc, __mmask16 lastMask, float alpha, int loadOutput) {
    __m512 acc[KT_MR][KT_NR / 16];
    for (int m = 0; m < mr; m++)
        for (int v = 0; v < nv; v++) acc[m][v] = _mm512_setzero_ps();
    const int stride = 16 * nv;
    for (int k = 0; k < kc; k++) {
        __m512bh bv[KT_NR / 16];
        for (int v = 0; v < nv; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + (size_t)k * stride + 16 * v);
        for (int m = 0; m < mr; m++) {
            uint32_t pair;
            memcpy(&pair, a + 2 * ((size_t)m * lda + k), sizeof pair);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int v = 0; v < nv; v++) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], av, bv[v]);
        }
    }
    const __m512 scale = _mm512_set1_ps(alpha);
    for (int m = 0; m < mr; m++) {
        for (int v = 0; v < nv; v++) {
            __mmask16 mask = v == nv - 1 ? lastMask : 0xFFFF;
            float *destination = c + (size_t)m * ldc + 16 * v;
            __m512 result = loadOutput ? _mm512_fmadd_ps(acc[m][v], scale, _mm512_maskz_loadu_ps(mask, destination))
                                       : _mm512_mul_ps(acc[m][v], scale);
            _mm512_mask_storeu_ps(destination, mask, result);
        }
    }
}

typedef void (*kt_tile_function)(int kc, const uint16_t *a, int lda, const uint32_t *b, float *c, int ldc,
                                 __mmask16 lastMask, float alpha, int loadOutput);

#define KT_TILE(MR, NV)                                                                                            \
    KT_NATIVE static void kt_tile_##MR##x##NV(int kc, const uint16_t *a, int lda, const uint32_t *b, float *c,      \
                                              int ldc, __mmask16 lastMask, float alpha, int loadOutput) {          \
        kt_tile(MR, NV, kc, a, lda, b, c, ldc, lastMask, alpha, loadOutput);                                       \
    }
#define KT_TILE_ROW(MR) KT_TILE(MR, 1) KT_TILE(MR, 2) KT_TILE(MR, 3) KT_TILE(MR, 4)
KT_TILE_ROW(1)
KT_TILE_ROW(2)
KT_TILE_ROW(3)
KT_TILE_ROW(4)
KT_TILE_ROW(5)
KT_TILE_ROW(6)

static const kt_tile_function kt_tiles[KT_MR][KT_NR / 16] = {
    {kt_tile_1x1, kt_tile_1x2, kt_tile_1x3, kt_tile_1x4}, {kt_tile_2x1, kt_tile_2x2, kt_tile_2x3, kt_tile_2x4},
    {kt_tile_3x1, kt_tile_3x2, kt_tile_3x3, kt_tile_3x4}, {kt_tile_4x1, kt_tile_4x2, kt_tile_4x3, kt_tile_4x4},
    {kt_tile_5x1, kt_tile_5x2, kt_tile_5x3, kt_tile_5x4}, {kt_tile_6x1, kt_tile_6x2, kt_tile_6x3, kt_tile_6x4},
};

// MARK: - Blocked driver for one thread's columns

KT_NATIVE void kt_bf16_native_columns(const kt_bf16_problem *problem, const uint16_t *packed, int columnBegin,
                                      int columnEnd, uint32_t *panel) {
    const int rows = problem->rows, ldc = problem->columns;
    const int pairs = kt_pairs(problem->depth), depthStep = kt_depth_step(pairs);
    for (int jc = columnBegin; jc < columnEnd; jc += KT_NC) {
        const int nc = columnEnd - jc < KT_NC ? columnEnd - jc : KT_NC;
        for (int pc = 0; pc < pairs; pc += depthStep) {
            const int kc = pairs - pc < depthStep ? pairs - pc : depthStep;
            kt_pack_weight(panel, problem, jc, nc, pc, kc);
            const int loadOutput = problem->accumulate || pc > 0;
            for (int ic = 0; ic < rows; ic += KT_MC) {
                const int rowEnd = rows - ic < KT_MC ? rows : ic + KT_MC;
                for (int jr = 0; jr < nc; jr += KT_NR) {
                    const int width = nc - jr < KT_NR ? nc - jr : KT_NR, nv = (width + 15) / 16;
                    const __mmask16 lastMask = width % 16 ? (__mmask16)((1u << (width % 16)) - 1) : 0xFFFF;
                    const uint32_t *b = panel + (size_t)jr * kc;
                    for (int ir = ic; ir < rowEnd; ir += KT_MR) {
                        const int mr = rowEnd - ir < KT_MR ? rowEnd - ir : KT_MR;
                        kt_tiles[mr - 1][nv - 1](kc, packed + 2 * ((size_t)ir * pairs + pc), pairs, b,
                                                 problem->output + (size_t)ir * ldc + jc + jr, ldc, lastMask,
                                                 problem->alpha, loadOutput);
                    }
                }
            }
        }
    }
}
