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
            for rows in [1, 3, 8, 11] {
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

    func testQuantizedRowsMatchTheTrainingProducts() {
        let inFeatures = 512, outFeatures = 29, stride = 40
        let values = random(outFeatures * inFeatures, seed: 2)
        for encoding in WeightEncoding.allCases where encoding.isQuantized {
            var stored = [UInt8](repeating: 0, count: encoding.byteCount(elements: values.count))
            stored.withUnsafeMutableBytes { encoding.encode(values, count: values.count, into: $0.baseAddress!) }
            for rows in [1, 3, 8, 11] {
                let input = random(rows * inFeatures, seed: UInt64(rows) + 20)
                for accumulate in [false, true] {
                    let initial = random(rows * stride, seed: 9)
                    var actual = initial, expected = [Float](repeating: 0, count: rows * outFeatures)
                    var portable = expected
                    stored.withUnsafeBytes { bytes in
                        let weight = FrozenMatrix(encoding: encoding, address: bytes.baseAddress!)
                        RowProjection.linear(output: &actual, input: input, weight: weight, rows: rows, inFeatures: inFeatures,
                                             outFeatures: outFeatures, outputStride: stride, accumulate: accumulate)
                        FrozenLinear.linear(output: &expected, input: input, weight: weight, rows: rows,
                                            inFeatures: inFeatures, outFeatures: outFeatures)
                        let status = kt_quant_rows_linear(encoding.quantType!, &portable, Int32(outFeatures), input,
                                                          bytes.baseAddress!, Int32(rows), Int32(inFeatures),
                                                          Int32(outFeatures), 0, 1)
                        XCTAssertEqual(status, rows <= 8 ? 0 : -1)
                        if rows > 8 { portable = expected }
                    }
                    for r in 0..<rows {
                        for o in 0..<outFeatures {
                            let start = accumulate ? initial[r * stride + o] : 0
                            XCTAssertEqual(actual[r * stride + o], start + expected[r * outFeatures + o],
                                           accuracy: 1e-5 * Float(inFeatures), "\(encoding) rows \(rows) accumulate \(accumulate)")
                            XCTAssertEqual(portable[r * outFeatures + o], expected[r * outFeatures + o],
                                           accuracy: 1e-5 * Float(inFeatures), "portable \(encoding) rows \(rows)")
                        }
                        XCTAssertEqual(Array(actual[(r * stride + outFeatures)..<(r * stride + stride)]),
                                       Array(initial[(r * stride + outFeatures)..<(r * stride + stride)]))
                    }
                }
            }
        }
    }
}
