// Implements causal grouped-query softmax attention for one sequence, forward and backward, through sgemm per
// head; does not keep the T×T probabilities (backward recomputes them from the saved log-sum-exp, as
// FlashAttention does, so memory stays O(T) per head).
//
// Shapes (kernel letters): T positions, H query heads, G key/value heads (H % G == 0), D head size.
// q, out: [T, H·D] with row stride `queryStride`; k, v: [T, G·D] with row stride `keyStride`.
import Foundation

public enum CausalAttention {
    /// out = softmax(q·kᵀ/√D + causal mask)·v; logSumExp[T, H] is saved for backward.
    /// `scores` is scratch of at least T·T floats.
    public static func forward(
        output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
        scores: UnsafeMutablePointer<Float>,
        positions T: Int, heads H: Int, kvHeads G: Int, headDimension D: Int, queryStride: Int, keyStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        for h in 0..<H {
            let g = h / group
            BLAS.gemm(transposeB: true, m: T, n: T, k: D, alpha: scale, a: query + h * D, lda: queryStride,
                      b: key + g * D, ldb: keyStride, c: scores, ldc: T)
            for i in 0..<T {
                let row = scores + i * T
                var maximum = -Float.infinity
                for j in 0...i where row[j] > maximum { maximum = row[j] }
                var sum: Float = 0
                for j in 0...i {
                    let e = expf(row[j] - maximum)
                    row[j] = e
                    sum += e
                }
                let inverse = 1 / sum
                for j in 0...i { row[j] *= inverse }
                if i + 1 < T { (row + i + 1).update(repeating: 0, count: T - i - 1) }
                logSumExp[i * H + h] = maximum + logf(sum)
            }
            BLAS.gemm(m: T, n: D, k: T, a: scores, lda: T, b: value + g * D, ldb: keyStride,
                      c: output + h * D, ldc: queryStride)
        }
    }

    /// Given dOut, writes dq (overwritten) and accumulates dk, dv (callers zero them first).
    /// `scores` and `scoreGradients` are scratch of at least T·T floats each.
    public static func backward(
        queryGradient: UnsafeMutablePointer<Float>, keyGradient: UnsafeMutablePointer<Float>,
        valueGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
        output: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
        scores: UnsafeMutablePointer<Float>, scoreGradients: UnsafeMutablePointer<Float>,
        positions T: Int, heads H: Int, kvHeads G: Int, headDimension D: Int, queryStride: Int, keyStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        for h in 0..<H {
            let g = h / group
            // Recompute P from the saved log-sum-exp.
            BLAS.gemm(transposeB: true, m: T, n: T, k: D, alpha: scale, a: query + h * D, lda: queryStride,
                      b: key + g * D, ldb: keyStride, c: scores, ldc: T)
            // dP = dO·vᵀ
            BLAS.gemm(transposeB: true, m: T, n: T, k: D, a: outputGradient + h * D, lda: queryStride,
                      b: value + g * D, ldb: keyStride, c: scoreGradients, ldc: T)
            for i in 0..<T {
                let p = scores + i * T
                let dp = scoreGradients + i * T
                let lse = logSumExp[i * H + h]
                // δ_i = Σ_d dO[i,d]·O[i,d] = Σ_j P[i,j]·dP[i,j]
                var delta: Float = 0
                let o = output + i * queryStride + h * D
                let dout = outputGradient + i * queryStride + h * D
                for d in 0..<D { delta += o[d] * dout[d] }
                for j in 0...i {
                    let probability = expf(p[j] - lse)
                    p[j] = probability
                    dp[j] = probability * (dp[j] - delta)
                }
                if i + 1 < T {
                    (p + i + 1).update(repeating: 0, count: T - i - 1)
                    (dp + i + 1).update(repeating: 0, count: T - i - 1)
                }
            }
            // dq_h = scale·dS·k ; dk_g += scale·dSᵀ·q_h ; dv_g += Pᵀ·dO_h
            BLAS.gemm(m: T, n: D, k: T, alpha: scale, a: scoreGradients, lda: T, b: key + g * D, ldb: keyStride,
                      c: queryGradient + h * D, ldc: queryStride)
            BLAS.gemm(transposeA: true, m: T, n: D, k: T, alpha: scale, a: scoreGradients, lda: T,
                      b: query + h * D, ldb: queryStride, beta: 1, c: keyGradient + g * D, ldc: keyStride)
            BLAS.gemm(transposeA: true, m: T, n: D, k: T, a: scores, lda: T, b: outputGradient + h * D,
                      ldb: queryStride, beta: 1, c: valueGradient + g * D, ldc: keyStride)
        }
    }
}
