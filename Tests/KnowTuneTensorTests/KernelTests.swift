// Checks each numerical kernel on its own: against a naive reference written here, and its backward against
// central finite differences (in Double where the kernel allows, otherwise with Richardson extrapolation).
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class KernelTests: XCTestCase {
    private func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in (2 * generator.nextUnitFloat() - 1) * scale }
    }

    /// Central difference of `f` at `x[i]`, Richardson-extrapolated.
    private func numericGradient(_ x: inout [Float], _ i: Int, _ f: ([Float]) -> Double) -> Double {
        let original = x[i]
        func central(_ h: Float) -> Double {
            x[i] = original + h
            let plus = f(x)
            x[i] = original - h
            let minus = f(x)
            x[i] = original
            return (plus - minus) / Double(2 * h)
        }
        return (4 * central(5e-3) - central(1e-2)) / 3
    }

    func testGemmMatchesNaiveProductInEveryTransposeCombination() {
        let m = 5, n = 7, k = 3
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = random(m * k, seed: 1), b = random(k * n, seed: 2)
            var c = random(m * n, seed: 3)
            let c0 = c
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 2, a: ap.baseAddress!,
                          lda: transposeA ? m : k, b: bp.baseAddress!, ldb: transposeB ? k : n, beta: 0.5, c: cp.baseAddress!, ldc: n)
            } } }
            var expected = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var sum: Float = 0
                    for p in 0..<k {
                        let av = transposeA ? a[p * m + i] : a[i * k + p]
                        let bv = transposeB ? b[j * k + p] : b[p * n + j]
                        sum += av * bv
                    }
                    expected[i * n + j] = 2 * sum + 0.5 * c0[i * n + j]
                }
            }
            assertClose(c, expected, atol: 1e-5, "gemm transposeA \(transposeA) transposeB \(transposeB)")
        }
    }

    func testRMSNormForwardAndBackward() {
        let rows = 3, channels = 8
        var x = random(rows * channels, seed: 4, scale: 2)
        let weight = random(channels, seed: 5).map { 1 + $0 / 2 }
        let upstream = random(rows * channels, seed: 6)
        func forward(_ input: [Float]) -> [Float] {
            var output = [Float](repeating: 0, count: rows * channels)
            var rstd = [Float](repeating: 0, count: rows)
            RMSNorm.forward(output: &output, reciprocalRMS: &rstd, input: input, weight: weight, rows: rows, channels: channels, epsilon: 1e-5)
            return output
        }
        let y = forward(x)
        // Naive: x / sqrt(mean(x²) + ε) · w
        for r in 0..<rows {
            let row = x[(r * channels)..<((r + 1) * channels)]
            let rms = (row.map { Double($0 * $0) }.reduce(0, +) / Double(channels) + 1e-5).squareRoot()
            for c in 0..<channels { XCTAssertEqual(Double(y[r * channels + c]), Double(x[r * channels + c]) / rms * Double(weight[c]), accuracy: 1e-5) }
        }
        var rstd = [Float](repeating: 0, count: rows)
        var scratch = [Float](repeating: 0, count: rows * channels)
        RMSNorm.forward(output: &scratch, reciprocalRMS: &rstd, input: x, weight: weight, rows: rows, channels: channels, epsilon: 1e-5)
        var gradient = [Float](repeating: 0, count: rows * channels)
        RMSNorm.backward(inputGradient: &gradient, outputGradient: upstream, input: x, weight: weight, reciprocalRMS: rstd,
                         rows: rows, channels: channels)
        for i in [0, 5, 11, 23] {
            let numeric = numericGradient(&x, i) { input in zip(forward(input), upstream).reduce(0.0) { $0 + Double($1.0 * $1.1) } }
            XCTAssertEqual(Double(gradient[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)), "dx[\(i)]")
        }
    }

    func testRotaryEmbeddingIsARotationAndItsInverseUndoesIt() {
        let rope = RotaryEmbedding(headDimension: 8, theta: 10000, maxPositions: 16)
        let rows = 4, heads = 2
        let original = random(rows * heads * 8, seed: 7)
        var data = original
        let positions: [Int32] = [0, 3, 7, 15]
        data.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: rows, heads: heads, rowStride: 16, positions: positions) }
        // Position 0 is the identity; norms are kept; the first pair of row 1 is rotated by 3·θ^0 = 3 rad.
        assertClose(Array(data[0..<16]), Array(original[0..<16]), atol: 1e-6, "position 0")
        let angle: Float = 3
        XCTAssertEqual(data[16], original[16] * cos(angle) - original[20] * sin(angle), accuracy: 1e-5)
        XCTAssertEqual(data[20], original[20] * cos(angle) + original[16] * sin(angle), accuracy: 1e-5)
        data.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: rows, heads: heads, rowStride: 16, positions: positions, inverse: true) }
        assertClose(data, original, atol: 1e-5, "inverse")
    }

    func testSwiGLUBackwardMatchesFiniteDifferences() {
        var gate = random(6, seed: 8, scale: 3)
        let up = random(6, seed: 9, scale: 2)
        let upstream = random(6, seed: 10)
        var dGate = [Float](repeating: 0, count: 6), dUp = [Float](repeating: 0, count: 6)
        SwiGLU.backward(gateGradient: &dGate, upGradient: &dUp, outputGradient: upstream, gate: gate, up: up, count: 6)
        for i in 0..<6 {
            let numeric = numericGradient(&gate, i) { g in
                var h = [Float](repeating: 0, count: 6)
                SwiGLU.forward(output: &h, gate: g, up: up, count: 6)
                return zip(h, upstream).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            }
            XCTAssertEqual(Double(dGate[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)))
            let silu = gate[i] / (1 + exp(-gate[i]))
            XCTAssertEqual(dUp[i], upstream[i] * silu, accuracy: 1e-6)
        }
    }

    /// Causal attention of T random positions: outputs and log-sum-exps against a naive softmax in Double at `rows`
    /// (every head), and dq, dk against finite differences at the given indices.
    private func checkAttention(T: Int, H: Int, G: Int, D: Int, seed: UInt64, rows: [Int], queryIndices: [Int], keyIndices: [Int]) {
        let C = H * D, K = G * D
        var query = random(T * C, seed: seed), key = random(T * K, seed: seed + 1)
        let value = random(T * K, seed: seed + 2), upstream = random(T * C, seed: seed + 3)
        var scores = [Float](repeating: .nan, count: CausalAttention.scratchCount(sequenceLength: T, heads: H, kvHeads: G, headDimension: D))
        var scores2 = scores
        func forward(_ q: [Float], _ k: [Float]) -> (output: [Float], lse: [Float]) {
            var output = [Float](repeating: 0, count: T * C), lse = [Float](repeating: 0, count: T * H)
            CausalAttention.forward(output: &output, logSumExp: &lse, query: q, key: k, value: value, scores: &scores,
                                    positions: T, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
            return (output, lse)
        }
        let (output, lse) = forward(query, key)
        for i in rows {
            for h in 0..<H {
                let g = h / (H / G)
                let weights = (0...i).map { j in
                    exp((0..<D).reduce(0.0) { $0 + Double(query[i * C + h * D + $1] * key[j * K + g * D + $1]) } / Double(D).squareRoot())
                }
                let total = weights.reduce(0, +)
                XCTAssertEqual(Double(lse[i * H + h]), log(total), accuracy: 1e-5 * max(1, abs(log(total))))
                for d in 0..<D {
                    let expected = (0...i).reduce(0.0) { $0 + weights[$1] / total * Double(value[$1 * K + g * D + d]) }
                    XCTAssertEqual(Double(output[i * C + h * D + d]), expected, accuracy: 1e-5, "row \(i) head \(h)")
                }
            }
        }
        var dq = [Float](repeating: 0, count: T * C), dk = [Float](repeating: 0, count: T * K), dv = dk
        CausalAttention.backward(queryGradient: &dq, keyGradient: &dk, valueGradient: &dv, outputGradient: upstream, query: query,
                                 key: key, value: value, output: output, logSumExp: lse, scores: &scores, scoreGradients: &scores2,
                                 positions: T, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
        func objective(_ q: [Float], _ k: [Float]) -> Double {
            zip(forward(q, k).output, upstream).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        for index in queryIndices {
            let numeric = numericGradient(&query, index) { objective($0, key) }
            XCTAssertEqual(Double(dq[index]), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "dq[\(index)]")
        }
        for index in keyIndices {
            let numeric = numericGradient(&key, index) { objective(query, $0) }
            XCTAssertEqual(Double(dk[index]), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "dk[\(index)]")
        }
    }

    func testCausalAttentionMatchesNaiveSoftmaxAndItsBackwardMatchesFiniteDifferences() {
        checkAttention(T: 5, H: 4, G: 2, D: 4, seed: 11, rows: [0, 2, 4], queryIndices: [0, 9, 37, 79], keyIndices: [0, 13, 39])
    }

    /// Past several row blocks (rows in blocks of CausalAttention.rowBlock, 32, compute scores only up to their own
    /// last key), rows on both sides of block edges.
    func testBlockedAttentionOnALongSequence() {
        checkAttention(T: 150, H: 2, G: 1, D: 8, seed: 41, rows: [0, 63, 64, 127, 128, 149],
                       queryIndices: [3, 63 * 16 + 5, 64 * 16 + 9, 149 * 16 + 15], keyIndices: [1, 63 * 8 + 2, 64 * 8 + 7, 100 * 8 + 4])
    }

    /// One query head per key/value head (Llama-2-7B's layout): the products run on the sequence's rows in place,
    /// across a block edge.
    func testAttentionWithoutSharedKeyValueHeadsAcrossABlockEdge() {
        checkAttention(T: 70, H: 2, G: 2, D: 8, seed: 51, rows: [0, 63, 64, 69],
                       queryIndices: [5, 63 * 16 + 12, 69 * 16 + 3], keyIndices: [2, 64 * 16 + 9, 69 * 16 + 15])
    }

    /// A sequence that continues a prefix held elsewhere computes the rows of prefix + sequence as one sequence,
    /// forward and backward (the prefix's key and value gradients accumulate there; the prefix's rows get no loss).
    func testAttentionContinuingAPrefixEqualsTheConcatenatedSequence() {
        let P = 3, T = 4, L = P + T, H = 4, G = 2, D = 4, C = H * D, K = G * D
        let query = random(L * C, seed: 21), key = random(L * K, seed: 22), value = random(L * K, seed: 23)
        var upstream = random(L * C, seed: 24)
        for index in 0..<(P * C) { upstream[index] = 0 }
        var scores = [Float](repeating: .nan, count: CausalAttention.scratchCount(sequenceLength: L, heads: H, kvHeads: G, headDimension: D))
        var scores2 = scores
        var output = [Float](repeating: 0, count: L * C), lse = [Float](repeating: 0, count: L * H)
        CausalAttention.forward(output: &output, logSumExp: &lse, query: query, key: key, value: value, scores: &scores,
                                positions: L, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
        var dq = [Float](repeating: 0, count: L * C), dk = [Float](repeating: 0, count: L * K), dv = dk
        CausalAttention.backward(queryGradient: &dq, keyGradient: &dk, valueGradient: &dv, outputGradient: upstream, query: query,
                                 key: key, value: value, output: output, logSumExp: lse, scores: &scores, scoreGradients: &scores2,
                                 positions: L, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)

        var continued = [Float](repeating: 0, count: T * C), continuedLSE = [Float](repeating: 0, count: T * H)
        var continuedQ = [Float](repeating: 0, count: T * C), ownK = [Float](repeating: 0, count: T * K), ownV = ownK
        var prefixK = [Float](repeating: 0, count: P * K), prefixV = prefixK
        query.withUnsafeBufferPointer { q in key.withUnsafeBufferPointer { k in value.withUnsafeBufferPointer { v in
        upstream.withUnsafeBufferPointer { up in
            prefixK.withUnsafeMutableBufferPointer { pk in prefixV.withUnsafeMutableBufferPointer { pv in
                let prefix = AttentionPrefix(key: k.baseAddress!, value: v.baseAddress!, keyGradient: pk.baseAddress!,
                                             valueGradient: pv.baseAddress!, length: P)
                CausalAttention.forward(output: &continued, logSumExp: &continuedLSE, query: q.baseAddress! + P * C,
                                        key: k.baseAddress! + P * K, value: v.baseAddress! + P * K, prefix: prefix, scores: &scores,
                                        positions: T, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
                CausalAttention.backward(queryGradient: &continuedQ, keyGradient: &ownK, valueGradient: &ownV,
                                         outputGradient: up.baseAddress! + P * C, query: q.baseAddress! + P * C,
                                         key: k.baseAddress! + P * K, value: v.baseAddress! + P * K, output: continued,
                                         logSumExp: continuedLSE, prefix: prefix, scores: &scores, scoreGradients: &scores2,
                                         positions: T, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
            } }
        } } } }
        func assertClose(_ actual: [Float], _ expected: ArraySlice<Float>, _ what: String) {
            XCTAssertEqual(actual.count, expected.count)
            for (a, e) in zip(actual, expected) { XCTAssertEqual(a, e, accuracy: 1e-5 * max(1, abs(e)), what) }
        }
        assertClose(continued, output[(P * C)...], "output")
        assertClose(continuedLSE, lse[(P * H)...], "log-sum-exp")
        assertClose(continuedQ, dq[(P * C)...], "dq")
        assertClose(ownK, dk[(P * K)...], "dk of the sequence")
        assertClose(ownV, dv[(P * K)...], "dv of the sequence")
        assertClose(prefixK, dk[..<(P * K)], "dk of the prefix")
        assertClose(prefixV, dv[..<(P * K)], "dv of the prefix")
        XCTAssertGreaterThan(prefixK.map(abs).max()!, 1e-3)
    }

    func testCrossEntropyLogProbabilitiesAndGradient() {
        let V = 6
        var logits: [Float] = [1, 2, 3, 0.5, -1, 0, 0, 0, 0, 0, 0, 10]
        let targets: [Int32] = [2, 5]
        var logProbabilities = [Float](repeating: 0, count: 2), lse = [Float](repeating: 0, count: 2)
        let weights: [Float] = [0.5, 2]
        let original = logits
        CrossEntropy.forward(logits: &logits, targets: targets, rows: 2, vocabularySize: V, logProbabilities: &logProbabilities,
                             logSumExp: &lse, gradientWeights: weights)
        for r in 0..<2 {
            let row = original[(r * V)..<((r + 1) * V)].map(Double.init)
            let expectedLSE = log(row.map(exp).reduce(0, +))
            XCTAssertEqual(Double(lse[r]), expectedLSE, accuracy: 1e-5)
            XCTAssertEqual(Double(logProbabilities[r]), row[Int(targets[r])] - expectedLSE, accuracy: 1e-5)
            for j in 0..<V {
                let softmax = exp(row[j] - expectedLSE)
                let expected = Double(weights[r]) * (softmax - (j == Int(targets[r]) ? 1 : 0))
                XCTAssertEqual(Double(logits[r * V + j]), expected, accuracy: 1e-6)
            }
        }
    }

    func testHalfPrecisionRoundsToNearestEven() {
        XCTAssertEqual(HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: 1.0)), 1.0)
        // 1 + 2⁻⁸ is halfway between two bf16 values: ties go to the even one (1.0).
        XCTAssertEqual(HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: 1 + 1.0 / 256)), 1.0)
        XCTAssertEqual(HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: 1 + 3.0 / 256)), 1 + 4.0 / 256)
        XCTAssertTrue(HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: .nan)).isNaN)
        XCTAssertEqual(HalfPrecision.float(fromHalfBits: 0x3C00), 1.0)
        XCTAssertEqual(HalfPrecision.float(fromHalfBits: 0xC000), -2.0)
        XCTAssertEqual(HalfPrecision.halfBits(from: 65504), 0x7BFF)
    }
}
