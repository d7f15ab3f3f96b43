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
}
