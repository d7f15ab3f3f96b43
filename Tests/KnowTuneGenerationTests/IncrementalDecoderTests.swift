// Checks that incremental decoding with the KV cache reproduces the training forward's logits at every step on a
// tiny random model (GQA, untied head), prompts of different lengths decoded together, chunked prefill, and a
// merged LoRA against the unmerged training forward with that LoRA.
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneGeneration

final class IncrementalDecoderTests: XCTestCase {
    /// Greedily extends each prompt by `steps` tokens, all prompts in one batch, recording the next-token logits
    /// after the prefill and after every step.
    private func decodeGreedily(_ decoder: IncrementalDecoder, prompts: [[Int32]], slots: [Int], steps: Int, packed: Bool)
        -> (sequences: [[Int32]], logits: [[[Float]]]) {
        let V = decoder.configuration.vocabularySize
        var sequences = prompts
        var logits = [[[Float]]](repeating: [], count: prompts.count)
        func takeRow(_ row: Int, for index: Int) {
            let values = Array(UnsafeBufferPointer(start: decoder.logits(row: row), count: V))
            logits[index].append(values)
            sequences[index].append(Int32(values.indices.max(by: { values[$0] < values[$1] }) ?? 0))
        }
        for slot in slots { decoder.cache.reset(slot: slot) }
        if packed {
            decoder.prefill(prompts.indices.map { (tokens: prompts[$0], slot: slots[$0]) })
            for index in prompts.indices { takeRow(index, for: index) }
        } else {
            for (index, prompt) in prompts.enumerated() {
                decoder.prefill(tokens: prompt, slot: slots[index])
                takeRow(0, for: index)
            }
        }
        for _ in 0..<steps {
            decoder.step(tokens: sequences.map { $0[$0.count - 1] }, slots: slots)
            for index in prompts.indices { takeRow(index, for: index) }
        }
        return (sequences, logits)
    }

    private func assertMatchesTrainingForward(decoderWeights: LlamaWeights, referenceWeights: LlamaWeights,
                                              lora: LoRABuffer?, atol: Float, file: StaticString = #filePath, line: UInt = #line) {
        let prompts = [TinyRandomModel.tokens(7, seed: 1), TinyRandomModel.tokens(4, seed: 2), TinyRandomModel.tokens(1, seed: 3)]
        let steps = 12
        // Chunks of 3 rows make the 7-token prefill run as 3 + 3 + 1 against a partly filled cache; packed, the
        // chunks are [7 7 7] [7 7 7] [7 4 4] [4 4 1], so sequences also start and end mid-chunk.
        for packed in [false, true] {
            let decoder = IncrementalDecoder(weights: decoderWeights, batchCapacity: 4, maxLength: 40, prefillChunk: 3)
            let (sequences, logits) = decodeGreedily(decoder, prompts: prompts, slots: [2, 0, 3], steps: steps, packed: packed)
            for (index, prompt) in prompts.enumerated() {
                let reference = GenerationFixtures.trainingLogits(weights: referenceWeights, sequence: sequences[index], lora: lora)
                XCTAssertEqual(logits[index].count, steps + 1)
                for (k, row) in logits[index].enumerated() {
                    assertClose(row, reference[prompt.count - 1 + k], atol: atol,
                                "prompt \(index) (length \(prompt.count)), new token \(k), packed \(packed)", file: file, line: line)
                }
            }
        }
    }

    func testStepLogitsEqualTrainingForward() throws {
        let weights = TinyRandomModel.weights()
        assertMatchesTrainingForward(decoderWeights: weights, referenceWeights: weights, lora: nil, atol: 1e-5)
    }

    /// A 16-bit base decodes as the training forward computes on it (the same rounded weights and, for bf16, the
    /// same rounded product inputs; bf16's tolerance covers an input rounded the other way after a different sum order).
    func testSixteenBitStepLogitsEqualTrainingForward() throws {
        for (precision, atol) in [(BasePrecision.f16, Float(1e-5)), (.bf16, 2e-3)] {
            let weights = LlamaWeights(converting: TinyRandomModel.weights(), to: precision)
            assertMatchesTrainingForward(decoderWeights: weights, referenceWeights: weights, lora: nil, atol: atol)
            let merged = try LoRAMerge.merged(base: weights, adapter: TinyRandomModel.lora(LoRAConfiguration(rank: 3, targets: [.query])))
            XCTAssertEqual(merged.precision, precision)
        }
    }

    func testMergedLoRAEqualsUnmergedTrainingForward() throws {
        let base = TinyRandomModel.weights()
        let lora = TinyRandomModel.lora(LoRAConfiguration(rank: 3, alpha: 7, targets: ProjectionKind.allCases))
        let merged = try LoRAMerge.merged(base: base, adapter: lora)
        // The merge must change the model, and leave the base alone.
        let reference = TinyRandomModel.weights()
        XCTAssertEqual(Array(UnsafeBufferPointer(start: base.storage, count: base.layout.totalCount)),
                       Array(UnsafeBufferPointer(start: reference.storage, count: reference.layout.totalCount)))
        XCTAssertNotEqual(merged.projection(1, .down)[5], base.projection(1, .down)[5])
        assertMatchesTrainingForward(decoderWeights: merged, referenceWeights: base, lora: lora, atol: 2e-5)
    }

    func testMergeRejectsAnAdapterForAnotherShape() throws {
        var other = TinyRandomModel.configuration
        other.hiddenSize = 12
        other.headCount = 3
        other.kvHeadCount = 1
        let lora = TinyRandomModel.lora(LoRAConfiguration(rank: 2, targets: [.query]), model: other)
        XCTAssertThrowsError(try LoRAMerge.merge(lora, into: TinyRandomModel.weights())) { error in
            guard case KnowTuneError.invalidConfiguration = error else { return XCTFail("unexpected \(error)") }
        }
    }

    /// A conversation continued in the same slot (prefill after steps) sees the whole history.
    func testPrefillContinuesACachedSequence() throws {
        let weights = TinyRandomModel.weights()
        let decoder = IncrementalDecoder(weights: weights, batchCapacity: 1, maxLength: 40, prefillChunk: 4)
        let first = TinyRandomModel.tokens(5, seed: 4), second = TinyRandomModel.tokens(6, seed: 5)
        decoder.prefill(tokens: first, slot: 0)
        decoder.step(tokens: [9], slots: [0])
        decoder.prefill(tokens: second, slot: 0)
        XCTAssertEqual(decoder.cache.lengths[0], 12)
        let sequence = first + [9] + second
        let reference = GenerationFixtures.trainingLogits(weights: weights, sequence: sequence)
        let V = weights.configuration.vocabularySize
        assertClose(Array(UnsafeBufferPointer(start: decoder.logits(row: 0), count: V)), reference[sequence.count - 1],
                    atol: 1e-5, "after the second turn")
    }
}
