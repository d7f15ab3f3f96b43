// Implements LLaMA's gated activation h = silu(gate)·up, forward and backward (CKnowTuneElementwise: AVX2 exp with
// a libm fallback); does not do the projections.
import CKnowTuneElementwise

public enum SwiGLU {
    /// h[n] = silu(gate[n])·up[n] over `count` elements.
    public static func forward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               count: Int) {
        kt_swiglu_forward(output, gate, up, count)
    }

    /// Writes dGate and dUp from dH (dGate may alias gate's storage only if gate is not needed afterwards).
    public static func backward(gateGradient: UnsafeMutablePointer<Float>, upGradient: UnsafeMutablePointer<Float>,
                                outputGradient: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                count: Int) {
        kt_swiglu_backward(gateGradient, upGradient, outputGradient, gate, up, count)
    }
}
