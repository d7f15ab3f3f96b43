// Implements the closed sets of `knowtune train`'s arguments as enums (stage, evaluation/save strategy, the metric for
// the best model); the parser accepts exactly their raw values. Other closed sets live with what they configure:
// LearningRateSchedule.Kind, DPOLoss.LossKind, BasePrecision, ChatTemplate.Kind, FinetuningType. Does not parse or
// validate combinations.
import KnowTuneData
import KnowTuneTensor

/// An argument whose values are a fixed list of names.
public protocol ArgumentChoice: RawRepresentable, CaseIterable, Codable, Equatable where RawValue == String {}

public enum TrainingStage: String, ArgumentChoice {
    case sft, dpo
}

/// HF's `IntervalStrategy`, for `evaluation_strategy` and `save_strategy`.
public enum IntervalStrategy: String, ArgumentChoice {
    case no, steps, epoch
}

/// The metrics KnowTune computes at evaluation, each with HF's direction (lower loss is better).
public enum BestModelMetric: String, ArgumentChoice {
    case loss
    case evalLoss = "eval_loss"

    public var greaterIsBetter: Bool { false }
}

extension LearningRateSchedule.Kind: ArgumentChoice {}
extension DPOLoss.LossKind: ArgumentChoice {}
extension BasePrecision: ArgumentChoice {}
extension ChatTemplate.Kind: ArgumentChoice {}
