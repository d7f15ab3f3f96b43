// Implements RMSNorm forward/backward over rows (matches transformers `LlamaRMSNorm`: normalise in fp32,
// then scale by the weight; rows reduced 8 lanes at a time in CKnowTuneElementwise); does not compute a weight
// gradient (the weight is frozen).
import CKnowTuneElementwise

public enum RMSNorm {
    /// out[N,C] = x · rstd · weight; rstd[N] = 1/√(mean(x²) + ε) is saved for backward.
    public static func forward(output: UnsafeMutablePointer<Float>, reciprocalRMS: UnsafeMutablePointer<Float>?,
                               input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows: Int, channels: Int, epsilon: Float) {
        kt_rmsnorm_forward(output, reciprocalRMS, input, weight, rows, channels, epsilon)
    }

    /// dx[N,C] += rstd·g − x·rstd³·mean(g·x), with g = dy·weight.
    public static func backward(inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                reciprocalRMS: UnsafePointer<Float>, rows: Int, channels: Int) {
        kt_rmsnorm_backward(inputGradient, outputGradient, input, weight, reciprocalRMS, rows, channels)
    }
}
