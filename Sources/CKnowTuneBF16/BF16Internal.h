// Implements the contract between the dispatcher (BF16Dispatch.c) and the AVX-512 BF16 kernel
// (BF16NativeKernel.c): one problem description and the blocking constants; does not run anything.
//
// Both products are C[rows, columns] (+)= alpha · A[rows, depth] · B[depth, columns], A the fp32 activations
// rounded to bf16, B a view of the bf16 weight W[out, in]:
//  - linear:          depth = in,  columns = out, B[k][j] = W[j][k]  (weightTransposed = 1)
//  - input gradient:  depth = out, columns = in,  B[k][j] = W[k][j]  (weightTransposed = 0)
// `vdpbf16ps` multiplies bf16 *pairs* along the depth, so depth is handled in pairs (an odd depth is padded with
// a zero) and both operands are packed with each pair in one 32-bit lane.
#ifndef KNOWTUNE_BF16_INTERNAL_H
#define KNOWTUNE_BF16_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float *output;             // C [rows, columns], row stride `columns`
    const float *activations;  // A [rows, depth] fp32, row stride `depth`
    const uint16_t *weight;    // W [out, in] bf16
    int rows, depth, columns;
    int in, out;
    int weightTransposed;
    float alpha;
    int accumulate;
    // 1: `weight` holds IEEE binary16 bits and the activations are used unrounded (fallback path only).
    int weightIsHalf;
} kt_bf16_problem;

// Register tile: KT_MR rows × KT_NR columns (KT_NR / 16 zmm vectors) of fp32 accumulators.
#define KT_MR 6
#define KT_NR 64
// Cache blocks: depth pairs per packed weight panel (at most; the actual step divides the depth evenly), columns
// per packed block, rows per activation block. They depend on nothing but these constants and the shape, so the
// order of every output element's sum is the same for any thread count.
#ifndef KT_KC_MAX  // (overridable with -D only to tune the blocking)
#define KT_KC_MAX 128
#endif
#ifndef KT_NC
#define KT_NC 256
#endif
#ifndef KT_MC
#define KT_MC 192
#endif

static inline int kt_pairs(int depth) { return (depth + 1) / 2; }

// Depth pairs per block: the depth split into the fewest blocks of at most KT_KC_MAX pairs, evenly.
static inline int kt_depth_step(int pairs) {
    int blocks = (pairs + KT_KC_MAX - 1) / KT_KC_MAX;
    return blocks > 0 ? (pairs + blocks - 1) / blocks : 1;
}

// uint32 elements of one thread's packed weight block.
static inline size_t kt_panel_capacity(void) { return (size_t)KT_KC_MAX * KT_NC; }

// bf16 bits of one float, round to nearest even; NaN becomes a quiet NaN with the same sign.
static inline uint16_t kt_bf16_round(float value) {
    union { float f; uint32_t u; } bits = {value};
    if ((bits.u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits.u >> 16) | 0x40u);
    return (uint16_t)((bits.u + 0x7FFFu + ((bits.u >> 16) & 1u)) >> 16);
}

static inline float kt_bf16_float(uint16_t bits) {
    union { uint32_t u; float f; } value = {(uint32_t)bits << 16};
    return value.f;
}

// destination[i] = the fp32 value of source[i] rounded to bf16: the inputs of a bf16 product (autocast).
static inline void kt_bf16_rounded_copy(float *destination, const float *source, size_t count) {
    for (size_t i = 0; i < count; i++) destination[i] = kt_bf16_float(kt_bf16_round(source[i]));
}

// The calling thread's workspace, grown to at least `bytes` (64-byte aligned) and kept until
// kt_bf16_release_workspace; NULL when it cannot be allocated. One user at a time: its contents do not survive the
// next kernel call on this thread.
void *kt_workspace_reserve(size_t bytes);

// Packs rows [rowBegin, rowEnd) of the activations into `packed` ([rows, 2·pairs] bf16, odd depth zero-padded).
void kt_bf16_native_pack_activations(uint16_t *packed, const kt_bf16_problem *problem, int rowBegin, int rowEnd);

// Computes output columns [columnBegin, columnEnd) for all rows from the packed activations, packing the weight
// block by block into `panel` (kt_panel_capacity() uint32, 64-byte aligned).
void kt_bf16_native_columns(const kt_bf16_problem *problem, const uint16_t *packed, int columnBegin, int columnEnd,
                            uint32_t *panel);

// binary16 → fp32 with F16C, and the rounding back (the caller checked the CPU; HalfConversion.c).
void kt_f16c_to_floats(float *destination, const uint16_t *source, size_t count);
void kt_f16c_from_floats(uint16_t *destination, const float *source, size_t count);

// kt_bf16_from_floats with AVX-512 (the caller checked the CPU).
void kt_bf16_native_from_floats(uint16_t *destination, const float *source, size_t count);

#endif
