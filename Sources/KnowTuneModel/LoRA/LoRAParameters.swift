// Implements a flat fp32 buffer laid out by a LoRALayout (used for LoRA weights, their gradients and AdamW
// moments alike), with PEFT initialisation; does not compute.
import Foundation
import KnowTuneTensor

public final class LoRABuffer {
    public let layout: LoRALayout
    public let values: UnsafeMutablePointer<Float>
    public var count: Int { layout.totalCount }

    public init(layout: LoRALayout) {
        self.layout = layout
        values = .allocate(capacity: max(1, layout.totalCount))
        values.initialize(repeating: 0, count: max(1, layout.totalCount))
    }

    deinit { values.deallocate() }

    public func zero() { values.update(repeating: 0, count: count) }

    public func copy(from other: LoRABuffer) {
        precondition(other.layout == layout, "LoRA layouts differ")
        values.update(from: other.values, count: count)
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: values, count: count)) }

    /// PEFT's default initialisation (`init_lora_weights=True`): A ~ kaiming-uniform(a=√5) = U(−1/√in, 1/√in),
    /// B = 0, so the adapted model starts equal to the base. Deterministic for a seed.
    public func initializePEFT(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        zero()
        let r = layout.configuration.rank
        for slot in layout.slots {
            let bound = 1 / Float(slot.inFeatures).squareRoot()
            let a = values + slot.aOffset
            for i in 0..<(r * slot.inFeatures) { a[i] = (2 * generator.nextUnitFloat() - 1) * bound }
        }
    }

    /// Σ values², in Double (for gradient norms).
    public func sumOfSquares() -> Double {
        var sum: Double = 0
        for i in 0..<count { sum += Double(values[i]) * Double(values[i]) }
        return sum
    }
}
