// Checks CKnowTuneElementwise against double-precision references: exp within 2 ulp over fp32's range (NaN kept,
// underflow near zero, overflow to infinity), SwiGLU forward and backward, RMSNorm rows, the attention row softmax and its
// backward, and the head's max / Σ exp / scaled exp, on lengths that exercise the 8-lane body and the scalar tail.
import CKnowTuneElementwise
import Foundation
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class ElementwiseKernelTests: XCTestCase {
    private func random(_ count: Int, seed: UInt64, scale: Float) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in (2 * generator.nextUnitFloat() - 1) * scale }
    }

    private func assertRelative(_ actual: Float, _ expected: Double, _ tolerance: Double, _ what: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertLessThanOrEqual(abs(Double(actual) - expected), tolerance * max(abs(expected), 1e-30), "\(what): \(actual) vs \(expected)",
                                 file: file, line: line)
    }

    func testExpIsWithinTwoUlpOverTheFloatRange() {
        print("element-wise path: \(kt_elementwise_uses_avx2() != 0 ? "AVX2+FMA" : "portable (libm)")")
        var inputs = stride(from: Float(-87), through: 88, by: 0.0173).map { $0 } + random(1003, seed: 3, scale: 20)
        inputs += [0, -0.0, 1e-8, -1e-8, 0.5 * Float(M_LN2), -0.5 * Float(M_LN2)]
        var outputs = [Float](repeating: 0, count: inputs.count)
        kt_exp(&outputs, inputs, inputs.count)
        var worst = 0.0
        for (x, y) in zip(inputs, outputs) {
            let expected = Foundation.exp(Double(x))
            let error = abs(Double(y) - expected) / expected
            worst = max(worst, error)
            assertRelative(y, expected, 2.4e-7, "exp(\(x))")
        }
        print("exp: worst relative error \(worst)")
        XCTAssertEqual(outputs[inputs.firstIndex(of: 0)!], 1)
        // Eight lanes and a scalar tail: NaN stays NaN, underflow lands at or below the smallest normal, overflow and
        // the largest finite inputs behave as in libm.
        let special: [Float] = [.nan, -200, 200, 88.7, 88.73, .nan, -200, 200, .nan, 88.7, 88.73]
        var results = special
        kt_exp(&results, special, special.count)
        for index in [0, 5, 8] { XCTAssertTrue(results[index].isNaN, "NaN stays NaN at \(index)") }
        for index in [1, 6] { XCTAssertLessThanOrEqual(results[index], 1.2e-38); XCTAssertGreaterThanOrEqual(results[index], 0) }
        for index in [2, 4, 7, 10] { XCTAssertEqual(results[index], .infinity, "exp(\(special[index]))") }
        for index in [3, 9] { assertRelative(results[index], Foundation.exp(Double(special[index])), 2.4e-7, "exp(88.7)") }
    }

    func testSwiGLUForwardAndBackward() {
        let count = 1037
        let gate = random(count, seed: 5, scale: 12), up = random(count, seed: 6, scale: 2), upstream = random(count, seed: 7, scale: 1)
        var output = [Float](repeating: 0, count: count), dGate = output, dUp = output
        kt_swiglu_forward(&output, gate, up, count)
        kt_swiglu_backward(&dGate, &dUp, upstream, gate, up, count)
        for i in 0..<count {
            let g = Double(gate[i]), sigmoid = 1 / (1 + Foundation.exp(-g))
            let scale = max(1, abs(g * Double(up[i])))
            XCTAssertEqual(Double(output[i]), g * sigmoid * Double(up[i]), accuracy: 1e-6 * scale)
            XCTAssertEqual(Double(dUp[i]), Double(upstream[i]) * g * sigmoid, accuracy: 1e-6 * max(1, abs(g)))
            XCTAssertEqual(Double(dGate[i]), Double(upstream[i]) * Double(up[i]) * sigmoid * (1 + g * (1 - sigmoid)), accuracy: 1e-6 * scale)
        }
    }

    func testSoftmaxRowAndItsBackward() {
        for (visible, width) in [(1, 4), (7, 7), (8, 9), (29, 40)] {
            let scores = random(width, seed: UInt64(visible), scale: 6)
            var row = scores
            let lse = kt_softmax_row(&row, visible, width)
            let expectedLSE = Foundation.log(scores[..<visible].reduce(0.0) { $0 + Foundation.exp(Double($1)) })
            XCTAssertEqual(Double(lse), expectedLSE, accuracy: 1e-6 * max(1, abs(expectedLSE)))
            for j in 0..<width {
                let expected = j < visible ? Foundation.exp(Double(scores[j]) - expectedLSE) : 0
                XCTAssertEqual(Double(row[j]), expected, accuracy: 1e-6)
            }
            var p = scores, dp = random(width, seed: UInt64(100 + visible), scale: 1)
            let upstream = dp
            kt_softmax_row_backward(&p, &dp, visible, width, lse, 0.25)
            for j in 0..<width {
                let probability = j < visible ? Foundation.exp(Double(scores[j]) - Double(lse)) : 0
                XCTAssertEqual(Double(p[j]), probability, accuracy: 1e-6)
                XCTAssertEqual(Double(dp[j]), j < visible ? probability * (Double(upstream[j]) - 0.25) : 0, accuracy: 1e-6)
            }
        }
    }

    func testRMSNormRowsAgainstDouble() {
        let rows = 3, channels = 45
        let x = random(rows * channels, seed: 11, scale: 3), weight = random(channels, seed: 12, scale: 2)
        let upstream = random(rows * channels, seed: 13, scale: 1)
        var output = [Float](repeating: 0, count: rows * channels), rstd = [Float](repeating: 0, count: rows)
        kt_rmsnorm_forward(&output, &rstd, x, weight, rows, channels, 1e-5)
        var dx = [Float](repeating: 0.5, count: rows * channels)
        kt_rmsnorm_backward(&dx, upstream, x, weight, rstd, rows, channels)
        for row in 0..<rows {
            let values = (0..<channels).map { Double(x[row * channels + $0]) }
            let r = 1 / (values.reduce(0) { $0 + $1 * $1 } / Double(channels) + 1e-5).squareRoot()
            XCTAssertEqual(Double(rstd[row]), r, accuracy: 1e-6 * r)
            let g = (0..<channels).map { Double(upstream[row * channels + $0]) * Double(weight[$0]) }
            let mean = zip(g, values).reduce(0) { $0 + $1.0 * $1.1 } / Double(channels)
            for i in 0..<channels {
                XCTAssertEqual(Double(output[row * channels + i]), values[i] * r * Double(weight[i]), accuracy: 1e-5)
                XCTAssertEqual(Double(dx[row * channels + i]), 0.5 + g[i] * r - values[i] * r * r * r * mean, accuracy: 1e-5)
            }
        }
    }

    func testHeadMaxSumAndScaledExp() {
        let V = 49_155
        let logits = random(V, seed: 9, scale: 15)
        XCTAssertEqual(kt_max(logits, V), logits.max()!)
        let maximum = logits.max()!
        let sum = kt_sum_exp_shifted(logits, V, maximum)
        let expected = logits.reduce(0.0) { $0 + Foundation.exp(Double($1 - maximum)) }
        XCTAssertEqual(sum, expected, accuracy: 1e-7 * expected)
        var scaled = Array(logits[..<13])
        kt_scaled_exp_shifted(&scaled, 13, 2, 0.5)
        for j in 0..<13 { assertRelative(scaled[j], 0.5 * Foundation.exp(Double(logits[j] - 2)), 3e-7, "scaled exp") }
    }
}
