// Implements the contract between the one training loop (Trainer) and a training objective (SFT, DPO, …): the
// objective owns its encoded data and activation buffers, runs forward + backward over the micro-batches the loop
// hands it, and says which sums to reduce and which metrics to log; the loop owns the step cadence, sharding,
// collectives, the optimizer, evaluation cadence, logs and checkpoints. Adding an objective is one file that
// conforms to this protocol plus its registration in TrainingWorkflow.
import KnowTuneModel

/// What a forward/backward pass works with: the frozen decoder, the LoRA parameters and their gradient buffer.
public struct PassContext {
    public let decoder: LlamaDecoder
    public let parameters: LoRABuffer
    public let gradients: LoRABuffer
}

/// How an objective's throughput is counted and named in logs ("tokens" per second, "pairs" per second).
public struct ThroughputUnit {
    /// Log keys `<name>_per_second` and `train_<name>_per_second`.
    public let name: String
    /// Log-line abbreviation ("tok/s").
    public let abbreviation: String
    /// Decimals kept in trainer_log.jsonl.
    public let decimals: Int
}

public protocol TrainingObjective: AnyObject {
    /// The stage name: state.h5's format is `knowtune-<stage>-1`, and the metrics carried over a checkpoint are
    /// stored as `<stage>_metrics_since_log`.
    var stage: String { get }

    /// How the start-of-training line names the run ("training", "DPO training") and its units ("examples").
    var title: String { get }
    var unitName: String { get }

    /// Token count of each training unit. A unit (an example, a preference pair, a group of pairs) stays whole on
    /// one rank and in one micro-batch; the loop fills micro-batches by these counts (and balances ranks by `workload`).
    var trainTokenCounts: [Int] { get }

    /// Training units that must stay together (shuffled as a block, one rank, one micro-batch), or nil.
    var trainUnitGroups: TrainingUnitGroups? { get }

    /// Tokens a micro-batch of these units runs (what ranks are balanced by and the token budget bounds); units that
    /// share sequences may run fewer than the sum of their counts.
    func tokenCount(ofUnits units: [Int]) -> Int

    /// The FLOPs a training pass over these units costs (PassWorkload): what ranks are balanced by.
    func workload(ofUnits units: [Int]) -> Double

    /// Token count of each validation unit (empty: the objective does not evaluate).
    var validationTokenCounts: [Int] { get }

    /// The longest sequence the objective will run (RoPE tables must cover it).
    var longestSequence: Int { get }

    var throughput: ThroughputUnit { get }

    /// What one training unit adds to the throughput count.
    func throughputAmount(ofUnit unit: Int) -> Int

    /// Per-step metrics, logged as their mean over the steps since the last log (TRL's convention), in this order.
    var metricNames: [String] { get }

    /// The metrics also shown on rank 0's log line.
    var metricsInLogLine: [String] { get }

    /// Starts optimizer step `step` over the global batch `batch` (training unit indices, every rank's): the
    /// objective records what normalises the loss over the whole batch (e.g. its target count).
    func beginStep(batch: [Int], step: Int)

    /// How many scalars `accumulate` returns (the loss and the metric sums).
    var scalarCount: Int { get }

    /// Forward + backward over `units` (training unit indices, one micro-batch of this rank), adding into
    /// `context.gradients`. Returns this micro-batch's scalars to sum over ranks: the loss contribution first (so
    /// that the sum over micro-batches and ranks is the step's loss), then the metric sums.
    func accumulate(units: [Int], context: PassContext) -> [Double]

    /// The step's metric values (metricNames order) from the scalars summed over every micro-batch and rank (the
    /// loss excluded).
    func metrics(fromReduced sums: [Double]) -> [Double]

    /// Negative log-likelihood sum and target count of validation `units` (no gradient, no dropout).
    func evaluate(units: [Int], context: PassContext) -> (negativeLogLikelihood: Double, targets: Double)

    /// A line for the start of training describing the objective ("loss sigmoid beta 0.1 ftx 0.2").
    var summary: String { get }

    /// Figures the objective adds to train_results.json.
    var finalMetrics: [String: Double] { get }
}

extension TrainingObjective {
    public var trainUnitGroups: TrainingUnitGroups? { nil }

    public func tokenCount(ofUnits units: [Int]) -> Int { units.reduce(0) { $0 + trainTokenCounts[$1] } }

    public func workload(ofUnits units: [Int]) -> Double { Double(tokenCount(ofUnits: units)) }
}
