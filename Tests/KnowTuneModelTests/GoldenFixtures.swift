// Implements shared loading for the golden tests: the real SmolLM2 model (once per process), the golden
// sequences and the LoRA pattern of Tests/Fixtures/golden/README.md; does not assert anything itself.
import Foundation
import KnowTuneTestSupport
@testable import KnowTuneData
@testable import KnowTuneModel

enum GoldenFixtures {
    static func smolLM2() throws -> LoadedModel { try GoldenModel.smolLM2() }
    static func int32Array(_ value: Any?) -> [Int32] { GoldenModel.int32Array(value) }
    static func floatArray(_ value: Any?) -> [Float] { GoldenModel.floatArray(value) }
    static func double(_ value: Any?) -> Double { GoldenModel.double(value) }

    /// The forward.json sequence: (prompt ids, response ids incl. EOS).
    static func forwardSequence() throws -> (prompt: [Int32], response: [Int32]) {
        let forward = try TestPaths.goldenJSON("forward.json")
        let prompt = int32Array(forward["prompt_ids"])
        let response = int32Array(forward["response_ids"]) + [Int32((forward["eos_id"] as? Int) ?? 2)]
        return (prompt, response)
    }

    static func fillPattern(_ buffer: LoRABuffer) { GoldenModel.fillPattern(buffer) }

    /// Runs forward (+ backward when `lora` is given) on one prompt/response with the token-mean loss, returning
    /// (mean NLL, gradients).
    static func lossAndGradients(model: LoadedModel, prompt: [Int32], response: [Int32], lora: LoRABuffer?)
        -> (loss: Double, gradients: LoRABuffer?, logProbabilities: [Float]) {
        var batch = PackedBatch()
        batch.append(prompt: prompt, response: response)
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: 512)
        let plan = ActivationPlan(model: model.configuration, loraLayout: lora?.layout,
                                  tokenCapacity: batch.tokenCount, sequenceCapacity: batch.tokenCount)
        let M = batch.targetCount
        let weights = [Float](repeating: 1 / Float(M), count: M)
        let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: lora,
                                               objective: HeadObjective(weights: lora == nil ? nil : weights))
        let loss = -logProbabilities.reduce(0.0) { $0 + Double($1) } / Double(M)
        guard let lora else { return (loss, nil, logProbabilities) }
        let gradients = LoRABuffer(layout: lora.layout)
        decoder.backward(batch: batch, plan: plan, lora: lora, gradients: gradients)
        return (loss, gradients, logProbabilities)
    }
}
