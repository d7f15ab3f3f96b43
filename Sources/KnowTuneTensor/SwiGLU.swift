// Implements LLaMA's gated activation h = silu(gate)·up, forward and backward; does not do the projections.
import Foundation

public enum SwiGLU {
    /// h[n] = silu(gate[n])·up[n] over `count` elements.
    public static func forward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               count: Int) {
        for i in 0..<count {
            let g = gate[i]
            output[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    /// Writes dGate and dUp from dH (dGate may alias gate's storage only if gate is not needed afterwards).
    public static func backward(gateGradient: UnsafeMutablePointer<Float>, upGradient: UnsafeMutablePointer<Float>,
                                outputGradient: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                count: Int) {
        for i in 0..<count {
            let g = gate[i]
            let sigmoid = 1 / (1 + expf(-g))
            let silu = g * sigmoid
            let dh = outputGradient[i]
            upGradient[i] = dh * silu
            gateGradient[i] = dh * up[i] * sigmoid * (1 + g * (1 - sigmoid))
        }
    }
}
