// Implements shared loading for the generation tests: the real SmolLM2 model (once per process, failing when it is
// missing), the golden greedy.json, and reference logits from the training forward; does not assert.
import Foundation
import KnowTuneModel
import KnowTuneTestSupport

enum GenerationFixtures {
    static func smolLM2() throws -> LoadedModel { try GoldenModel.smolLM2() }

    struct GreedyCase {
        let prompt: [Int32]
        let generated: [Int32]
        let text: String
    }

    /// The two cases of the golden greedy.json.
    static func greedyCases() throws -> [GreedyCase] {
        let golden = try TestPaths.goldenJSON("greedy.json")
        let cases = golden["cases"] as? [[String: Any]] ?? []
        return cases.map { entry in
            GreedyCase(prompt: int32Array(entry["prompt_ids"]), generated: int32Array(entry["generated_ids"]),
                       text: entry["generated_text"] as? String ?? "")
        }
    }

    static func int32Array(_ value: Any?) -> [Int32] { GoldenModel.int32Array(value) }

    /// Next-token logits at every position of `sequence` from the training forward (`LlamaDecoder.forward` +
    /// `logitsOfLastForward`), with an unmerged LoRA when given: row t predicts token t+1.
    static func trainingLogits(weights: LlamaWeights, sequence: [Int32], lora: LoRABuffer? = nil) -> [[Float]] {
        let c = weights.configuration
        // Every real position gets a target by appending one dummy token; causality keeps it from changing them.
        var batch = PackedBatch()
        batch.append(ids: sequence + [0], labels: [-100] + Array(sequence.dropFirst()) + [0])
        let decoder = LlamaDecoder(weights: weights, maxPositions: c.maxPositionEmbeddings)
        let plan = ActivationPlan(model: c, loraLayout: lora?.layout, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.tokenCount)
        decoder.forward(batch: batch, plan: plan, lora: lora)
        let logits = decoder.logitsOfLastForward(plan: plan, targetCount: sequence.count)
        let V = c.vocabularySize
        return (0..<sequence.count).map { Array(logits[($0 * V)..<(($0 + 1) * V)]) }
    }
}
