// Implements causal grouped-query softmax attention for one sequence, forward and backward, through sgemm per
// head; does not keep the T×T probabilities (backward recomputes them from the saved log-sum-exp, as
// FlashAttention does, so memory stays O(T) per head); the row softmax runs in CKnowTuneElementwise. A sequence may continue a shared prefix held elsewhere
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
            scaledScores(scores, query: query + h * D, key: key + g * D, prefix: prefix, kvOffset: g * D, scale: scale,
                         T: T, P: P, D: D, queryStride: queryStride, keyStride: keyStride)
            for i in 0..<T {
                logSumExp[i * H + h] = kt_softmax_row(scores + i * W, P + i + 1, W)
            }
            if let prefix {
                BLAS.gemm(m: T, n: D, k: P, a: scores, lda: W, b: prefix.value + g * D, ldb: keyStride,
                          c: output + h * D, ldc: queryStride)
            }
            BLAS.gemm(m: T, n: D, k: T, a: scores + P, lda: W, b: value + g * D, ldb: keyStride,
                      beta: prefix == nil ? 0 : 1, c: output + h * D, ldc: queryStride)
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
            // Recompute P from the saved log-sum-exp; dP = dO·[v_prefix; v]ᵀ.
            scaledScores(scores, query: query + h * D, key: key + g * D, prefix: prefix, kvOffset: g * D, scale: scale,
                         T: T, P: P, D: D, queryStride: queryStride, keyStride: keyStride)
            if let prefix {
                BLAS.gemm(transposeB: true, m: T, n: P, k: D, a: outputGradient + h * D, lda: queryStride,
                          b: prefix.value + g * D, ldb: keyStride, c: scoreGradients, ldc: W)
            }
            BLAS.gemm(transposeB: true, m: T, n: T, k: D, a: outputGradient + h * D, lda: queryStride,
                      b: value + g * D, ldb: keyStride, c: scoreGradients + P, ldc: W)
            for i in 0..<T {
                let p = scores + i * W
                let dp = scoreGradients + i * W
                let lse = logSumExp[i * H + h]
                let visible = P + i + 1
                // δ_i = Σ_d dO[i,d]·O[i,d] = Σ_j P[i,j]·dP[i,j]
                var delta: Float = 0
                let o = output + i * queryStride + h * D
                let dout = outputGradient + i * queryStride + h * D
                for d in 0..<D { delta += o[d] * dout[d] }
                kt_softmax_row_backward(p, dp, visible, W, lse, delta)
            }
            // dq_h = scale·dS·[k_prefix; k] ; dk_g += scale·dSᵀ·q_h ; dv_g += Pᵀ·dO_h (each split at the prefix)
            if let prefix, let prefixKeyGradient = prefix.keyGradient, let prefixValueGradient = prefix.valueGradient {
                BLAS.gemm(m: T, n: D, k: P, alpha: scale, a: scoreGradients, lda: W, b: prefix.key + g * D, ldb: keyStride,
                          c: queryGradient + h * D, ldc: queryStride)
                BLAS.gemm(transposeA: true, m: P, n: D, k: T, alpha: scale, a: scoreGradients, lda: W,
                          b: query + h * D, ldb: queryStride, beta: 1, c: prefixKeyGradient + g * D, ldc: keyStride)
                BLAS.gemm(transposeA: true, m: P, n: D, k: T, a: scores, lda: W, b: outputGradient + h * D,
                          ldb: queryStride, beta: 1, c: prefixValueGradient + g * D, ldc: keyStride)
            }
            BLAS.gemm(m: T, n: D, k: T, alpha: scale, a: scoreGradients + P, lda: W, b: key + g * D, ldb: keyStride,
                      beta: prefix == nil ? 0 : 1, c: queryGradient + h * D, ldc: queryStride)
            BLAS.gemm(transposeA: true, m: T, n: D, k: T, alpha: scale, a: scoreGradients + P, lda: W,
                      b: query + h * D, ldb: queryStride, beta: 1, c: keyGradient + g * D, ldc: keyStride)
            BLAS.gemm(transposeA: true, m: T, n: D, k: T, a: scores + P, lda: W, b: outputGradient + h * D,
                      ldb: queryStride, beta: 1, c: valueGradient + g * D, ldc: keyStride)
        }
    }

    /// scores[T, P+T] = scale·q_h·[k_prefix; k]ᵀ for one head.
    private static func scaledScores(_ scores: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
                                     prefix: AttentionPrefix?, kvOffset: Int, scale: Float, T: Int, P: Int, D: Int,
                                     queryStride: Int, keyStride: Int) {
        if let prefix {
            BLAS.gemm(transposeB: true, m: T, n: P, k: D, alpha: scale, a: query, lda: queryStride,
                      b: prefix.key + kvOffset, ldb: keyStride, c: scores, ldc: P + T)
        }
        BLAS.gemm(transposeB: true, m: T, n: T, k: D, alpha: scale, a: query, lda: queryStride, b: key, ldb: keyStride,
                  c: scores + P, ldc: P + T)
    }
}
