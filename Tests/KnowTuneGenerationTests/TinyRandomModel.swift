// Implements tiny random LLaMA weights and LoRA adapters for the generation tests (GQA, untied head, sizes that
// divide nothing evenly); does not load files.
import KnowTuneModel
import KnowTuneTensor

enum TinyRandomModel {
    /// 3 layers, 6 query heads over 2 KV heads of size 4, untied head, odd vocabulary and FFN sizes.
    static let configuration = LlamaConfiguration(
        vocabularySize: 53, hiddenSize: 24, intermediateSize: 40, layerCount: 3, headCount: 6, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 96)

    /// Uniform weights scaled by 1/√fan-in (times 1.7 so logits are spread), norms in [0.8, 1.2].
    static func weights(seed: UInt64 = 5, configuration c: LlamaConfiguration = configuration) -> LlamaWeights {
        let weights = LlamaWeights(configuration: c)
        var generator = SplitMix64(seed: seed)
        for tensor in weights.namedTensors() {
            let isNorm = tensor.shape.count == 1
            let scale: Float = isNorm ? 0.2 : 1.7 / Float(tensor.shape.last ?? 1).squareRoot()
            for i in 0..<tensor.shape.reduce(1, *) {
                let u = 2 * generator.nextUnitFloat() - 1
                tensor.pointer[i] = isNorm ? 1 + scale * u : scale * u
            }
        }
        return weights
    }

    /// A LoRA adapter with both factors random (B ≠ 0, so merging changes the model).
    static func lora(_ lora: LoRAConfiguration, model c: LlamaConfiguration = configuration, seed: UInt64 = 9) -> LoRABuffer {
        let buffer = LoRABuffer(layout: LoRALayout(model: c, lora: lora))
        var generator = SplitMix64(seed: seed)
        for i in 0..<buffer.count { buffer.values[i] = (2 * generator.nextUnitFloat() - 1) * 0.25 }
        return buffer
    }

    static func tokens(_ count: Int, seed: UInt64, vocabulary: Int = configuration.vocabularySize) -> [Int32] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int32(generator.next() % UInt64(vocabulary)) }
    }
}
