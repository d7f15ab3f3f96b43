// Implements tiny random LLaMA models for fast tests (GQA, untied head, odd sizes); does not load files.
import KnowTuneTensor
import KnowTuneTestSupport
@testable import KnowTuneModel

enum TinyModel {
    static let configuration = LlamaConfiguration(
        vocabularySize: 37, hiddenSize: 16, intermediateSize: 24, layerCount: 2, headCount: 4, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 64)

    static func weights(seed: UInt64 = 7, configuration c: LlamaConfiguration = configuration) -> LlamaWeights {
        RandomModel.weights(c, seed: seed)
    }

    /// LoRA with both factors random (B ≠ 0, so every gradient path is exercised).
    static func lora(_ configuration: LoRAConfiguration, model c: LlamaConfiguration = configuration, seed: UInt64 = 11) -> LoRABuffer {
        RandomModel.lora(configuration, model: c, seed: seed, scale: 0.3)
    }

    static func randomTokens(_ count: Int, seed: UInt64, vocabulary: Int = configuration.vocabularySize) -> [Int32] {
        RandomModel.tokens(count, seed: seed, vocabulary: vocabulary)
    }

    /// The token-mean response loss and LoRA gradients of two fixed random sequences (vocabulary of `configuration`).
    static func lossAndGradients(_ weights: LlamaWeights, lora: LoRABuffer) -> (loss: Double, gradients: [Float]) {
        var batch = PackedBatch()
        batch.append(prompt: randomTokens(6, seed: 1), response: randomTokens(9, seed: 2), exampleIndex: 0)
        batch.append(prompt: randomTokens(4, seed: 3), response: randomTokens(7, seed: 4), exampleIndex: 1)
        let decoder = LlamaDecoder(weights: weights, maxPositions: 64)
        let plan = ActivationPlan(model: weights.configuration, loraLayout: lora.layout, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.tokenCount)
        let M = batch.targetCount
        let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: lora,
                                               objective: HeadObjective(weights: [Float](repeating: 1 / Float(M), count: M)))
        let gradients = LoRABuffer(layout: lora.layout)
        decoder.backward(batch: batch, plan: plan, lora: lora, gradients: gradients)
        return (-logProbabilities.reduce(0.0) { $0 + Double($1) } / Double(M),
                Array(UnsafeBufferPointer(start: gradients.values, count: gradients.count)))
    }
}
