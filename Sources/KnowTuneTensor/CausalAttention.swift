// Implements causal grouped-query softmax attention for one sequence, forward and backward, through sgemm per
// key/value head: the query heads that share it are stacked, so each product runs once for the group with its rows
// (SmolLM2's 3 heads per key/value head: a third of the calls, each three times larger). Does not keep the T×T
// probabilities (backward recomputes them from the saved log-sum-exp, as FlashAttention does, so memory stays O(T)
// per head); rows go in blocks of 32 that compute scores only up to their own last key (the masked half is
// skipped); the row softmax runs in CKnowTuneElementwise. A sequence may continue a shared prefix held elsewhere
// (AttentionPrefix: a DPO group's prompt, computed once for all of its answers): every query then attends to all of
// the prefix's keys before its own causal ones, and the prefix's key and value gradients accumulate from each
// sequence that continues it.
//
// Shapes (kernel letters): T positions, P prefix positions, H query heads, G key/value heads (H % G == 0), D head
// size. q, out: [T, H·D] with row stride `queryStride`; k, v (and the prefix's): [·, G·D] with row stride `keyStride`.
import CKnowTuneElementwise
import Foundation

/// The keys and values of a prefix that a sequence continues, and (in backward) where their gradients accumulate.
public struct AttentionPrefix {
    public let key: UnsafePointer<Float>
    public let value: UnsafePointer<Float>
    public let keyGradient: UnsafeMutablePointer<Float>?
    public let valueGradient: UnsafeMutablePointer<Float>?
    public let length: Int

    public init(key: UnsafePointer<Float>, value: UnsafePointer<Float>, keyGradient: UnsafeMutablePointer<Float>? = nil,
                valueGradient: UnsafeMutablePointer<Float>? = nil, length: Int) {
        self.key = key
        self.value = value
        self.keyGradient = keyGradient
        self.valueGradient = valueGradient
        self.length = length
    }
}

public enum CausalAttention {
    /// Query rows per block: a block computes scores only up to its own last key, so the masked half of the T×T
    /// products (and its softmax) is not computed. Smaller blocks waste less of the diagonal: on SmolLM2's heads
    /// (`knowtune-bench attention`, one thread, 2-core AMD EPYC Zen 3) 32 rows took 1.94 / 4.87 ms at T 150 / 256
    /// against 2.13 / 5.20 with 64 and 2.54 / 6.0 with 128; 16 and 24 were no faster than 32.
    static let rowBlock = 32

    /// Floats of the `scores` (and `scoreGradients`) scratch for sequences of up to W rows with their prefix: one
    /// row block of every query head that shares a key/value head, stacked, by W keys, and two stacked [rows, D]
    /// staging areas.
    public static func scratchCount(sequenceLength W: Int, heads H: Int, kvHeads G: Int, headDimension D: Int) -> Int {
        stackedRows(W: W, group: H / max(G, 1)) * (max(W, 1) + 2 * D)
    }

    private static func stackedRows(W: Int, group: Int) -> Int { group * max(min(rowBlock, W), 1) }

    /// Where the query heads of one key/value head live for one row block: stacked in the scratch (row s = head
    /// hh·rows + row r) when several heads share the key/value head, so each product runs once for all of them with
    /// `group` times the rows; in place when the head is alone (no copies).
    private struct Stack {
        let group: Int, rows: Int, first: Int, firstHead: Int, D: Int, queryStride: Int
        var count: Int { group * rows }
        var isInPlace: Bool { group == 1 }
        /// The stacked layout's leading dimension (D), or the sequence's row stride in place.
        var stride: Int { isInPlace ? queryStride : D }

        /// The block's rows of `source` ([T, H·D]), stacked into `staging`, or `source`'s own block in place.
        func gather(_ source: UnsafePointer<Float>, into staging: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
            let block = source + first * queryStride + firstHead * D
            guard !isInPlace else { return block }
            for hh in 0..<group {
                for r in 0..<rows {
                    (staging + (hh * rows + r) * D).update(from: block + r * queryStride + hh * D, count: D)
                }
            }
            return UnsafePointer(staging)
        }

        /// Where a product writes the block's rows of `destination` ([T, H·D]): `staging` to scatter afterwards, or
        /// the block itself in place.
        func target(_ destination: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
            isInPlace ? destination + first * queryStride + firstHead * D : staging
        }

        func scatter(_ staging: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>) {
            guard !isInPlace else { return }
            let block = destination + first * queryStride + firstHead * D
            for hh in 0..<group {
                for r in 0..<rows {
                    (block + r * queryStride + hh * D).update(from: staging + (hh * rows + r) * D, count: D)
                }
            }
        }

        /// Sequence row and query head of stacked row s.
        func row(_ s: Int) -> (i: Int, h: Int) { (first + s % rows, firstHead + s / rows) }
    }

    /// out = softmax(q·[k_prefix; k]ᵀ/√D + causal mask)·[v_prefix; v]; logSumExp[T, H] is saved for backward.
    /// `scores` is scratch of `scratchCount(sequenceLength: P + T, …)` floats.
    public static func forward(
        output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
        prefix: AttentionPrefix? = nil, scores: UnsafeMutablePointer<Float>,
        positions T: Int, heads H: Int, kvHeads G: Int, headDimension D: Int, queryStride: Int, keyStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        let P = prefix?.length ?? 0, W = P + T
        let staged = stackedRows(W: W, group: group)
        let queryStaging = scores + staged * W, outputStaging = queryStaging + staged * D
        for g in 0..<G {
            for first in stride(from: 0, to: T, by: rowBlock) {
                let rows = min(rowBlock, T - first), keys = first + rows  // own keys any row of the block sees
                let stack = Stack(group: group, rows: rows, first: first, firstHead: g * group, D: D, queryStride: queryStride)
                let q = stack.gather(query, into: queryStaging)
                scaledScores(scores, query: q, queryStride: stack.stride, key: key + g * D, prefix: prefix, kvOffset: g * D,
                             scale: scale, rows: stack.count, keys: keys, P: P, W: W, D: D, keyStride: keyStride)
                for s in 0..<stack.count {
                    let (i, h) = stack.row(s)
                    logSumExp[i * H + h] = kt_softmax_row(scores + s * W, P + i + 1, P + keys)
                }
                let out = stack.target(output, staging: outputStaging)
                if let prefix {
                    BLAS.gemm(m: stack.count, n: D, k: P, a: scores, lda: W, b: prefix.value + g * D, ldb: keyStride, c: out,
                              ldc: stack.stride)
                }
                BLAS.gemm(m: stack.count, n: D, k: keys, a: scores + P, lda: W, b: value + g * D, ldb: keyStride,
                          beta: prefix == nil ? 0 : 1, c: out, ldc: stack.stride)
                stack.scatter(outputStaging, into: output)
            }
        }
    }

    /// Given dOut, writes dq (overwritten) and accumulates dk, dv and the prefix's gradients (callers zero them
    /// first). `scores` and `scoreGradients` are scratch of `scratchCount(sequenceLength: P + T, …)` floats each.
    public static func backward(
        queryGradient: UnsafeMutablePointer<Float>, keyGradient: UnsafeMutablePointer<Float>,
        valueGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
        output: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>, prefix: AttentionPrefix? = nil,
        scores: UnsafeMutablePointer<Float>, scoreGradients: UnsafeMutablePointer<Float>,
        positions T: Int, heads H: Int, kvHeads G: Int, headDimension D: Int, queryStride: Int, keyStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        let P = prefix?.length ?? 0, W = P + T
        if let prefix { precondition(prefix.keyGradient != nil && prefix.valueGradient != nil, "a prefix's gradients are needed") }
        let staged = stackedRows(W: W, group: group)
        let queryStaging = scores + staged * W, outputGradientStaging = queryStaging + staged * D
        let queryGradientStaging = scoreGradients + staged * W
        let p = scores, dp = scoreGradients
        for g in 0..<G {
            for first in stride(from: 0, to: T, by: rowBlock) {
                let rows = min(rowBlock, T - first), keys = first + rows
                let stack = Stack(group: group, rows: rows, first: first, firstHead: g * group, D: D, queryStride: queryStride)
                let q = stack.gather(query, into: queryStaging)
                let dout = stack.gather(outputGradient, into: outputGradientStaging)
                let dq = stack.target(queryGradient, staging: queryGradientStaging)
                let S = stack.count, ld = stack.stride
                // Recompute P from the saved log-sum-exp; dP = dO·[v_prefix; v]ᵀ.
                scaledScores(p, query: q, queryStride: ld, key: key + g * D, prefix: prefix, kvOffset: g * D, scale: scale,
                             rows: S, keys: keys, P: P, W: W, D: D, keyStride: keyStride)
                if let prefix {
                    BLAS.gemm(transposeB: true, m: S, n: P, k: D, a: dout, lda: ld, b: prefix.value + g * D, ldb: keyStride,
                              c: dp, ldc: W)
                }
                BLAS.gemm(transposeB: true, m: S, n: keys, k: D, a: dout, lda: ld, b: value + g * D, ldb: keyStride,
                          c: dp + P, ldc: W)
                for s in 0..<S {
                    let (i, h) = stack.row(s)
                    // δ_i = Σ_d dO[i,d]·O[i,d] = Σ_j P[i,j]·dP[i,j]
                    var delta: Float = 0
                    let o = output + i * queryStride + h * D
                    let doutRow = outputGradient + i * queryStride + h * D
                    for d in 0..<D { delta += o[d] * doutRow[d] }
                    kt_softmax_row_backward(p + s * W, dp + s * W, P + i + 1, P + keys, logSumExp[i * H + h], delta)
                }
                // dq = scale·dS·[k_prefix; k] ; dk_g += scale·dSᵀ·q ; dv_g += Pᵀ·dO (each split at the prefix), the
                // group's heads summed by the products' inner dimension.
                if let prefix, let prefixKeyGradient = prefix.keyGradient, let prefixValueGradient = prefix.valueGradient {
                    BLAS.gemm(m: S, n: D, k: P, alpha: scale, a: dp, lda: W, b: prefix.key + g * D, ldb: keyStride, c: dq, ldc: ld)
                    BLAS.gemm(transposeA: true, m: P, n: D, k: S, alpha: scale, a: dp, lda: W, b: q, ldb: ld, beta: 1,
                              c: prefixKeyGradient + g * D, ldc: keyStride)
                    BLAS.gemm(transposeA: true, m: P, n: D, k: S, a: p, lda: W, b: dout, ldb: ld, beta: 1,
                              c: prefixValueGradient + g * D, ldc: keyStride)
                }
                BLAS.gemm(m: S, n: D, k: keys, alpha: scale, a: dp + P, lda: W, b: key + g * D, ldb: keyStride,
                          beta: prefix == nil ? 0 : 1, c: dq, ldc: ld)
                BLAS.gemm(transposeA: true, m: keys, n: D, k: S, alpha: scale, a: dp + P, lda: W, b: q, ldb: ld,
                          beta: 1, c: keyGradient + g * D, ldc: keyStride)
                BLAS.gemm(transposeA: true, m: keys, n: D, k: S, a: p + P, lda: W, b: dout, ldb: ld, beta: 1,
                          c: valueGradient + g * D, ldc: keyStride)
                stack.scatter(queryGradientStaging, into: queryGradient)
            }
        }
    }

    /// scores[rows, 0 ..< P + keys] (row stride W) = scale·q·[k_prefix; k[0 ..< keys]]ᵀ for one row block.
    private static func scaledScores(_ scores: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>, queryStride: Int,
                                     key: UnsafePointer<Float>, prefix: AttentionPrefix?, kvOffset: Int, scale: Float, rows: Int,
                                     keys: Int, P: Int, W: Int, D: Int, keyStride: Int) {
        if let prefix {
            BLAS.gemm(transposeB: true, m: rows, n: P, k: D, alpha: scale, a: query, lda: queryStride,
                      b: prefix.key + kvOffset, ldb: keyStride, c: scores, ldc: W)
        }
        BLAS.gemm(transposeB: true, m: rows, n: keys, k: D, alpha: scale, a: query, lda: queryStride, b: key, ldb: keyStride,
                  c: scores + P, ldc: W)
    }
}
