// Implements causal grouped-query attention of new rows against a sequence's KV cache: n query rows at consecutive
// positions s … s+n−1, row i attending to cached positions 0 … s+i; does not write the cache or keep the
// probabilities (inference needs no backward).
//
// Shapes (kernel letters): n query rows, s first position, H query heads, G key/value heads (H % G == 0), D head
// size. q: [n, H·D] with row stride `queryStride`; out: [n, H·D] with row stride `outputStride`; k, v: [s+n, G·D]
// with row stride `keyStride`.
// Several rows use the arithmetic of `CausalAttention.forward` (scores by sgemm scaled by 1/√D, softmax in fp32 with
// masked entries set to exactly 0, then P·v by sgemm), which they equal for s = 0: the training forward's attention.
// A single row (a decoding step) uses plain loops with the same formula; only the summation order differs.
import Foundation
import KnowTuneTensor

enum CachedAttention {
    /// `scores` is scratch of at least max(n, H/G)·(s+n) floats.
    static func forward(
        output: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
        value: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>,
        rows n: Int, firstPosition s: Int, heads H: Int, kvHeads G: Int, headDimension D: Int,
        queryStride: Int, keyStride: Int, outputStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        let T = s + n
        if n == 1 {
            singleRow(output: output, query: query, key: key, value: value, scores: scores, positions: T, heads: H,
                      kvHeads: G, headDimension: D, keyStride: keyStride)
            return
        }
        for h in 0..<H {
            let g = h / group
            BLAS.gemm(transposeB: true, m: n, n: T, k: D, alpha: scale, a: query + h * D, lda: queryStride,
                      b: key + g * D, ldb: keyStride, c: scores, ldc: T)
            for i in 0..<n { normalize(scores + i * T, through: s + i, width: T) }
            BLAS.gemm(m: n, n: D, k: T, a: scores, lda: T, b: value + g * D, ldb: keyStride,
                      c: output + h * D, ldc: outputStride)
        }
    }

    /// One new row (a decoding step) in plain loops: per step and sequence this runs H·T dot products of length D,
    /// far too small for sgemm's per-call packing and thread hand-off (measured: 2·G sgemm calls per layer and row
    /// cost more than the arithmetic). Each cached key and value row is read once for the `group` query heads
    /// that share it.
    private static func singleRow(
        output: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
        value: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>,
        positions T: Int, heads H: Int, kvHeads G: Int, headDimension D: Int, keyStride: Int
    ) {
        let scale = 1 / Float(D).squareRoot()
        let group = H / G
        let vectorEnd = D - D % 8
        for g in 0..<G {
            // scores[r, j] = scale · q_{g·group+r} · k_j
            for j in 0..<T {
                let k = key + j * keyStride + g * D
                for r in 0..<group {
                    let q = query + (g * group + r) * D
                    var sums = SIMD8<Float>()
                    var d = 0
                    while d < vectorEnd {
                        sums += UnsafeRawPointer(q + d).loadUnaligned(as: SIMD8<Float>.self)
                            * UnsafeRawPointer(k + d).loadUnaligned(as: SIMD8<Float>.self)
                        d += 8
                    }
                    var dot = sums.sum()
                    while d < D { dot += q[d] * k[d]; d += 1 }
                    scores[r * T + j] = dot * scale
                }
            }
            for r in 0..<group { normalize(scores + r * T, through: T - 1, width: T) }
            // out_{g·group+r} = Σ_j P[r, j] · v_j
            for r in 0..<group { (output + (g * group + r) * D).update(repeating: 0, count: D) }
            for j in 0..<T {
                let v = value + j * keyStride + g * D
                for r in 0..<group {
                    let p = scores[r * T + j]
                    let o = output + (g * group + r) * D
                    var d = 0
                    while d < vectorEnd {
                        let sum = UnsafeRawPointer(o + d).loadUnaligned(as: SIMD8<Float>.self)
                            + p * UnsafeRawPointer(v + d).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(o + d).storeBytes(of: sum, as: SIMD8<Float>.self)
                        d += 8
                    }
                    while d < D { o[d] += p * v[d]; d += 1 }
                }
            }
        }
    }

    /// Softmax over row[0 … last] in place; row[last+1 ..< width] (future positions) become exactly 0.
    @inline(__always)
    private static func normalize(_ row: UnsafeMutablePointer<Float>, through last: Int, width: Int) {
        var maximum = -Float.infinity
        for j in 0...last where row[j] > maximum { maximum = row[j] }
        var sum: Float = 0
        for j in 0...last {
            let e = expf(row[j] - maximum)
            row[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0...last { row[j] *= inverse }
        if last + 1 < width { (row + last + 1).update(repeating: 0, count: width - last - 1) }
    }
}
