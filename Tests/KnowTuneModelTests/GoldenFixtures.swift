// Implements shared loading for the golden tests: the real SmolLM2 model (once per process), the golden
// sequences and the LoRA pattern of shared/golden/README.md; does not assert anything itself.
import Foundation
import KnowTuneTestSupport
@testable import KnowTuneData
@testable import KnowTuneModel

enum GoldenFixtures {
    private static var cachedModel: LoadedModel?
    private static let lock = NSLock()

    /// The real model, loaded once (dequantising takes about a second).
    static func smolLM2() throws -> LoadedModel {
        lock.lock()
        defer { lock.unlock() }
        if let cachedModel { return cachedModel }
        let model = try ModelLoader.load(try TestPaths.require(TestPaths.smolLM2))
        cachedModel = model
        return model
    }

    static func int32Array(_ value: Any?) -> [Int32] { (value as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.int32Value } }
    static func floatArray(_ value: Any?) -> [Float] { (value as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.floatValue } }
    static func double(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? .nan }

    /// The forward.json sequence: (prompt ids, response ids incl. EOS).
    static func forwardSequence() throws -> (prompt: [Int32], response: [Int32]) {
        let forward = try TestPaths.goldenJSON("forward.json")
        let prompt = int32Array(forward["prompt_ids"])
        let response = int32Array(forward["response_ids"]) + [Int32((forward["eos_id"] as? Int) ?? 2)]
        return (prompt, response)
    }

    /// Fills a LoRA buffer with the README's exactly-representable pattern.
    static func fillPattern(_ buffer: LoRABuffer) {
        let r = buffer.layout.configuration.rank
        for slot in buffer.layout.slots {
            let m = slot.kind.rawValue, layer = slot.layer
            for i in 0..<r {
                for j in 0..<slot.inFeatures {
                    let v = ((3 * i + 5 * j + 7 * layer + 11 * m) % 19) - 9
                    buffer.values[slot.aOffset + i * slot.inFeatures + j] = Float(v) / 512
                }
            }
            for i in 0..<slot.outFeatures {
                for j in 0..<r {
                    let v = ((7 * i + 2 * j + 5 * layer + 3 * m) % 23) - 11
                    buffer.values[slot.bOffset + i * r + j] = Float(v) / 1024
                }
            }
        }
    }

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
