// Checks the products of frozen weights in every encoding, the quantized blocks included (FrozenLinear), against a
// reference summed in Double from the stored weight values (and, for bf16, the bf16-rounded activations), and the binary16
// conversions (F16C and portable) against Swift's Float16 on every half value and on fp32 edge cases.
//
// Tolerance: |Δ| ≤ 1e-5 · Σₖ|xₖ·wₖ| (+ |C₀| when accumulating), the scale of fp32 accumulation error, as in
// BF16KernelTests.
import CKnowTuneBF16
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class FrozenLinearTests: XCTestCase {
    private func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in (2 * generator.nextUnitFloat() - 1) * scale }
    }

    private func sameValue(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

    func testEveryHalfValueDecodesAsSwiftFloat16() {
        let bits = (0...UInt16.max).map { $0 }
        var f16c = [Float](repeating: 0, count: bits.count), portable = f16c
        WeightEncoding.f16.decode(bits, count: bits.count, into: &f16c)
        kt_f16_portable_to_floats(&portable, bits, bits.count)
        var wrong = 0
        for (index, pattern) in bits.enumerated() {
            let expected = Float(Float16(bitPattern: pattern))
            if !sameValue(f16c[index], expected) || !sameValue(portable[index], expected) { wrong += 1 }
        }
        XCTAssertEqual(wrong, 0, "half values decoded differently from Float16")
    }

    func testFloatsRoundToHalfAsSwiftFloat16() {
        var generator = SplitMix64(seed: 11)
        // Random bit patterns cover every exponent (subnormal halves, overflow); the edges are the rounding ties.
        var values = (0..<200_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
        values += [0, -0, 65504, 65519.99, 65520, -65520, .infinity, -.infinity, .nan, 6.1035156e-05, 5.9604645e-08,
                   2.9802322e-08, 2.9802326e-08, 8.940697e-08, 1.0009766, 1.0004883, 1.0014648, -2.0019531]
        var f16c = [UInt16](repeating: 0, count: values.count), portable = f16c
        values.withUnsafeBufferPointer { source in
            f16c.withUnsafeMutableBytes { WeightEncoding.f16.encode(source.baseAddress!, count: values.count, into: $0.baseAddress!) }
        }
        kt_f16_portable_from_floats(&portable, values, values.count)
        var wrong: [String] = []
        for (index, value) in values.enumerated() {
            let expected = Float16(value)
            for (name, bits) in [("F16C", f16c[index]), ("portable", portable[index])] {
                let actual = Float16(bitPattern: bits)
                let same = expected.isNaN ? actual.isNaN : actual.bitPattern == expected.bitPattern
                if !same, wrong.count < 5 { wrong.append("\(name) \(value): \(bits) vs \(expected.bitPattern)") }
            }
        }
        XCTAssertEqual(wrong, [])
    }

    func testProductsInEveryPrecisionMatchReference() {
        // The wide shapes split the weights into several dequantized tiles (about 2^20 floats each); quantized rows are
        // whole blocks (Q4_K's 256).
        for encoding in WeightEncoding.allCases {
            let shapes = encoding.isQuantized ? [(7, 256, 33), (3, 40_192, 60)] : [(7, 45, 33), (3, 40_000, 60)]
            for (rows, inFeatures, outFeatures) in shapes {
                checkProducts(encoding, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            }
        }
    }

    /// The largest rounding error of storing values of magnitude ≤ 0.7 in `encoding` (QuantizedBaseTests derives
    /// the block formats' bounds).
    private func storageErrorBound(_ encoding: WeightEncoding) -> Float {
        switch encoding {
        case .fp32: return 0
        case .bf16: return 4e-3
        case .f16: return 5e-4
        case .q8_0: return 0.7 / 127 * 0.6
        case .q4_0: return 0.7 / 8 * 1.01
        case .q5_0: return 0.7 / 16 * 1.01
        case .q4_1: return 1.4 / 15 * 0.52 + 0.7e-3
        case .q4_K: return 1.4 / 15 * 0.75
        }
    }

    private func checkProducts(_ precision: WeightEncoding, rows: Int, inFeatures: Int, outFeatures: Int) {
        let weightValues = random(outFeatures * inFeatures, seed: 3, scale: 0.7)
        let input = random(rows * inFeatures, seed: 4, scale: 3), outputGradient = random(rows * outFeatures, seed: 5)
        do {
            var stored = [UInt8](repeating: 0, count: precision.byteCount(elements: weightValues.count))
            stored.withUnsafeMutableBytes { precision.encode(weightValues, count: weightValues.count, into: $0.baseAddress!) }
            var w = [Float](repeating: 0, count: weightValues.count)
            stored.withUnsafeBytes { precision.decode($0.baseAddress!, count: w.count, into: &w) }
            if precision != .fp32 {
                XCTAssertNotEqual(w, weightValues, "\(precision) storage rounds")
                XCTAssertLessThan(zip(w, weightValues).map { abs($0 - $1) }.max() ?? 1, storageErrorBound(precision), "\(precision)")
            }
            // bf16 products see bf16 activations; fp32 and f16 the activations as they are.
            let activation: (Float) -> Float = { precision == .bf16 ? WeightEncoding.bf16.rounded($0) : $0 }
            for accumulate in [false, true] {
                let initialOutput = random(rows * outFeatures, seed: 6), initialGradient = random(rows * inFeatures, seed: 7)
                var output = initialOutput, inputGradient = initialGradient
                stored.withUnsafeBytes { bytes in
                    let weight = FrozenMatrix(encoding: precision, address: bytes.baseAddress!)
                    FrozenLinear.linear(output: &output, input: input, weight: weight, rows: rows, inFeatures: inFeatures,
                                        outFeatures: outFeatures, alpha: 0.5, accumulate: accumulate)
                    FrozenLinear.linearInputGradient(inputGradient: &inputGradient, outputGradient: outputGradient,
                                                     weight: weight, rows: rows, inFeatures: inFeatures,
                                                     outFeatures: outFeatures, alpha: 0.5, accumulate: accumulate)
                }
                // Each output is start + Σ 0.5 · activation · weight over the depth; `weightIndex(column, k)` picks W.
                func check(_ actual: [Float], initial: [Float], activations: [Float], columns: Int, depth: Int,
                           weightIndex: (Int, Int) -> Int, _ product: String) {
                    for n in 0..<rows {
                        for column in 0..<columns {
                            var sum = accumulate ? Double(initial[n * columns + column]) : 0, scale = abs(sum)
                            for k in 0..<depth {
                                let term = 0.5 * Double(activation(activations[n * depth + k])) * Double(w[weightIndex(column, k)])
                                sum += term
                                scale += abs(term)
                            }
                            XCTAssertEqual(Double(actual[n * columns + column]), sum, accuracy: 1e-5 * scale, "\(precision) \(product)")
                        }
                    }
                }
                check(output, initial: initialOutput, activations: input, columns: outFeatures, depth: inFeatures,
                      weightIndex: { o, k in o * inFeatures + k }, "linear")
                check(inputGradient, initial: initialGradient, activations: outputGradient, columns: inFeatures,
                      depth: outFeatures, weightIndex: { i, o in o * inFeatures + i }, "input gradient")
            }
        }
    }
}
