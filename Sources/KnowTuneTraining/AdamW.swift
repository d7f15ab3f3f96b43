// Implements AdamW over the flat LoRA buffer exactly as torch.optim.AdamW (decoupled weight decay, bias
// correction, ε added after the square root); does not clip or schedule (the trainer does).
import Foundation
import KnowTuneModel

public struct AdamWConfiguration: Codable, Equatable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float = 0
    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

public final class AdamW {
    public let configuration: AdamWConfiguration
    /// First and second moments, in the LoRA layout.
    public let firstMoment: LoRABuffer
    public let secondMoment: LoRABuffer
    /// Steps taken so far (bias correction uses step + 1 on the next update).
    public private(set) var stepCount: Int = 0

    public init(layout: LoRALayout, configuration: AdamWConfiguration = AdamWConfiguration()) {
        self.configuration = configuration
        firstMoment = LoRABuffer(layout: layout)
        secondMoment = LoRABuffer(layout: layout)
    }

    /// Restores the state from a checkpoint.
    public func restore(step: Int, firstMoment m: [Float], secondMoment v: [Float]) {
        precondition(m.count == firstMoment.count && v.count == secondMoment.count, "moment sizes differ")
        stepCount = step
        m.withUnsafeBufferPointer { firstMoment.values.update(from: $0.baseAddress!, count: m.count) }
        v.withUnsafeBufferPointer { secondMoment.values.update(from: $0.baseAddress!, count: v.count) }
    }

    /// One update of `parameters` with `gradients` at `learningRate` (torch's `_single_tensor_adamw` order).
    public func step(parameters: LoRABuffer, gradients: LoRABuffer, learningRate: Float) {
        stepCount += 1
        let c = configuration
        let t = Float(stepCount)
        let biasCorrection1 = 1 - pow(c.beta1, t)
        let biasCorrection2 = 1 - pow(c.beta2, t)
        let stepSize = learningRate / biasCorrection1
        let biasCorrection2Root = biasCorrection2.squareRoot()
        let decay = 1 - learningRate * c.weightDecay
        let p = parameters.values, g = gradients.values, m = firstMoment.values, v = secondMoment.values
        for i in 0..<parameters.count {
            p[i] *= decay
            m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i]
            v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i]
            let denominator = v[i].squareRoot() / biasCorrection2Root + c.epsilon
            p[i] -= stepSize * m[i] / denominator
        }
    }
}
