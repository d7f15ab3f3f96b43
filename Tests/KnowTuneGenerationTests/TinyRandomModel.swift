// Implements tiny random LLaMA weights and LoRA adapters for the generation tests (GQA, untied head, sizes that
// divide nothing evenly); does not load files.
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport

enum TinyRandomModel {
    /// 3 layers, 6 query heads over 2 KV heads of size 4, untied head, odd vocabulary and FFN sizes.
    static let configuration = LlamaConfiguration(
        vocabularySize: 53, hiddenSize: 24, intermediateSize: 40, layerCount: 3, headCount: 6, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 96)

    /// Uniform weights scaled by 1/√fan-in (times 1.7 so logits are spread), norms in [0.8, 1.2].
    static func weights(seed: UInt64 = 5, configuration c: LlamaConfiguration = configuration) -> LlamaWeights {
        RandomModel.weights(c, seed: seed)
    }

    /// A LoRA adapter with both factors random (B ≠ 0, so merging changes the model).
    static func lora(_ lora: LoRAConfiguration, model c: LlamaConfiguration = configuration, seed: UInt64 = 9) -> LoRABuffer {
        RandomModel.lora(lora, model: c, seed: seed, scale: 0.25)
    }

    static func tokens(_ count: Int, seed: UInt64, vocabulary: Int = configuration.vocabularySize) -> [Int32] {
        RandomModel.tokens(count, seed: seed, vocabulary: vocabulary)
    }
}
