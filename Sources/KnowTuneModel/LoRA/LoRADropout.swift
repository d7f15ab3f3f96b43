// Implements LoRA input dropout whose keep/drop decision is a pure function of (seed, step, example index in the
// global batch, layer, module, position, feature), so results never depend on how examples are spread over
// ranks or micro-batches; does not draw from any stateful generator.
import KnowTuneTensor

public struct LoRADropout {
    public let probability: Float
    public let seed: UInt64
    public let step: Int

    public init(probability: Float, seed: UInt64, step: Int) {
        self.probability = probability
        self.seed = seed
        self.step = step
    }

    public var isActive: Bool { probability > 0 }

    /// output[t, j] = input[t, j]·keep/(1−p) for rows `rows` of a [N, width] matrix.
    public func apply(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, width: Int,
                      batch: PackedBatch, layer: Int, kind: ProjectionKind) {
        let keepScale = 1 / (1 - probability)
        let threshold = UInt64(Double(probability) * Double(UInt64(1) << 32))
        for b in 0..<batch.sequenceCount {
            let example = UInt64(batch.exampleIndices[b])
            var key = SplitMix64.mix(seed ^ 0x4B54_4C6F_5241_4450)  // "KTLoRADP"
            key = SplitMix64.mix(key ^ UInt64(step))
            key = SplitMix64.mix(key ^ example)
            key = SplitMix64.mix(key ^ UInt64(layer * 8 + kind.rawValue))
            for row in batch.sequenceStarts[b]..<batch.sequenceStarts[b + 1] {
                let rowKey = SplitMix64.mix(key ^ UInt64(batch.positions[row]))
                let x = input + row * width
                let y = output + row * width
                for j in 0..<width {
                    let draw = SplitMix64.mix(rowKey &+ UInt64(j)) >> 32
                    y[j] = draw < threshold ? 0 : x[j] * keepScale
                }
            }
        }
    }
}
