// Implements log-softmax cross-entropy over vocabulary rows: target log-probs and, in place, the logit gradient;
// does not reduce over rows (callers weight and sum).
import Foundation

public enum CrossEntropy {
    /// For each row r with target t_r: writes logProbabilities[r] = logits[r,t] − logsumexp(logits[r]) and
    /// logSumExp[r]. When `gradientWeights` is given, overwrites logits[r] with weight_r·(softmax − onehot(t)),
    /// the gradient of Σ_r weight_r·(−log p_r).
    public static func forward(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int,
                               vocabularySize V: Int, logProbabilities: UnsafeMutablePointer<Float>,
                               logSumExp: UnsafeMutablePointer<Float>?, gradientWeights: UnsafePointer<Float>?) {
        for r in 0..<rows {
            let row = logits + r * V
            var maximum = -Float.infinity
            for j in 0..<V where row[j] > maximum { maximum = row[j] }
            // Accumulate in Double: 49k terms in fp32 lose ~1e-6 relative, which matters for golden log-prob sums.
            var sum: Double = 0
            for j in 0..<V { sum += Double(expf(row[j] - maximum)) }
            let lse = maximum + Float(log(sum))
            let target = Int(targets[r])
            logProbabilities[r] = row[target] - lse
            logSumExp?[r] = lse
            if let gradientWeights {
                let weight = gradientWeights[r]
                for j in 0..<V { row[j] = weight * expf(row[j] - lse) }
                row[target] -= weight
            }
        }
    }

    /// Turns recomputed logits into the gradient using a saved log-sum-exp (for two-pass objectives such as DPO).
    public static func gradient(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                logSumExp: UnsafePointer<Float>, weights: UnsafePointer<Float>, rows: Int, vocabularySize V: Int) {
        for r in 0..<rows {
            let row = logits + r * V
            let weight = weights[r]
            let lse = logSumExp[r]
            for j in 0..<V { row[j] = weight * expf(row[j] - lse) }
            row[Int(targets[r])] -= weight
        }
    }
}
