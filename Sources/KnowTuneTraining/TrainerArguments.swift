// Implements the trainer argument group (HF `Seq2SeqTrainingArguments` as LLaMA-Factory 0.5.3 uses them) plus
// KnowTune's own run settings (token budget, collective timeout, logging ranks); holds defaults only.
public struct TrainerArguments: Codable, Equatable {
    public var outputDir = ""
    public var overwriteOutputDir = false
    public var doTrain = false
    public var doEval = false
    public var doPredict = false
    public var perDeviceTrainBatchSize = 8
    public var perDeviceEvalBatchSize = 8
    public var gradientAccumulationSteps = 1
    public var learningRate = 5e-5
    public var weightDecay = 0.0
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var maxGradNorm = 1.0
    public var numTrainEpochs = 3.0
    public var maxSteps = -1
    public var lrSchedulerType = LearningRateSchedule.Kind.linear
    public var warmupRatio = 0.0
    public var warmupSteps = 0
    public var loggingSteps = 500.0
    public var evaluationStrategy = IntervalStrategy.no
    public var evalSteps: Double?
    public var saveStrategy = IntervalStrategy.steps
    public var saveSteps = 500.0
    public var saveTotalLimit: Int?
    public var seed = 42
    public var loadBestModelAtEnd = false
    public var metricForBestModel: BestModelMetric?
    public var greaterIsBetter: Bool?
    public var resumeFromCheckpoint: String?
    public var predictWithGenerate = false
    /// HF's flag; nil: on only when the saved activations would not fit the node (ActivationRecomputation).
    public var gradientCheckpointing: Bool?

    // KnowTune's own.
    /// Most tokens one forward/backward holds (activation memory); larger batches run as micro-batches.
    public var tokenBudget = 1024
    public var collectiveTimeout = 1800.0
    public var logAllRanks = false

    public init() {}
}
