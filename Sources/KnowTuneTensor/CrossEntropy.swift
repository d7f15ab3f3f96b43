// Implements log-softmax cross-entropy over vocabulary rows: target log-probs and, in place, the logit gradient;
// does not reduce over rows (callers weight and sum). The exp passes run in CKnowTuneElementwise.
import CKnowTuneElementwise
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
            let maximum = kt_max(row, V)
            // Accumulated in Double: 49k terms in fp32 lose ~1e-6 relative, which matters for golden log-prob sums.
            let sum = kt_sum_exp_shifted(row, V, maximum)
            let lse = maximum + Float(log(sum))
            let target = Int(targets[r])
            logProbabilities[r] = row[target] - lse
            logSumExp?[r] = lse
            if let gradientWeights {
                let weight = gradientWeights[r]
                kt_scaled_exp_shifted(row, V, lse, weight)
                row[target] -= weight
            }
        }
    }

    /// Turns recomputed logits into the gradient using a saved log-sum-exp (for two-pass objectives such as DPO).
    public static func gradient(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                logSumExp: UnsafePointer<Float>, weights: UnsafePointer<Float>, rows: Int, vocabularySize V: Int) {
        for r in 0..<rows {
            let row = logits + r * V
            kt_scaled_exp_shifted(row, V, logSumExp[r], weights[r])
            row[Int(targets[r])] -= weights[r]
        }
    }
}
