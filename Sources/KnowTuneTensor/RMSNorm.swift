// Implements RMSNorm forward/backward over rows (matches transformers `LlamaRMSNorm`: normalise in fp32,
// then scale by the weight); does not compute a weight gradient (the weight is frozen).
import Foundation

public enum RMSNorm {
    /// out[N,C] = x · rstd · weight; rstd[N] = 1/√(mean(x²) + ε) is saved for backward.
    public static func forward(output: UnsafeMutablePointer<Float>, reciprocalRMS: UnsafeMutablePointer<Float>?,
                               input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows: Int, channels: Int, epsilon: Float) {
        for row in 0..<rows {
            let x = input + row * channels
            let y = output + row * channels
            var sumOfSquares: Float = 0
            for i in 0..<channels { sumOfSquares += x[i] * x[i] }
            let rstd = 1 / (sumOfSquares / Float(channels) + epsilon).squareRoot()
            reciprocalRMS?[row] = rstd
            for i in 0..<channels { y[i] = (x[i] * rstd) * weight[i] }
        }
    }

    /// dx[N,C] += rstd·g − x·rstd³·mean(g·x), with g = dy·weight.
    public static func backward(inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                reciprocalRMS: UnsafePointer<Float>, rows: Int, channels: Int) {
        for row in 0..<rows {
            let x = input + row * channels
            let dy = outputGradient + row * channels
            let dx = inputGradient + row * channels
            let rstd = reciprocalRMS[row]
            var dot: Float = 0
            for i in 0..<channels { dot += dy[i] * weight[i] * x[i] }
            let coefficient = dot * rstd * rstd * rstd / Float(channels)
            for i in 0..<channels { dx[i] += dy[i] * weight[i] * rstd - x[i] * coefficient }
        }
    }
}
