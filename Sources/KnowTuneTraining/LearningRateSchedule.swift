// Implements HF's learning-rate schedules with warmup (`get_linear/cosine/constant_schedule_with_warmup`), as the
// multiplier λ(k) of the base rate after k optimizer steps; does not step an optimizer.
import Foundation
import KnowTuneTensor

public struct LearningRateSchedule: Equatable {
    public enum Kind: String, CaseIterable, Codable { case linear, cosine, constant, constantWithWarmup = "constant_with_warmup" }

    public let kind: Kind
    public let baseRate: Double
    public let totalSteps: Int
    public let warmupSteps: Int

    /// `warmup_steps` wins over `warmup_ratio` (HF `get_warmup_steps`: ceil(ratio · total)).
    public init(kind: String, baseRate: Double, totalSteps: Int, warmupSteps: Int, warmupRatio: Double) throws {
        guard let kind = Kind(rawValue: kind) else {
            throw KnowTuneError.unsupported(what: "lr_scheduler_type \(kind)", supported: "linear, cosine, constant, constant_with_warmup")
        }
        self.kind = kind
        self.baseRate = baseRate
        self.totalSteps = totalSteps
        self.warmupSteps = warmupSteps > 0 ? warmupSteps : Int((warmupRatio * Double(totalSteps)).rounded(.up))
    }

    /// λ(k) for k optimizer steps taken.
    public func multiplier(afterSteps k: Int) -> Double {
        if kind == .constant { return 1 }
        if k < warmupSteps { return Double(k) / Double(max(1, warmupSteps)) }
        switch kind {
        case .constant, .constantWithWarmup: return 1
        case .linear:
            return max(0, Double(totalSteps - k) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(k - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + cos(Double.pi * 2 * 0.5 * progress)))
        }
    }

    /// The rate used by optimizer step `step` (1-based): η·λ(step − 1).
    public func rate(forStep step: Int) -> Double { baseRate * multiplier(afterSteps: step - 1) }

    /// The rate HF logs after step `step`: the one the next step will use, η·λ(step).
    public func loggedRate(afterStep step: Int) -> Double { baseRate * multiplier(afterSteps: step) }
}
