// Implements seeded random LLaMA weights, LoRA factors and token ids for tests on tiny models; does not load files.
import KnowTuneModel
import KnowTuneTensor

public enum RandomModel {
    /// Uniform weights scaled by `matrixScale`/√fan-in, norms uniform in 1 ± `normSpread`.
    public static func weights(_ c: LlamaConfiguration, seed: UInt64, matrixScale: Float = 1.7, normSpread: Float = 0.2) -> LlamaWeights {
        let weights = LlamaWeights(configuration: c)
        var generator = SplitMix64(seed: seed)
        for tensor in weights.namedTensors() {
            let isNorm = tensor.shape.count == 1
            let scale: Float = isNorm ? normSpread : matrixScale / Float(tensor.shape.last ?? 1).squareRoot()
            for i in 0..<tensor.shape.reduce(1, *) {
                let u = 2 * generator.nextUnitFloat() - 1
                tensor.pointer[i] = isNorm ? 1 + scale * u : scale * u
            }
        }
        return weights
    }

    /// LoRA with both factors uniform in ±`scale` (B ≠ 0, so every gradient path and merge is exercised).
    public static func lora(_ lora: LoRAConfiguration, model c: LlamaConfiguration, seed: UInt64, scale: Float) -> LoRABuffer {
        let buffer = LoRABuffer(layout: LoRALayout(model: c, lora: lora))
        var generator = SplitMix64(seed: seed)
        for i in 0..<buffer.count { buffer.values[i] = (2 * generator.nextUnitFloat() - 1) * scale }
        return buffer
    }

    public static func tokens(_ count: Int, seed: UInt64, vocabulary: Int) -> [Int32] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int32(generator.next() % UInt64(vocabulary)) }
    }
}
