// Implements causal grouped-query softmax attention for one sequence, forward and backward, through sgemm per
// head; does not keep the T×T probabilities (backward recomputes them from the saved log-sum-exp, as
// FlashAttention does, so memory stays O(T) per head); rows go in blocks of 64 that compute scores only up to their
// own last key (the masked half is skipped); the row softmax runs in CKnowTuneElementwise. A sequence may continue a shared prefix held elsewhere
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
    /// products (and its softmax) is not computed.
    static let rowBlock = 64

    /// out = softmax(q·[k_prefix; k]ᵀ/√D + causal mask)·[v_prefix; v]; logSumExp[T, H] is saved for backward.
    /// `scores` is scratch of at least T·(P+T) floats.
    public static func forward(
        output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
        prefix: AttentionPrefix? = nil, scores: UnsafeMutablePointer<Float>,
        positions T: Int, heads H: Int, kvHeads G: Int, headDimension D: Int, queryStride: Int, keyStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        let P = prefix?.length ?? 0, W = P + T
        for h in 0..<H {
            let g = h / group
            for first in stride(from: 0, to: T, by: rowBlock) {
                let rows = min(rowBlock, T - first), keys = first + rows  // own keys any row of the block sees
                let block = scores + first * W
                scaledScores(block, query: query + first * queryStride + h * D, key: key + g * D, prefix: prefix, kvOffset: g * D,
                             scale: scale, rows: rows, keys: keys, P: P, W: W, D: D, queryStride: queryStride, keyStride: keyStride)
                for i in first..<(first + rows) {
                    logSumExp[i * H + h] = kt_softmax_row(scores + i * W, P + i + 1, P + keys)
                }
                let out = output + first * queryStride + h * D
                if let prefix {
                    BLAS.gemm(m: rows, n: D, k: P, a: block, lda: W, b: prefix.value + g * D, ldb: keyStride, c: out, ldc: queryStride)
                }
                BLAS.gemm(m: rows, n: D, k: keys, a: block + P, lda: W, b: value + g * D, ldb: keyStride,
                          beta: prefix == nil ? 0 : 1, c: out, ldc: queryStride)
            }
        }
    }

    /// Given dOut, writes dq (overwritten) and accumulates dk, dv and the prefix's gradients (callers zero them
    /// first). `scores` and `scoreGradients` are scratch of at least T·(P+T) floats each.
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
        for h in 0..<H {
            let g = h / group
            for first in stride(from: 0, to: T, by: rowBlock) {
                let rows = min(rowBlock, T - first), keys = first + rows
                let p = scores + first * W, dp = scoreGradients + first * W
                let q = query + first * queryStride + h * D, dq = queryGradient + first * queryStride + h * D
                let dout = outputGradient + first * queryStride + h * D
                // Recompute P from the saved log-sum-exp; dP = dO·[v_prefix; v]ᵀ.
                scaledScores(p, query: q, key: key + g * D, prefix: prefix, kvOffset: g * D, scale: scale, rows: rows, keys: keys,
                             P: P, W: W, D: D, queryStride: queryStride, keyStride: keyStride)
                if let prefix {
                    BLAS.gemm(transposeB: true, m: rows, n: P, k: D, a: dout, lda: queryStride, b: prefix.value + g * D, ldb: keyStride,
                              c: dp, ldc: W)
                }
                BLAS.gemm(transposeB: true, m: rows, n: keys, k: D, a: dout, lda: queryStride, b: value + g * D, ldb: keyStride,
                          c: dp + P, ldc: W)
                for i in first..<(first + rows) {
                    // δ_i = Σ_d dO[i,d]·O[i,d] = Σ_j P[i,j]·dP[i,j]
                    var delta: Float = 0
                    let o = output + i * queryStride + h * D
                    let doutRow = outputGradient + i * queryStride + h * D
                    for d in 0..<D { delta += o[d] * doutRow[d] }
                    kt_softmax_row_backward(scores + i * W, scoreGradients + i * W, P + i + 1, P + keys, logSumExp[i * H + h], delta)
                }
                // dq_h = scale·dS·[k_prefix; k] ; dk_g += scale·dSᵀ·q_h ; dv_g += Pᵀ·dO_h (each split at the prefix)
                if let prefix, let prefixKeyGradient = prefix.keyGradient, let prefixValueGradient = prefix.valueGradient {
                    BLAS.gemm(m: rows, n: D, k: P, alpha: scale, a: dp, lda: W, b: prefix.key + g * D, ldb: keyStride,
                              c: dq, ldc: queryStride)
                    BLAS.gemm(transposeA: true, m: P, n: D, k: rows, alpha: scale, a: dp, lda: W, b: q, ldb: queryStride, beta: 1,
                              c: prefixKeyGradient + g * D, ldc: keyStride)
                    BLAS.gemm(transposeA: true, m: P, n: D, k: rows, a: p, lda: W, b: dout, ldb: queryStride, beta: 1,
                              c: prefixValueGradient + g * D, ldc: keyStride)
                }
                BLAS.gemm(m: rows, n: D, k: keys, alpha: scale, a: dp + P, lda: W, b: key + g * D, ldb: keyStride,
                          beta: prefix == nil ? 0 : 1, c: dq, ldc: queryStride)
                BLAS.gemm(transposeA: true, m: keys, n: D, k: rows, alpha: scale, a: dp + P, lda: W, b: q, ldb: queryStride,
                          beta: 1, c: keyGradient + g * D, ldc: keyStride)
                BLAS.gemm(transposeA: true, m: keys, n: D, k: rows, a: p + P, lda: W, b: dout, ldb: queryStride, beta: 1,
                          c: valueGradient + g * D, ldc: keyStride)
            }
        }
    }

    /// scores[rows, 0 ..< P + keys] (row stride W) = scale·q_h·[k_prefix; k[0 ..< keys]]ᵀ for one head and row block.
    private static func scaledScores(_ scores: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
                                     prefix: AttentionPrefix?, kvOffset: Int, scale: Float, rows: Int, keys: Int, P: Int, W: Int,
                                     D: Int, queryStride: Int, keyStride: Int) {
        if let prefix {
            BLAS.gemm(transposeB: true, m: rows, n: P, k: D, alpha: scale, a: query, lda: queryStride,
                      b: prefix.key + kvOffset, ldb: keyStride, c: scores, ldc: W)
        }
        BLAS.gemm(transposeB: true, m: rows, n: keys, k: D, alpha: scale, a: query, lda: queryStride, b: key, ldb: keyStride,
                  c: scores + P, ldc: W)
    }
}
