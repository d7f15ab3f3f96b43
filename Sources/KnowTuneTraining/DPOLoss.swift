// Implements the DPO loss of one preference pair from its four sequence log-probabilities, with the derivatives
// the trainer turns into per-token weights: TRL 0.7.11 `DPOTrainer.dpo_loss` (sigmoid with label smoothing 0,
// hinge, ipo) plus LLaMA-Factory 0.5.3's `dpo_ftx` term (`CustomDPOTrainer.get_batch_loss_metrics`); does not run
// the model or average over a batch (DPOObjective does).
//
// Notation: πc, πr = policy log-probs of the chosen / rejected answer (sums over answer tokens, EOS included; LF053
// overrides `concatenated_forward` with `average_log_prob=False` for every loss type); rc, rr = the reference's;
// z = (πc − πr) − (rc − rr); n = chosen answer length.
//   sigmoid: ℓ = −log σ(βz)          ∂ℓ/∂z = −β·σ(−βz)
//   hinge:   ℓ = max(0, 1 − βz)      ∂ℓ/∂z = −β where 1 − βz > 0, else 0 (torch's relu has gradient 0 at 0)
//   ipo:     ℓ = (z − 1/(2β))²       ∂ℓ/∂z = 2(z − 1/(2β))
//   ftx γ:   + γ·(−πc/n), the token-mean NLL of the chosen answer (LF053 `sft_loss`, average_log_prob=True)
// Rewards (detached): β(πc − rc) and β(πr − rr).
import Foundation
import KnowTuneTensor

public struct DPOLoss: Equatable {
    public enum LossKind: String, CaseIterable {
        case sigmoid, hinge, ipo
    }

    public let kind: LossKind
    /// β (`--dpo_beta`).
    public let beta: Double
    /// γ (`--dpo_ftx`); LF053 adds the SFT term only when γ > 1e-6.
    public let ftx: Double

    public init(kind: LossKind, beta: Double, ftx: Double = 0) {
        self.kind = kind
        self.beta = beta
        self.ftx = ftx
    }

    public init(arguments: TrainingArguments) throws {
        guard arguments.finetuning.dpoBeta > 0 else { throw KnowTuneError.invalidConfiguration("--dpo_beta must be positive") }
        self.init(kind: arguments.finetuning.dpoLoss, beta: arguments.finetuning.dpoBeta, ftx: arguments.finetuning.dpoFTX)
    }

    /// The four log-probabilities of one pair (and the chosen answer's length, for the SFT term).
    public struct Pair: Equatable {
        public var policyChosen, policyRejected: Double
        public var referenceChosen, referenceRejected: Double
        public var chosenLength: Int

        public init(policyChosen: Double, policyRejected: Double, referenceChosen: Double, referenceRejected: Double, chosenLength: Int) {
            self.policyChosen = policyChosen
            self.policyRejected = policyRejected
            self.referenceChosen = referenceChosen
            self.referenceRejected = referenceRejected
            self.chosenLength = chosenLength
        }
    }

    /// One pair's loss, its parts and its derivatives.
    public struct Terms: Equatable {
        /// z = (πc − πr) − (rc − rr).
        public var logits: Double
        /// ℓ(z), the preference part.
        public var preferenceLoss: Double
        /// −πc/n (reported whether or not γ is on).
        public var sftLoss: Double
        /// ℓ + γ·sftLoss when γ > 1e-6, else ℓ.
        public var loss: Double
        public var chosenReward: Double
        public var rejectedReward: Double
        /// ∂loss/∂πc and ∂loss/∂πr.
        public var gradientChosen: Double
        public var gradientRejected: Double
    }

    public var usesSFTTerm: Bool { ftx > 1e-6 }

    public func terms(_ pair: Pair) -> Terms {
        let z = (pair.policyChosen - pair.policyRejected) - (pair.referenceChosen - pair.referenceRejected)
        let loss: Double
        let slope: Double
        switch kind {
        case .sigmoid:
            // −log σ(x) = softplus(−x), written to stay finite for large |x|.
            let x = beta * z
            loss = max(-x, 0) + log1p(exp(-abs(x)))
            slope = -beta * Self.sigmoid(-x)
        case .hinge:
            let margin = 1 - beta * z
            loss = max(0, margin)
            slope = margin > 0 ? -beta : 0
        case .ipo:
            let offset = z - 1 / (2 * beta)
            loss = offset * offset
            slope = 2 * offset
        }
        let length = Double(max(pair.chosenLength, 1))
        let sft = -pair.policyChosen / length
        let total = usesSFTTerm ? loss + ftx * sft : loss
        return Terms(logits: z, preferenceLoss: loss, sftLoss: sft, loss: total,
                     chosenReward: beta * (pair.policyChosen - pair.referenceChosen),
                     rejectedReward: beta * (pair.policyRejected - pair.referenceRejected),
                     gradientChosen: slope - (usesSFTTerm ? ftx / length : 0), gradientRejected: -slope)
    }

    static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }
}

/// The per-step DPO metrics (TRL's names), kept as sums over pairs so that ranks add them and divide once.
public struct DPOMetricSums: Equatable {
    public var chosenReward = 0.0
    public var rejectedReward = 0.0
    public var accuracy = 0.0
    public var margin = 0.0
    public var policyChosen = 0.0
    public var policyRejected = 0.0
    public var pairs = 0.0

    public init() {}

    public mutating func add(_ terms: DPOLoss.Terms, policyChosen: Double, policyRejected: Double) {
        chosenReward += terms.chosenReward
        rejectedReward += terms.rejectedReward
        // TRL: (chosen_rewards > rejected_rewards).float(), strict.
        accuracy += terms.chosenReward > terms.rejectedReward ? 1 : 0
        margin += terms.chosenReward - terms.rejectedReward
        self.policyChosen += policyChosen
        self.policyRejected += policyRejected
        pairs += 1
    }

    /// The values in a fixed order, for all-reduces and checkpoints.
    public var array: [Double] { [chosenReward, rejectedReward, accuracy, margin, policyChosen, policyRejected, pairs] }

    public init(array values: [Double]) {
        precondition(values.count == 7, "DPO metric sums have 7 values")
        (chosenReward, rejectedReward, accuracy, margin) = (values[0], values[1], values[2], values[3])
        (policyChosen, policyRejected, pairs) = (values[4], values[5], values[6])
    }

    /// The per-pair means under TRL's keys.
    public var means: [String: Double] {
        let n = max(pairs, 1)
        return [
            "rewards/chosen": chosenReward / n, "rewards/rejected": rejectedReward / n,
            "rewards/accuracies": accuracy / n, "rewards/margins": margin / n,
            "logps/chosen": policyChosen / n, "logps/rejected": policyRejected / n,
        ]
    }
}
