// Implements tiny random LLaMA models for fast tests (GQA, untied head, odd sizes); does not load files.
import KnowTuneTensor
@testable import KnowTuneModel

enum TinyModel {
    static let configuration = LlamaConfiguration(
        vocabularySize: 37, hiddenSize: 16, intermediateSize: 24, layerCount: 2, headCount: 4, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 64)

    /// Random weights, scaled so activations stay O(1); norms near 1.
    static func weights(seed: UInt64 = 7, configuration c: LlamaConfiguration = configuration) -> LlamaWeights {
        let weights = LlamaWeights(configuration: c)
        var generator = SplitMix64(seed: seed)
        for tensor in weights.namedTensors() {
            let count = tensor.shape.reduce(1, *)
            let isNorm = tensor.shape.count == 1
            let scale: Float = isNorm ? 0.2 : 1 / Float(tensor.shape.last ?? 1).squareRoot()
            for i in 0..<count {
                let u = 2 * generator.nextUnitFloat() - 1
                tensor.pointer[i] = isNorm ? 1 + scale * u : scale * u * 1.7
            }
        }
        return weights
    }

    /// LoRA with both factors random (B ≠ 0, so every gradient path is exercised).
    static func lora(_ configuration: LoRAConfiguration, model c: LlamaConfiguration = configuration, seed: UInt64 = 11) -> LoRABuffer {
        let buffer = LoRABuffer(layout: LoRALayout(model: c, lora: configuration))
        var generator = SplitMix64(seed: seed)
        for i in 0..<buffer.count { buffer.values[i] = (2 * generator.nextUnitFloat() - 1) * 0.3 }
        return buffer
    }

    static func randomTokens(_ count: Int, seed: UInt64, vocabulary: Int = configuration.vocabularySize) -> [Int32] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int32(generator.next() % UInt64(vocabulary)) }
    }
}
