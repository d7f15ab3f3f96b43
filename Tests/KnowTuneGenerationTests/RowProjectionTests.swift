// Checks decoding's row products on a 16-bit or quantized base (the CKnowTuneBF16 and CKnowTuneQuant row kernels for up
// to 8 rows, vectorised and portable; FrozenLinear or 8-row groups above) against FrozenLinear, the training products, on odd shapes, with a
// strided output and with accumulation; more than 8 rows are refused by the kernel. Tolerance: fp32 summation order, 1e-5 of the summed magnitude.
import CKnowTuneBF16
import CKnowTuneQuant
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneGeneration

final class RowProjectionTests: XCTestCase {
    private func random(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in 2 * generator.nextUnitFloat() - 1 }
    }

    func testSixteenBitRowsMatchTheTrainingProducts() {
        let inFeatures = 37, outFeatures = 29, stride = 40
        let values = random(outFeatures * inFeatures, seed: 1)
        for precision in [WeightEncoding.bf16, .f16] {
            var stored = [UInt16](repeating: 0, count: values.count)
            stored.withUnsafeMutableBytes { precision.encode(values, count: values.count, into: $0.baseAddress!) }
            for rows in Array(1...8) + [11] {
                let input = random(rows * inFeatures, seed: UInt64(rows))
                for accumulate in [false, true] {
                    let initial = random(rows * stride, seed: 9)
                    var actual = initial, contiguous = [Float](repeating: 0, count: rows * outFeatures)
                    var expected = [Float](repeating: 0, count: rows * outFeatures), portable = contiguous
                    stored.withUnsafeBytes { bytes in
                        let weight = FrozenMatrix(encoding: precision, address: bytes.baseAddress!)
                        RowProjection.linear(output: &actual, input: input, weight: weight, rows: rows, inFeatures: inFeatures,
                                             outFeatures: outFeatures, outputStride: stride, accumulate: accumulate)
                        RowProjection.linear(output: &contiguous, input: input, weight: weight, rows: rows,
                                             inFeatures: inFeatures, outFeatures: outFeatures)
                        FrozenLinear.linear(output: &expected, input: input, weight: weight, rows: rows,
                                            inFeatures: inFeatures, outFeatures: outFeatures)
                        if rows <= 8 {
                            XCTAssertEqual(kt_half_rows_linear_portable(&portable, Int32(outFeatures), input,
                                                                        bytes.baseAddress!.assumingMemoryBound(to: UInt16.self),
                                                                        Int32(rows), Int32(inFeatures), Int32(outFeatures), 0,
                                                                        precision == .f16 ? 1 : 0), 0)
                        } else {
                            XCTAssertEqual(kt_half_rows_linear(&portable, 0, input, bytes.baseAddress!.assumingMemoryBound(to: UInt16.self),
                                                               Int32(rows), Int32(inFeatures), Int32(outFeatures), 0, 0), -1)
                            portable = expected
                        }
                    }
                    for r in 0..<rows {
                        for o in 0..<outFeatures {
                            let start = accumulate ? initial[r * stride + o] : 0
                            XCTAssertEqual(actual[r * stride + o], start + expected[r * outFeatures + o], accuracy: 1e-5 * Float(inFeatures),
                                           "\(precision) rows \(rows) accumulate \(accumulate)")
                            XCTAssertEqual(contiguous[r * outFeatures + o], expected[r * outFeatures + o], accuracy: 1e-5 * Float(inFeatures))
                            XCTAssertEqual(portable[r * outFeatures + o], expected[r * outFeatures + o], accuracy: 1e-5 * Float(inFeatures),
                                           "portable \(precision) rows \(rows)")
                        }
                        // Columns between the output's rows are left alone.
                        XCTAssertEqual(Array(actual[(r * stride + outFeatures)..<(r * stride + stride)]),
                                       Array(initial[(r * stride + outFeatures)..<(r * stride + stride)]))
                    }
                }
            }
        }
    }

    /// With fp32 activations (every type, vectorised and portable) the rows equal the training products; Q8_0's
    /// default 8-bit activations are checked against their own arithmetic below.
    func testQuantizedRowsMatchTheTrainingProducts() {
        let inFeatures = 512, outFeatures = 29, stride = 40
        let values = random(outFeatures * inFeatures, seed: 2)
        let fp32 = Int32(KT_QUANT_ROWS_FP32_ACTIVATIONS), portable = Int32(KT_QUANT_ROWS_PORTABLE)
        for encoding in WeightEncoding.allCases where encoding.isQuantized {
            var stored = [UInt8](repeating: 0, count: encoding.byteCount(elements: values.count))
            stored.withUnsafeMutableBytes { encoding.encode(values, count: values.count, into: $0.baseAddress!) }
            for rows in Array(1...8) + [11] {
                let input = random(rows * inFeatures, seed: UInt64(rows) + 20)
                for accumulate in [false, true] {
                    let initial = random(rows * stride, seed: 9)
                    var actual = initial, expected = [Float](repeating: 0, count: rows * outFeatures)
                    var vectorised = expected, scalar = expected
                    // Q8_0's rows go to 8-bit activations by default (the next test), in groups of 8 when strided
                    let checksRowProjection = encoding != .q8_0
                    stored.withUnsafeBytes { bytes in
                        let weight = FrozenMatrix(encoding: encoding, address: bytes.baseAddress!)
                        FrozenLinear.linear(output: &expected, input: input, weight: weight, rows: rows,
                                            inFeatures: inFeatures, outFeatures: outFeatures)
                        if checksRowProjection {
                            RowProjection.linear(output: &actual, input: input, weight: weight, rows: rows, inFeatures: inFeatures,
                                                 outFeatures: outFeatures, outputStride: stride, accumulate: accumulate)
                        }
                        for (mode, output) in [(fp32, 0), (fp32 | portable, 1)] {
                            var result = [Float](repeating: 0, count: rows * outFeatures)
                            let status = kt_quant_rows_linear(encoding.quantType!, &result, Int32(outFeatures), input,
                                                              bytes.baseAddress!, Int32(rows), Int32(inFeatures),
                                                              Int32(outFeatures), 0, mode)
                            XCTAssertEqual(status, rows <= 8 ? 0 : -1)
                            if output == 0 { vectorised = rows > 8 ? expected : result } else { scalar = rows > 8 ? expected : result }
                        }
                    }
                    for r in 0..<rows {
                        for o in 0..<outFeatures {
                            let start = accumulate ? initial[r * stride + o] : 0
                            if checksRowProjection {
                                XCTAssertEqual(actual[r * stride + o], start + expected[r * outFeatures + o],
                                               accuracy: 1e-5 * Float(inFeatures), "\(encoding) rows \(rows) accumulate \(accumulate)")
                            }
                            XCTAssertEqual(vectorised[r * outFeatures + o], expected[r * outFeatures + o],
                                           accuracy: 1e-5 * Float(inFeatures), "fp32 activations \(encoding) rows \(rows)")
                            XCTAssertEqual(scalar[r * outFeatures + o], expected[r * outFeatures + o],
                                           accuracy: 1e-5 * Float(inFeatures), "portable \(encoding) rows \(rows)")
                        }
                        XCTAssertEqual(Array(actual[(r * stride + outFeatures)..<(r * stride + stride)]),
                                       Array(initial[(r * stride + outFeatures)..<(r * stride + stride)]))
                    }
                }
            }
        }
    }

    /// Q8_0 decoding with 8-bit activations (the default, vectorised and portable, split over threads) computes
    /// Σ_blocks d_w·d_x·Σ q_w·q_x with d_x = max|x|/127 and q_x = x/d_x rounded to even, as a Double reference does;
    /// and it stays within the activations' rounding (Σ |w|·d_x/2) of the fp32 product.
    func testQ8_0RowsWithEightBitActivations() {
        let inFeatures = 576, outFeatures = 301, stride = 310
        let values = random(outFeatures * inFeatures, seed: 3)
        var stored = [UInt8](repeating: 0, count: WeightEncoding.q8_0.byteCount(elements: values.count))
        stored.withUnsafeMutableBytes { WeightEncoding.q8_0.encode(values, count: values.count, into: $0.baseAddress!) }
        let blocks = inFeatures / 32
        func weightBlock(_ o: Int, _ b: Int) -> (scale: Double, q: [Int]) {
            let offset = (o * blocks + b) * 34
            let scale = Double(HalfPrecision.float(fromHalfBits: UInt16(stored[offset]) | UInt16(stored[offset + 1]) << 8))
            return (scale, (0..<32).map { Int(Int8(bitPattern: stored[offset + 2 + $0])) })
        }
        for rows in 1...8 {
            var input = random(rows * inFeatures, seed: UInt64(rows) + 40)
            for k in 0..<32 { input[k] = 0 }  // an all-zero block has scale 0
            input[40] = 5  // one large value: its block's other values round coarsely
            var reference = [Double](repeating: 0, count: rows * outFeatures), bound = reference, exact = reference
            for r in 0..<rows {
                for b in 0..<blocks {
                    let x = input[(r * inFeatures + 32 * b)..<(r * inFeatures + 32 * b + 32)]
                    let scale = x.map { abs($0) }.max()! / 127
                    let inverse: Float = scale > 0 ? 1 / scale : 0
                    let q = x.map { Int(($0 * inverse).rounded(.toNearestOrEven)) }
                    for o in 0..<outFeatures {
                        let w = weightBlock(o, b)
                        reference[r * outFeatures + o] += w.scale * Double(scale) * Double(zip(w.q, q).reduce(0) { $0 + $1.0 * $1.1 })
                        for (j, xj) in x.enumerated() {
                            exact[r * outFeatures + o] += w.scale * Double(w.q[j]) * Double(xj)
                            bound[r * outFeatures + o] += abs(w.scale * Double(w.q[j])) * Double(scale) / 2
                        }
                    }
                }
            }
            for mode in [Int32(0), Int32(KT_QUANT_ROWS_PORTABLE)] {
                var output = [Float](repeating: 7, count: rows * stride)
                stored.withUnsafeBytes { bytes in
                    XCTAssertEqual(kt_quant_rows_linear(WeightEncoding.q8_0.quantType!, &output, Int32(stride), input,
                                                        bytes.baseAddress!, Int32(rows), Int32(inFeatures), Int32(outFeatures), 1, mode), 0)
                }
                for r in 0..<rows {
                    for o in 0..<outFeatures {
                        let actual = Double(output[r * stride + o]) - 7
                        XCTAssertEqual(actual, reference[r * outFeatures + o], accuracy: 1e-4 + 1e-5 * bound[r * outFeatures + o] * 254,
                                       "mode \(mode) rows \(rows) feature \(o)")
                        XCTAssertLessThanOrEqual(abs(actual - exact[r * outFeatures + o]), bound[r * outFeatures + o] + 1e-3)
                    }
                    XCTAssertEqual(output[r * stride + outFeatures], 7, "outside the output features")
                }
            }
        }
    }

    /// The row kernel splits output features over OpenBLAS's thread count: two threads give one thread's result bit
    /// for bit, over many consecutive products, including products after the team's workers have gone to sleep.
    func testRowsOnTwoThreadsEqualOneThread() {
        let inFeatures = 256, outFeatures = 520
        let values = random(outFeatures * inFeatures, seed: 4)
        let savedThreads = BLAS.threadCount
        defer { BLAS.setThreadCount(savedThreads) }
        for encoding in [WeightEncoding.q8_0, .q4_K] {
            var stored = [UInt8](repeating: 0, count: encoding.byteCount(elements: values.count))
            stored.withUnsafeMutableBytes { encoding.encode(values, count: values.count, into: $0.baseAddress!) }
            for call in 0..<300 {
                let rows = 1 + call % 8
                let input = random(rows * inFeatures, seed: UInt64(call) + 100)
                var results: [[Float]] = []
                for threads in [1, 2] {
                    BLAS.setThreadCount(threads)
                    var output = [Float](repeating: 0, count: rows * outFeatures)
                    stored.withUnsafeBytes { bytes in
                        _ = kt_quant_rows_linear(encoding.quantType!, &output, Int32(outFeatures), input, bytes.baseAddress!,
                                                 Int32(rows), Int32(inFeatures), Int32(outFeatures), 0, 0)
                    }
                    results.append(output)
                }
                XCTAssertEqual(results[0], results[1], "\(encoding) call \(call)")
                if call % 100 == 99 { usleep(20_000) }  // past the workers' spinning: they sleep and must wake
            }
        }
    }
}
