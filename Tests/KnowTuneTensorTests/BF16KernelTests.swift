// Checks the bf16 frozen-weight products (BF16BLAS over CKnowTuneBF16) against an fp32-semantics reference written
// here: the same bf16-rounded inputs (HalfPrecision.bfloat16Bits), products summed in Double. Both kernel paths
// accumulate in fp32, so they may differ from the reference only by fp32 summation rounding.
//
// Tolerance: |Δ| ≤ 1e-5 · (|alpha|·Σₖ|xₖ·wₖ| + |C₀| when accumulating), i.e. 1e-5 relative to the magnitude of the
// terms summed, the scale on which fp32 accumulation error is bounded (the signed sum can cancel). Observed errors
// are about 1e-7 of that scale.
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class BF16KernelTests: XCTestCase {
    private static let tolerance = 1e-5

    private func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in (2 * generator.nextUnitFloat() - 1) * scale }
    }

    private func roundedToBF16(_ values: [Float]) -> [Float] {
        values.map { HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: $0)) }
    }

    /// Which products a case runs.
    private enum Product: CustomStringConvertible {
        case linear, inputGradient
        var description: String { self == .linear ? "linear" : "inputGradient" }
    }

    /// One product on `path`: C (+)= alpha·bf16(A)·op(W), A [rows, depth], C [rows, columns].
    private func run(_ product: Product, output: inout [Float], activations: [Float], weight: BF16Matrix, rows: Int,
                     alpha: Float, accumulate: Bool, threads: Int? = nil, path: BF16BLAS.Path) {
        activations.withUnsafeBufferPointer { a in output.withUnsafeMutableBufferPointer { c in
            switch product {
            case .linear:
                BF16BLAS.linear(output: c.baseAddress!, input: a.baseAddress!, weight: weight, rows: rows, alpha: alpha,
                                accumulate: accumulate, threads: threads, path: path)
            case .inputGradient:
                BF16BLAS.linearInputGradient(inputGradient: c.baseAddress!, outputGradient: a.baseAddress!, weight: weight,
                                             rows: rows, alpha: alpha, accumulate: accumulate, threads: threads, path: path)
            }
        } }
    }

    /// The reference and the scale of its terms (for the tolerance), from bf16-rounded activations and the weight.
    private func reference(_ product: Product, initial: [Float], activations: [Float], weight: BF16Matrix, rows: Int,
                           alpha: Float, accumulate: Bool) -> (values: [Double], scale: [Double]) {
        let w = weight.floats(), x = roundedToBF16(activations)
        let out = weight.rows, inFeatures = weight.columns
        let depth = product == .linear ? inFeatures : out, columns = product == .linear ? out : inFeatures
        var values = [Double](repeating: 0, count: rows * columns), scale = values
        for n in 0..<rows {
            for j in 0..<columns {
                var sum = 0.0, magnitude = 0.0
                for k in 0..<depth {
                    let wk = product == .linear ? w[j * inFeatures + k] : w[k * inFeatures + j]
                    let term = Double(x[n * depth + k]) * Double(wk)
                    sum += term
                    magnitude += abs(term)
                }
                let c0 = accumulate ? Double(initial[n * columns + j]) : 0
                values[n * columns + j] = Double(alpha) * sum + c0
                scale[n * columns + j] = abs(Double(alpha)) * magnitude + abs(c0)
            }
        }
        return (values, scale)
    }

    private var availablePaths: [BF16BLAS.Path] { BF16BLAS.hasNativeKernel ? [.native, .fallback] : [.fallback] }

    /// Runs both products on every path for each shape and compares with the reference.
    private func checkAgainstReference(rows: Int, inFeatures: Int, outFeatures: Int, alpha: Float, accumulate: Bool,
                                       seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let weight = BF16Matrix(rows: outFeatures, columns: inFeatures,
                                converting: random(outFeatures * inFeatures, seed: seed, scale: 0.5))
        for product in [Product.linear, .inputGradient] {
            let depth = product == .linear ? inFeatures : outFeatures, columns = product == .linear ? outFeatures : inFeatures
            let activations = random(rows * depth, seed: seed + 1, scale: 3)
            let initial = random(rows * columns, seed: seed + 2)
            let expected = reference(product, initial: initial, activations: activations, weight: weight, rows: rows,
                                     alpha: alpha, accumulate: accumulate)
            for path in availablePaths {
                var output = initial
                run(product, output: &output, activations: activations, weight: weight, rows: rows, alpha: alpha,
                    accumulate: accumulate, path: path)
                var worst = 0.0, worstIndex = 0
                for i in 0..<output.count {
                    let error = abs(Double(output[i]) - expected.values[i]) / max(expected.scale[i], 1e-30)
                    if error > worst { worst = error; worstIndex = i }
                }
                XCTAssertLessThanOrEqual(
                    worst, Self.tolerance,
                    "\(product) \(path) rows \(rows) in \(inFeatures) out \(outFeatures) alpha \(alpha) accumulate \(accumulate): "
                        + "worst error \(worst) of the term scale at \(worstIndex) (\(output[worstIndex]) vs \(expected.values[worstIndex]))",
                    file: file, line: line)
            }
        }
    }

    // MARK: - Conversion and storage

    func testBulkRoundingMatchesHalfPrecisionBitForBit() {
        var values: [Float] = [0, -0, 1, -1, 1 + 1.0 / 256, 1 + 3.0 / 256, -(1 + 1.0 / 256), .infinity, -.infinity,
                               .nan, -.nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
                               Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                               Float(bitPattern: 0x7F7F_8000), 65504, Float(bitPattern: 0x0001_7FFF)]
        values += random(1000, seed: 11, scale: 1e4)
        values += [1, 2, 3]  // an odd tail after the 16-wide blocks
        var bits = [UInt16](repeating: 0xFFFF, count: values.count)
        values.withUnsafeBufferPointer { source in bits.withUnsafeMutableBufferPointer { destination in
            BF16BLAS.round(source.baseAddress!, count: values.count, into: destination.baseAddress!)
        } }
        for (index, value) in values.enumerated() {
            XCTAssertEqual(bits[index], HalfPrecision.bfloat16Bits(from: value),
                           "value \(value) (bits 0x\(String(value.bitPattern, radix: 16))) at \(index)")
        }
    }

    func testBF16MatrixStoresRoundedValues() {
        let values: [Float] = [1, 1 + 1.0 / 256, -2.5, 3.14159, 1e-3, -7]
        let matrix = BF16Matrix(rows: 2, columns: 3, converting: values)
        XCTAssertEqual(matrix.byteCount, 12)
        XCTAssertEqual(matrix.floats(), roundedToBF16(values))
        XCTAssertEqual(matrix[1, 1], roundedToBF16([1e-3])[0])
        XCTAssertEqual(matrix[0, 1], 1, "1 + 2⁻⁸ is a tie and rounds to even")
    }

    // MARK: - Products against the reference

    func testProductsMatchReferenceOnOddShapes() {
        // rows 1, 3, 17 (not multiples of the 6-row tile); in/out neither multiples of 16 nor 32, odd depths (padded
        // pair), a single column, and a case with a full 16×16 packing block plus remainders.
        let shapes = [(37, 53), (70, 130), (100, 17), (33, 1), (1, 5), (5, 67), (576, 200), (129, 577)]
        var seed: UInt64 = 100
        for rows in [1, 3, 17] {
            for (inFeatures, outFeatures) in shapes {
                checkAgainstReference(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, alpha: 1,
                                      accumulate: false, seed: seed)
                seed += 10
            }
        }
    }

    func testAlphaAndAccumulate() {
        for (rows, inFeatures, outFeatures) in [(3, 37, 53), (17, 130, 70), (40, 300, 260)] {
            for (alpha, accumulate) in [(Float(0.37), false), (0.37, true), (1, true), (-2, true)] {
                checkAgainstReference(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, alpha: alpha,
                                      accumulate: accumulate, seed: UInt64(rows * 1000 + inFeatures))
            }
        }
    }

    func testDepthAcrossSeveralBlocksMatchesReference() {
        // Depth 1537 (769 pairs: 7 blocks of ≤ 128 pairs, the last one short) on both products.
        checkAgainstReference(rows: 13, inFeatures: 1537, outFeatures: 99, alpha: 1, accumulate: true, seed: 7)
    }

    func testSmallIntegerProductsAreExactOnEveryPath() {
        // Multiples of 1/4 up to 8 are exact in bf16 and every partial sum is exact in fp32, so no rounding is
        // allowed at all: a wrong pairing, a missed padding or a dropped element shows as an exact mismatch.
        let rows = 7, inFeatures = 45, outFeatures = 83
        var generator = SplitMix64(seed: 3)
        func quarter() -> Float { Float(Int(generator.next() % 65) - 32) / 4 }
        let weightValues = (0..<(outFeatures * inFeatures)).map { _ in quarter() }
        let weight = BF16Matrix(rows: outFeatures, columns: inFeatures, converting: weightValues)
        XCTAssertEqual(weight.floats(), weightValues)
        for product in [Product.linear, .inputGradient] {
            let depth = product == .linear ? inFeatures : outFeatures, columns = product == .linear ? outFeatures : inFeatures
            let activations = (0..<(rows * depth)).map { _ in quarter() }
            let expected = reference(product, initial: [], activations: activations, weight: weight, rows: rows, alpha: 1,
                                     accumulate: false).values.map { Float($0) }
            for path in availablePaths {
                var output = [Float](repeating: .nan, count: rows * columns)
                run(product, output: &output, activations: activations, weight: weight, rows: rows, alpha: 1,
                    accumulate: false, path: path)
                XCTAssertEqual(output, expected, "\(product) \(path)")
            }
        }
    }

    func testEmptyDepthWritesZerosOrKeepsOutput() {
        let weight = BF16Matrix(rows: 4, columns: 0)
        var output: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        run(.linear, output: &output, activations: [0], weight: weight, rows: 2, alpha: 1, accumulate: true, path: .automatic)
        XCTAssertEqual(output, [1, 2, 3, 4, 5, 6, 7, 8])
        run(.linear, output: &output, activations: [0], weight: weight, rows: 2, alpha: 1, accumulate: false, path: .automatic)
        XCTAssertEqual(output, [Float](repeating: 0, count: 8))
    }

    // MARK: - Paths and threads

    /// The run-time detection agrees with the kernel's view of the CPU; where the CPU has AVX-512 BF16, the native
    /// kernel agrees with the fallback and gives the same bits for every thread count. (On a CPU without it, as the
    /// AMD EPYC machines of this project's CI, only the detection and the fallback can be checked.)
    func testNativeKernelDetectionAndAgreementWithTheFallback() throws {
        XCTAssertEqual(BF16BLAS.resolvedPath(.fallback), .fallback)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let cpuHasIt = ["avx512f", "avx512bw", "avx512vl", "avx512_bf16"].allSatisfy(flags.contains)
        XCTAssertEqual(BF16BLAS.hasNativeKernel, cpuHasIt, "detection vs /proc/cpuinfo flags")
        XCTAssertEqual(BF16BLAS.resolvedPath(.native), cpuHasIt ? .native : nil)
        XCTAssertEqual(BF16BLAS.resolvedPath(.automatic), cpuHasIt ? .native : .fallback)
        guard cpuHasIt else { return }
        let rows = 33, inFeatures = 200, outFeatures = 150
        let weight = BF16Matrix(rows: outFeatures, columns: inFeatures, converting: random(outFeatures * inFeatures, seed: 21))
        for product in [Product.linear, .inputGradient] {
            let depth = product == .linear ? inFeatures : outFeatures, columns = product == .linear ? outFeatures : inFeatures
            let activations = random(rows * depth, seed: 22)
            let expected = reference(product, initial: [], activations: activations, weight: weight, rows: rows, alpha: 1,
                                     accumulate: false)
            var native = [Float](repeating: 0, count: rows * columns), fallback = native
            run(product, output: &native, activations: activations, weight: weight, rows: rows, alpha: 1, accumulate: false,
                path: .native)
            run(product, output: &fallback, activations: activations, weight: weight, rows: rows, alpha: 1,
                accumulate: false, path: .fallback)
            for i in 0..<native.count {
                XCTAssertEqual(Double(native[i]), Double(fallback[i]), accuracy: 2 * Self.tolerance * expected.scale[i],
                               "\(product) element \(i)")
            }
        }
        try nativeResultsAreIdenticalForEveryThreadCount()
    }

    private func nativeResultsAreIdenticalForEveryThreadCount() throws {
        // Large enough to start threads (≥ 2²¹ multiply-adds), column counts that split unevenly.
        let rows = 70, inFeatures = 310, outFeatures = 530
        let weight = BF16Matrix(rows: outFeatures, columns: inFeatures, converting: random(outFeatures * inFeatures, seed: 31))
        for product in [Product.linear, .inputGradient] {
            let depth = product == .linear ? inFeatures : outFeatures, columns = product == .linear ? outFeatures : inFeatures
            let activations = random(rows * depth, seed: 32)
            let initial = random(rows * columns, seed: 33)
            var outputs: [[Float]] = []
            for threads in [1, 2, 3, 5] {
                var output = initial
                run(product, output: &output, activations: activations, weight: weight, rows: rows, alpha: 0.5,
                    accumulate: true, threads: threads, path: .native)
                outputs.append(output)
            }
            for (index, output) in outputs.enumerated().dropFirst() {
                XCTAssertTrue(output == outputs[0], "\(product): thread count #\(index) changed the result bits")
            }
        }
    }
}
