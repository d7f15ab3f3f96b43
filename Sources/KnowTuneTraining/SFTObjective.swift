// Implements supervised fine-tuning as a training objective: the loss is the token mean of the response NLL over
// the whole global batch (every rank weighs its targets by 1/(the batch's target count), so the reduced sum is the
// global mean and N ranks reproduce 1 rank), with LoRA dropout masks keyed by (seed, step, example); `--train_on_prompt`
// puts the prompt tokens under the loss too. Evaluation is the global token-mean NLL of the validation examples.
// Does not run the loop (Trainer) or load data (TrainingWorkflow).
import KnowTuneData
import KnowTuneModel

public final class SFTObjective: TrainingObjective {
    let train: [EncodedExample]
    let validation: [EncodedExample]
    let trainOnPrompt: Bool
    let dropoutProbability: Float
    let seed: UInt64
    private let plan: ActivationPlan
    private let passWorkload: PassWorkload
    /// The current step's weight per target (1 / the global batch's target count) and dropout.
    private var targetWeight: Float = 1
    private var dropout: LoRADropout?

    public let title = "training"
    public let unitName = "examples"
    public let stage = "sft"
    public let trainTokenCounts: [Int]
    public let validationTokenCounts: [Int]
    public let longestSequence: Int
    public let throughput = ThroughputUnit(name: "tokens", abbreviation: "tok/s", decimals: 1)
    public let metricNames: [String] = []
    public let metricsInLogLine: [String] = []
    public let scalarCount = 1
    public let summary = ""
    public let finalMetrics: [String: Double] = [:]

    /// The activation plan's (tokens, longest sequence) for these examples.
    public static func planCapacity(arguments: TrainingArguments, train: [EncodedExample], validation: [EncodedExample])
        -> (tokens: Int, sequence: Int) {
        let longest = (train + validation).map(\.tokenCount).max() ?? 1
        return (max(arguments.training.tokenBudget, longest), longest)
    }

    public init(arguments: TrainingArguments, model: LlamaConfiguration, loraLayout: LoRALayout, train: [EncodedExample],
                validation: [EncodedExample], recomputesLayers: Bool = false) {
        self.train = train
        self.validation = validation
        trainOnPrompt = arguments.data.trainOnPrompt
        dropoutProbability = Float(arguments.finetuning.loraDropout)
        seed = UInt64(arguments.training.seed)
        trainTokenCounts = train.map(\.tokenCount)
        validationTokenCounts = validation.map(\.tokenCount)
        let capacity = Self.planCapacity(arguments: arguments, train: train, validation: validation)
        longestSequence = capacity.sequence
        passWorkload = PassWorkload(model)
        plan = ActivationPlan(model: model, loraLayout: loraLayout, tokenCapacity: capacity.tokens, sequenceCapacity: capacity.sequence,
                              recomputesLayers: recomputesLayers)
    }

    public func throughputAmount(ofUnit unit: Int) -> Int { trainTokenCounts[unit] }

    public func workload(ofUnits units: [Int]) -> Double {
        units.reduce(0) { sum, unit in
            let example = train[unit]
            return sum + passWorkload.flops(tokens: example.tokenCount, targets: targetCount(example),
                                            attentionPairs: PassWorkload.attentionPairs(rows: example.tokenCount))
        }
    }

    /// Appends `example` with its loss targets: the response, or with --train_on_prompt every token after the first.
    func pack(_ example: EncodedExample, into batch: inout PackedBatch, keyed: Bool) {
        let index = keyed ? example.index : nil
        if trainOnPrompt {
            let ids = example.prompt + example.response
            batch.append(ids: ids, labels: ids, exampleIndex: index)
        } else {
            batch.append(prompt: example.prompt, response: example.response, exampleIndex: index)
        }
    }

    func targetCount(_ example: EncodedExample) -> Int {
        trainOnPrompt ? example.tokenCount - 1 : example.response.count
    }

    public func beginStep(batch: [Int], step: Int) {
        targetWeight = 1 / Float(max(batch.reduce(0) { $0 + targetCount(train[$1]) }, 1))
        dropout = dropoutProbability > 0 ? LoRADropout(probability: dropoutProbability, seed: seed, step: step) : nil
    }

    public func accumulate(units: [Int], context: PassContext) -> [Double] {
        var packed = PackedBatch()
        // The dataset index keys dropout masks, so they do not depend on the rank layout.
        for unit in units { pack(train[unit], into: &packed, keyed: true) }
        let weights = [Float](repeating: targetWeight, count: packed.targetCount)
        let logProbabilities = context.decoder.forward(batch: packed, plan: plan, lora: context.parameters, dropout: dropout,
                                                       objective: HeadObjective(weights: weights))
        context.decoder.backward(batch: packed, plan: plan, lora: context.parameters, gradients: context.gradients, dropout: dropout)
        return [-logProbabilities.reduce(0.0) { $0 + Double($1) } * Double(targetWeight)]
    }

    public func metrics(fromReduced sums: [Double]) -> [Double] { [] }

    public func evaluate(units: [Int], context: PassContext) -> (negativeLogLikelihood: Double, targets: Double) {
        var packed = PackedBatch()
        for unit in units { pack(validation[unit], into: &packed, keyed: false) }
        let logProbabilities = context.decoder.forward(batch: packed, plan: plan, lora: context.parameters)
        return (-logProbabilities.reduce(0.0) { $0 + Double($1) }, Double(logProbabilities.count))
    }
}
