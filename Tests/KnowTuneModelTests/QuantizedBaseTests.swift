// Checks a frozen base kept in ggml's quantized blocks (`--base_dtype q8_0|q4_0|q4_k`): the block decoder equals the
// golden-tested GGUF dequantizer bit for bit, quantization stays within half a step (and the legacy formats re-encode
// their own values unchanged), each tensor gets llama.cpp's encoding and fallbacks, the loss and LoRA gradients equal
// the fp32 path on the dequantized weights (≤ 1e-5 relative), merges requantize, and on the real SmolLM2 the golden
// sequence's NLL stays within 1 % (q8_0) and 4 % (q4_0, q4_k) of fp32, with the differences from HF's fp64 printed.
import Foundation
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class QuantizedBaseTests: XCTestCase {
    private static let quantized = BasePrecision.allCases.filter(\.isQuantized)

    /// Hidden 64 (whole 32-blocks, not whole 256-blocks) and intermediate 256: Q4_K on the down projection only.
    private static let blockConfiguration = LlamaConfiguration(
        vocabularySize: 37, hiddenSize: 64, intermediateSize: 256, layerCount: 2, headCount: 4, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 64)

    private func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in (2 * generator.nextUnitFloat() - 1) * scale }
    }

    func testBlockDecodingMatchesTheGGUFDequantizer() throws {
        var generator = SplitMix64(seed: 5)
        for encoding in WeightEncoding.allCases where encoding.isQuantized {
            let blocks = 64, count = blocks * encoding.blockElements
            var bytes = (0..<blocks * encoding.blockBytes).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Finite scales: f16 values with exponents below 0x1E (the block's first one or two halves).
            for block in 0..<blocks {
                bytes[block * encoding.blockBytes + 1] &= 0x77
                bytes[block * encoding.blockBytes + 3] &= encoding == .q4_1 || encoding == .q4_K ? 0x77 : 0xFF
            }
            var actual = [Float](repeating: 0, count: count), expected = actual
            bytes.withUnsafeBytes { encoding.decode($0.baseAddress!, count: count, into: &actual) }
            let type = try XCTUnwrap(GGUFTensorType(rawValue: UInt32(encoding.quantType!)))
            try bytes.withUnsafeBytes { try GGUFDequantizer.dequantise(type: type, bytes: $0, elementCount: count, into: &expected) }
            XCTAssertEqual(actual.map(\.bitPattern), expected.map(\.bitPattern), "\(encoding)")
        }
    }

    func testQuantizationStaysWithinHalfAStep() {
        for encoding in WeightEncoding.allCases where encoding.isQuantized {
            // Blocks of different magnitudes, a zero block, a constant block and an all-negative one.
            var values = random(8 * 256, seed: 9)
            for (index, scale) in [0.01, 3, 0.5, 100].enumerated() {
                for i in 0..<256 { values[index * 256 + i] *= Float(scale) }
            }
            for i in 0..<256 { values[4 * 256 + i] = 0; values[5 * 256 + i] = 0.25; values[6 * 256 + i] = -abs(values[6 * 256 + i]) - 1 }
            var stored = [UInt8](repeating: 0, count: encoding.byteCount(elements: values.count))
            var decoded = [Float](repeating: 0, count: values.count)
            stored.withUnsafeMutableBytes { encoding.encode(values, count: values.count, into: $0.baseAddress!) }
            stored.withUnsafeBytes { encoding.decode($0.baseAddress!, count: values.count, into: &decoded) }
            // Per 32 elements, from the block's largest magnitude A or its range R (min clamped to 0 for Q4_K): Q8_0
            // rounds to A/127 and its f16 scale moves the extreme by up to 127·2⁻¹¹ steps; Q4_0 and Q5_0 span
            // [−8d, 7d] and [−16d, 15d] with d = A/8 and A/16, so the extreme of the other sign is a whole step
            // off; Q4_1 rounds to R/15 with f16 scale and min; Q4_K's 6-bit scales cost up to a quarter step more.
            for block in 0..<(values.count / 32) {
                let slice = (block * 32)..<(block * 32 + 32)
                let largest = values[slice].map(abs).max()!, smallest = values[slice].min()!
                let bound: Float
                switch encoding {
                case .q8_0: bound = largest / 127 * 0.6
                case .q4_0: bound = largest / 8 * 1.01
                case .q5_0: bound = largest / 16 * 1.01
                case .q4_1: bound = (values[slice].max()! - smallest) / 15 * 0.52 + abs(smallest) * 1e-3
                default: bound = (values[slice].max()! - min(0, smallest)) / 15 * 0.75
                }
                let error = zip(decoded[slice], values[slice]).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(error, bound + 1e-7, "\(encoding) block \(block)")
            }
            XCTAssertEqual(Array(decoded[(4 * 256)..<(5 * 256)]), [Float](repeating: 0, count: 256), "\(encoding) zeros")
            // The legacy formats store their own decoded values back in the same bytes.
            if [.q8_0, .q4_0, .q5_0].contains(encoding) {
                var again = [UInt8](repeating: 0, count: stored.count)
                again.withUnsafeMutableBytes { encoding.encode(decoded, count: decoded.count, into: $0.baseAddress!) }
                XCTAssertEqual(again, stored, "\(encoding) re-encoding")
            }
        }
    }

    func testEachTensorGetsLlamaCppsEncoding() {
        let c = Self.blockConfiguration
        let q8 = LlamaStorageLayout(c, precision: .q8_0)
        XCTAssertEqual(Set(q8.tensors.filter { $0.shape.count == 2 }.map(\.storage.encoding)), [.q8_0])
        XCTAssertEqual(Set(q8.tensors.filter { $0.shape.count == 1 }.map(\.storage.encoding)), [.fp32])
        let q4k = LlamaStorageLayout(c, precision: .q4_k)
        XCTAssertEqual(q4k.projections[1][ProjectionKind.down.rawValue].encoding, .q4_K)
        XCTAssertEqual(q4k.projections[1][ProjectionKind.up.rawValue].encoding, .q5_0)
        XCTAssertEqual(q4k.embedding.encoding, .q5_0)
        XCTAssertEqual(q4k.encodingSummary, "q5_0 × 14, fp32 × 5, q4_k × 2")
        // Rows that are not whole 32-blocks are stored in f16, as llama.cpp does.
        let odd = LlamaStorageLayout(TinyModel.configuration, precision: .q4_0)
        XCTAssertEqual(odd.projections[0][ProjectionKind.query.rawValue].encoding, .f16)
        // A tensor already in the chosen encoding is kept; Q4_1 stands for Q4_0; anything else is requantized.
        let sources: [String: WeightEncoding] = [LlamaTensorName.embedding: .q4_1, LlamaTensorName.lmHead: .q8_0,
                                                 LlamaTensorName.projection(0, .down): .q4_1]
        let kept = LlamaStorageLayout(c, precision: .q4_0, sourceEncodings: sources)
        XCTAssertEqual(kept.embedding.encoding, .q4_1)
        XCTAssertEqual(kept.lmHead.encoding, .q4_0)
        XCTAssertEqual(LlamaStorageLayout(c, precision: .q8_0, sourceEncodings: sources).lmHead.encoding, .q8_0)
        let q4kKept = LlamaStorageLayout(c, precision: .q4_k, sourceEncodings: sources)
        XCTAssertEqual(q4kKept.projections[0][ProjectionKind.down.rawValue].encoding, .q4_K)
        // Where Q4_K falls back to Q5_0, a file's 4-bit rows are kept (smaller, and exact); 8-bit ones are not.
        XCTAssertEqual(q4kKept.embedding.encoding, .q4_1)
        XCTAssertEqual(q4kKept.lmHead.encoding, .q5_0)
        XCTAssertEqual(q8.byteCount, q8.tensors.map(\.storage.byteCount).reduce(0, +))
    }

    /// An fp32 model holding the values `weights` decodes to.
    private func dequantized(_ weights: LlamaWeights) -> LlamaWeights {
        let copy = LlamaWeights(configuration: weights.configuration)
        for (tensor, target) in zip(weights.storageLayout.tensors, copy.namedTensors()) {
            tensor.storage.encoding.decode(weights.base + tensor.storage.offset, count: tensor.storage.elementCount, into: target.pointer)
        }
        return copy
    }

    func testLossAndGradientsEqualTheFP32PathOnTheDequantizedWeights() {
        let c = Self.blockConfiguration
        let source = RandomModel.weights(c, seed: 3, matrixScale: 0.5)
        let lora = TinyModel.lora(LoRAConfiguration(rank: 4, alpha: 8, targets: ProjectionKind.allCases), model: c)
        let fp32 = TinyModel.lossAndGradients(source, lora: lora)
        for precision in Self.quantized {
            let weights = LlamaWeights(converting: source, to: precision)
            let quantized = TinyModel.lossAndGradients(weights, lora: lora)
            let reference = TinyModel.lossAndGradients(dequantized(weights), lora: lora)
            XCTAssertEqual(quantized.loss, reference.loss, accuracy: 1e-5 * reference.loss, "\(precision)")
            XCTAssertLessThanOrEqual(compareTensors(quantized.gradients, reference.gradients, atol: 0).relativeL2Error, 1e-5,
                                     "\(precision)")
            // Quantization moved the weights: the result differs from fp32, and not by much.
            XCTAssertNotEqual(quantized.loss, fp32.loss, "\(precision)")
            XCTAssertEqual(quantized.loss, fp32.loss, accuracy: 0.05 * fp32.loss, "\(precision)")
        }
    }

    func testMergeRequantizesTheMergedWeight() {
        let c = Self.blockConfiguration
        let adapter = TinyModel.lora(LoRAConfiguration(rank: 4, alpha: 8, targets: [.query, .down]), model: c)
        for precision in Self.quantized {
            let weights = LlamaWeights(converting: RandomModel.weights(c, seed: 3, matrixScale: 0.5), to: precision)
            let expected = dequantized(weights)
            LoRAMerger.merge(adapter, into: expected)
            LoRAMerger.merge(adapter, into: weights)
            for kind in [ProjectionKind.query, .down] {
                let (o, i) = kind.shape(c)
                let storage = weights.storageLayout.projections[1][kind.rawValue]
                var requantized = [UInt8](repeating: 0, count: storage.byteCount)
                requantized.withUnsafeMutableBytes { storage.encoding.encode(expected.projection(1, kind), count: o * i, into: $0.baseAddress!) }
                XCTAssertEqual(memcmp(weights.base + storage.offset, requantized, storage.byteCount), 0, "\(precision) \(kind)")
            }
            XCTAssertEqual(memcmp(weights.base + weights.storageLayout.projections[1][ProjectionKind.value.rawValue].offset,
                                  LlamaWeights(converting: RandomModel.weights(c, seed: 3, matrixScale: 0.5), to: precision).base
                                      + weights.storageLayout.projections[1][ProjectionKind.value.rawValue].offset,
                                  weights.storageLayout.projections[1][ProjectionKind.value.rawValue].byteCount), 0,
                           "\(precision): an unadapted projection is untouched")
        }
    }

    /// SmolLM2 loaded with each quantized base from its Q4_1/Q8_0 GGUF file (as `--base_dtype` loads it: tensors
    /// already in the chosen encoding kept, the others requantized): the golden sequence's NLL without adapter (what
    /// `score` reports) within 1 % (q8_0) or 4 % (q4_0, q4_k) of fp32; the golden LoRA case (lora.json: r=8 q,v)
    /// on q4_k (the file's Q4_1 rows kept, Q4_K products) equal to the fp32 path on the dequantized weights; the LoRA loss and gradients
    /// of q8_0 and q4_k against HF's fp64 printed.
    func testSmolLM2WithAQuantizedBase() throws {
        let model = try GoldenFixtures.smolLM2()
        let golden = try TestPaths.goldenJSON("lora.json")
        let fp64Gradients = try NumpyArchive.readNPZ(path: TestPaths.golden.appendingPathComponent("lora_grads.npz").path)
        let (prompt, response) = try GoldenFixtures.forwardSequence()
        let layout = LoRALayout(model: model.configuration, lora: LoRAConfiguration(rank: 8, alpha: 16, targets: [.query, .value]))
        let lora = LoRABuffer(layout: layout)
        GoldenFixtures.fillPattern(lora)
        let expectedLoss = GoldenFixtures.double(golden["lora_loss_fp64"])
        var expectedGradients: [Float] = []
        for tensor in layout.namedTensors { expectedGradients += fp64Gradients[tensor.name]?.values ?? [] }
        let fp32Score = GoldenFixtures.lossAndGradients(model: model, prompt: prompt, response: response, lora: nil).loss
        func run(_ weights: LlamaWeights, _ lora: LoRABuffer?) -> (loss: Double, gradients: [Float]) {
            let loaded = LoadedModel(configuration: model.configuration, weights: weights, tokenizer: model.tokenizer,
                                     source: model.source, format: "")
            let result = GoldenFixtures.lossAndGradients(model: loaded, prompt: prompt, response: response, lora: lora)
            return (result.loss, result.gradients.map { Array(UnsafeBufferPointer(start: $0.values, count: $0.count)) } ?? [])
        }
        var report: [String] = []
        for precision in Self.quantized {
            let weights = try ModelLoader.load(model.source, precision: precision).weights
            let score = run(weights, nil).loss
            XCTAssertEqual(score, fp32Score, accuracy: (precision == .q8_0 ? 0.01 : 0.04) * fp32Score, "\(precision)")
            var line = String(format: "%@ [%@]: score NLL %.5f (fp32 %.5f, %+.2f%%)", precision.rawValue,
                              weights.storageLayout.encodingSummary, score, fp32Score, 100 * (score - fp32Score) / fp32Score)
            if precision != .q4_0 {  // q4_0 keeps the file's Q4_1 tensors: nothing the other two do not cover
                let quantized = run(weights, lora)
                if precision == .q4_k {
                    let reference = run(dequantized(weights), lora)
                    XCTAssertEqual(quantized.loss, reference.loss, accuracy: 1e-5 * reference.loss, "\(precision)")
                    XCTAssertLessThanOrEqual(compareTensors(quantized.gradients, reference.gradients, atol: 0).relativeL2Error, 1e-5)
                }
                line += String(format: "; LoRA loss %.5f (fp64 %.5f, %+.2f%%), gradients rel L2 vs fp64 %.4f", quantized.loss,
                               expectedLoss, 100 * (quantized.loss - expectedLoss) / expectedLoss,
                               compareTensors(quantized.gradients, expectedGradients, atol: 0).relativeL2Error)
            }
            report.append(line)
        }
        print("quantized base vs fp32 / fp64 golden:\n  " + report.joined(separator: "\n  "))
    }
}
