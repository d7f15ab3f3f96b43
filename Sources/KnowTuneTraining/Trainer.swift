// Implements the one training loop every objective runs through (HF `_inner_training_loop` + accelerate's
// `clip_grad_norm_`), data-parallel: each rank takes its work-balanced shard of every global batch, the objective
// runs forward + backward over the shard's micro-batches, one block of scalars and one fused gradient buffer are
// all-reduced, then clipping and AdamW. The loop also owns the evaluation cadence and best-model tracking, logging
// (as typed events), checkpoints, the SIGTERM/SIGUSR1 stop, fault-injection hooks, resume and the final export.
// Loss and gradients are global means, so N ranks reproduce 1 rank. Does not compute a loss (the objective does),
// parse flags or load models.
import Foundation
import KnowTuneCheckpoint
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

/// The per-step numbers every rank agrees on.
public struct StepResult {
    public var loss: Double
    public var gradientNorm: Double
    public var learningRate: Double
    public var stopRequested: Bool
    /// The objective's metrics of this step (its metricNames order).
    public var metrics: [Double]
}

public final class Trainer {
    let objective: any TrainingObjective
    let arguments: TrainingArguments
    let communicator: any Communicator
    let logger: RankLogger
    let model: LoadedModel
    let context: PassContext
    let optimizer: AdamW
    let schedule: LearningRateSchedule
    let steps: StepPlan
    /// Rank 0 only.
    let log: TrainingLog?
    private(set) var state: TrainerState
    private var consumers: [any TrainingEventConsumer] = []
    /// Wall time inside the per-step all-reduces (waiting for slower ranks included) and the steps it covers.
    private var allReduceTime: (seconds: Double, steps: Int) = (0, 0)

    public var globalStep: Int { state.globalStep }
    var parameters: LoRABuffer { context.parameters }
    var gradients: LoRABuffer { context.gradients }
    var checkpointFormat: String { "knowtune-\(objective.stage)-1" }
    var metricsCheckpointName: String { "\(objective.stage)_metrics_since_log" }

    public init(objective: any TrainingObjective, arguments: TrainingArguments, communicator: any Communicator,
                logger: RankLogger, model: LoadedModel, lora: LoRABuffer) throws {
        self.objective = objective
        self.arguments = arguments
        self.communicator = communicator
        self.logger = logger
        self.model = model
        let decoder = LlamaDecoder(weights: model.weights,
                                   maxPositions: Self.positions(arguments, model: model.configuration, longest: objective.longestSequence))
        context = PassContext(decoder: decoder, parameters: lora, gradients: LoRABuffer(layout: lora.layout))
        optimizer = AdamW(layout: lora.layout, configuration: AdamWConfiguration(
            beta1: Float(arguments.training.adamBeta1), beta2: Float(arguments.training.adamBeta2), epsilon: Float(arguments.training.adamEpsilon),
            weightDecay: Float(arguments.training.weightDecay)))
        steps = try StepPlan(arguments: arguments, trainCount: objective.trainTokenCounts.count, worldSize: communicator.size)
        schedule = try LearningRateSchedule(kind: arguments.training.lrSchedulerType.rawValue, baseRate: arguments.training.learningRate,
                                            totalSteps: steps.maxSteps, warmupSteps: arguments.training.warmupSteps,
                                            warmupRatio: arguments.training.warmupRatio)
        state = TrainerState(metricCount: objective.metricNames.count)
        log = communicator.isMainRank ? TrainingLog(outputDirectory: arguments.training.outputDir) : nil
        consumers = [ProgressBar(total: steps.maxSteps, isMainRank: communicator.isMainRank), TrainingLogLines(logger: logger)]
        if let log {
            consumers.append(log)
            if arguments.finetuning.plotLoss { consumers.append(LossPlotter(log: log, logger: logger, loggingSteps: steps.loggingSteps)) }
        }
    }

    /// RoPE tables cover the cutoff, the model's own range, and any longer sequence the objective has (DPO's
    /// prompt + rejected can pass the cutoff: each answer is truncated against the prompt on its own).
    static func positions(_ arguments: TrainingArguments, model: LlamaConfiguration, longest: Int) -> Int {
        max(arguments.data.cutoffLength + 1, model.maxPositionEmbeddings, longest)
    }

    /// Continues from a checkpoint folder written by a run of the same objective.
    public func restore(from folder: String) throws {
        state = try TrainerCheckpoint.restore(self, from: folder)
    }

    func emit(_ event: TrainingEvent) throws {
        for consumer in consumers { try consumer.handle(event) }
    }

    // MARK: - One optimizer step

    /// Forward/backward of this rank's shard of `batch` (training unit indices), the all-reduce, clipping and AdamW.
    func trainStep(_ batch: [Int], step: Int) throws -> StepResult {
        communicator.step = step
        // A cluster (a unit, or the units of one group in this batch) stays whole on one rank and in one micro-batch.
        let clusters = objective.trainUnitGroups?.clusters(of: batch) ?? batch.indices.map { [$0] }
        let clusterUnits = clusters.map { $0.map { batch[$0] } }
        let tokenCounts = clusterUnits.map { objective.tokenCount(ofUnits: $0) }
        let mine = BatchSharder.shard(costs: clusterUnits.map { objective.workload(ofUnits: $0) }, rankCount: communicator.size)[communicator.rank]
        objective.beginStep(batch: batch, step: step)
        gradients.zero()
        // Every rank reduces a block of the same length, also a rank whose shard is empty.
        var sums = [Double](repeating: 0, count: objective.scalarCount)
        for micro in BatchSharder.microBatches(mine, tokenCounts: tokenCounts, budget: arguments.training.tokenBudget) {
            let scalars = objective.accumulate(units: micro.flatMap { clusterUnits[$0] }, context: context)
            precondition(scalars.count == sums.count, "an objective returns scalarCount scalars")
            for (i, value) in scalars.enumerated() { sums[i] += value }
        }
        return try update(scalars: sums, step: step)
    }

    /// Finishes optimizer step `step` once this rank's share of the gradient is in `gradients`: all-reduces
    /// `scalars` (the loss first) with the stop flag, then the gradient buffer; checks both are finite, clips to
    /// `max_grad_norm` and steps AdamW.
    private func update(scalars local: [Double], step: Int) throws -> StepResult {
        var scalars = local + [StopSignal.isRequested ? 1 : 0]
        let reduceStart = DispatchTime.now().uptimeNanoseconds
        try communicator.allReduceSum(&scalars, operation: "step-scalars")
        try communicator.allReduceSum(gradients.values, count: gradients.count, operation: "gradients")
        allReduceTime.seconds += Double(DispatchTime.now().uptimeNanoseconds - reduceStart) / 1e9
        allReduceTime.steps += 1
        guard scalars[0].isFinite else {
            throw agreed(.numerical("training loss is \(scalars[0]) at step \(step); lower --learning_rate or check the data and adapter"))
        }
        let norm = gradients.sumOfSquares().squareRoot()
        guard norm.isFinite else { throw agreed(.numerical("gradient norm is \(norm) at step \(step)")) }
        if arguments.training.maxGradNorm > 0 {
            // torch `clip_grad_norm_`: scale by max_norm/(norm + 1e-6) when that is below 1.
            let coefficient = arguments.training.maxGradNorm / (norm + 1e-6)
            if coefficient < 1 {
                let c = Float(coefficient)
                for i in 0..<gradients.count { gradients.values[i] *= c }
            }
        }
        let rate = schedule.rate(forStep: step)
        optimizer.step(parameters: parameters, gradients: gradients, learningRate: Float(rate))
        let stop = scalars.removeLast() > 0
        let metrics = objective.metricNames.isEmpty ? [] : objective.metrics(fromReduced: Array(scalars.dropFirst()))
        return StepResult(loss: scalars[0], gradientNorm: norm, learningRate: rate, stopRequested: stop, metrics: metrics)
    }

    /// An error every rank raises identically from all-reduced values: reported once, by rank 0.
    func agreed(_ error: KnowTuneError) -> AgreedFailure {
        AgreedFailure(rank: 0, hostname: communicator.hostname, failingRanks: Array(0..<communicator.size),
                      worldSize: communicator.size, message: error.description, localError: error)
    }

    // MARK: - Evaluation

    /// The objective's global token-mean NLL over its validation units (sharded by tokens over all ranks).
    func evaluate(label: String) throws -> (loss: Double, seconds: Double) {
        let started = Date()
        let tokenCounts = objective.validationTokenCounts
        let mine = BatchSharder.shard(tokenCounts: tokenCounts, rankCount: communicator.size)[communicator.rank]
        var sums = [0.0, 0.0]
        for micro in BatchSharder.microBatches(mine, tokenCounts: tokenCounts, budget: arguments.training.tokenBudget) {
            let (nll, targets) = objective.evaluate(units: micro, context: context)
            sums[0] += nll
            sums[1] += targets
        }
        try communicator.allReduceSum(&sums, operation: label)
        return (sums[0] / max(sums[1], 1), Date().timeIntervalSince(started))
    }

    private func evaluationLog(step: Int, loss: Double, seconds: Double, isFinal: Bool) -> EvaluationLog {
        EvaluationLog(step: step, maxSteps: steps.maxSteps, epoch: steps.epoch(afterStep: step), loss: loss, seconds: seconds,
                      samples: objective.validationTokenCounts.count,
                      evalBatchSize: arguments.training.perDeviceEvalBatchSize * communicator.size, isFinal: isFinal)
    }

    /// The post-training (or `--do_eval`-only) evaluation: eval_results.json with loss and perplexity.
    public func writeEvaluation() throws {
        let (loss, seconds) = try evaluate(label: "final-eval-loss")
        try agreeOnMainRankWork { try emit(.evaluated(evaluationLog(step: globalStep, loss: loss, seconds: seconds, isFinal: true))) }
    }

    // MARK: - The loop

    public func run() throws {
        let startStep = globalStep
        let validation = objective.validationTokenCounts.isEmpty ? "" : ", \(objective.validationTokenCounts.count) validation"
        try emit(.started(summary: "\(objective.title): \(objective.trainTokenCounts.count) \(objective.unitName)\(validation), "
            + "global batch \(steps.globalBatchSize), \(steps.maxSteps) steps (\(steps.stepsPerEpoch)/epoch), "
            + "eval every \(steps.evalSteps.map(String.init) ?? "-"), save every \(steps.saveSteps == Int.max ? "-" : String(steps.saveSteps)), "
            + "lr \(arguments.training.learningRate) \(arguments.training.lrSchedulerType.rawValue)\(objective.summary.isEmpty ? "" : ", " + objective.summary)"))
        var stepsThisRun = 0
        var throughputThisRun = 0
        let started = Date()
        let faults = TrainingFaultInjection()
        let evaluates = !objective.validationTokenCounts.isEmpty
        for step in (startStep + 1)...max(startStep + 1, steps.maxSteps) where step <= steps.maxSteps {
            faults.beforeStep(step, rank: communicator.rank)
            let batch = steps.batch(forStep: step, trainCount: objective.trainTokenCounts.count, seed: arguments.training.seed,
                                    groups: objective.trainUnitGroups)
            let result = try trainStep(batch, step: step)
            state.record(step: step, loss: result.loss, metrics: result.metrics)
            stepsThisRun += 1
            throughputThisRun += batch.reduce(0) { $0 + objective.throughputAmount(ofUnit: $1) }
            let throughput = Double(throughputThisRun) / max(Date().timeIntervalSince(started), 1e-9)
            let epoch = steps.epoch(afterStep: step)
            try emit(.stepFinished(step: step, maxSteps: steps.maxSteps, loss: result.loss,
                                   learningRate: schedule.loggedRate(afterStep: step), throughput: throughput, unit: objective.throughput))
            if step % steps.loggingSteps == 0 {
                let metrics = state.takeLoggedMetrics()
                try emit(.stepLogged(StepLog(step: step, maxSteps: steps.maxSteps, epoch: epoch, loss: state.takeLoggedLoss(),
                                             gradientNorm: result.gradientNorm, learningRate: schedule.loggedRate(afterStep: step),
                                             throughput: throughput, unit: objective.throughput,
                                             metrics: Array(zip(objective.metricNames, metrics)).map { (name: $0.0, value: $0.1) },
                                             metricsInLogLine: objective.metricsInLogLine)))
            }
            if evaluates, let evalSteps = steps.evalSteps, step % evalSteps == 0 {
                let (loss, seconds) = try evaluate(label: "eval-loss")
                try emit(.evaluated(evaluationLog(step: step, loss: loss, seconds: seconds, isFinal: false)))
                // Every rank holds the same reduced eval loss, so every rank tracks the same best without a broadcast.
                state.offerBest(metric: loss, step: step, parameters: parameters.array, greaterIsBetter: arguments.training.greaterIsBetter ?? false)
            }
            if step % steps.saveSteps == 0 || result.stopRequested {
                try saveCheckpoint(step: step, epoch: epoch)
            }
            if result.stopRequested {
                try emit(.stopped(step: step))
                throw TrainingStopped(step: step)
            }
        }
        try finish(runtime: Date().timeIntervalSince(started), stepsThisRun: stepsThisRun, throughputThisRun: throughputThisRun)
    }

    private func finish(runtime: Double, stepsThisRun: Int, throughputThisRun: Int) throws {
        if arguments.training.loadBestModelAtEnd, let best = state.bestParameters, let bestStep = state.bestStep {
            best.withUnsafeBufferPointer { parameters.values.update(from: $0.baseAddress!, count: $0.count) }
            try emit(.bestRestored(step: bestStep, metricName: arguments.training.metricForBestModel?.rawValue ?? "eval_loss", value: state.bestMetric ?? .nan))
        }
        var peaks = [Self.peakResidentMiB(), 1000 * allReduceTime.seconds / Double(max(allReduceTime.steps, 1))]
        try communicator.allReduceMax(&peaks, operation: "peak-rss")
        let epoch = steps.epoch(afterStep: globalStep)
        var metrics: [String: Double] = [
            "epoch": epoch, "total_flos": 0,
            "train_loss": state.trainLossTotal / Double(max(globalStep, 1)), "train_runtime": (runtime * 10000).rounded() / 10000,
            "train_samples_per_second": Double(objective.trainTokenCounts.count) * arguments.training.numTrainEpochs / max(runtime, 1e-9),
            "train_steps_per_second": Double(stepsThisRun) / max(runtime, 1e-9),
            "train_peak_rss_mib": peaks[0],  // the largest of any rank
            "train_allreduce_ms_per_step": (peaks[1] * 1000).rounded() / 1000,  // the slowest rank's mean
            // Real (unpadded) tokens, or pairs: the figure the benchmarks compare.
            "train_\(objective.throughput.name)_per_second": Double(throughputThisRun) / max(runtime, 1e-9),
        ]
        metrics.merge(objective.finalMetrics) { _, new in new }
        // TRL's `log` adds the metrics stored since the last log to whatever it logs next: the train summary.
        metrics.merge(zip(objective.metricNames, state.takeLoggedMetrics()).map { ($0, $1) }) { _, new in new }
        try agreeOnMainRankWork {
            try PEFTAdapter.save(parameters, to: arguments.training.outputDir, baseModel: arguments.model.modelNameOrPath)
            try emit(.finished(step: globalStep, epoch: epoch, maxSteps: steps.maxSteps, metrics: metrics))
            try writeState(to: arguments.training.outputDir, step: globalStep, epoch: epoch)
        }
        if arguments.training.doEval, !objective.validationTokenCounts.isEmpty { try writeEvaluation() }
        try agreeOnMainRankWork { try emit(.ended) }
    }

    // MARK: - Checkpoints

    func checkpointFolder(_ step: Int) -> String {
        (arguments.training.outputDir as NSString).appendingPathComponent(CheckpointStore.folderName(step: step))
    }

    /// Writes `checkpoint-<step>` (adapter, state.h5, trainer_state.json) on rank 0 as one unit: into
    /// `checkpoint-<step>.tmp/`, fsynced, then renamed; every rank learns whether it worked.
    func saveCheckpoint(step: Int, epoch: Double) throws {
        let folder = checkpointFolder(step)
        let temporary = (arguments.training.outputDir as NSString).appendingPathComponent(CheckpointStore.temporaryFolderName(step: step))
        try agreeOnMainRankWork {
            let fault = try TrainingFaultInjection().checkpointFault(step: step)
            // A folder left by an interrupted save of the same step is incomplete by definition.
            if FileManager.default.fileExists(atPath: temporary) { try FileManager.default.removeItem(atPath: temporary) }
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            try PEFTAdapter.save(parameters, to: temporary, baseModel: arguments.model.modelNameOrPath)
            fault.partWritten(.adapter)
            try TrainerCheckpoint.write(self, step: step, to: temporary, store: CheckpointStore(faultInjection: fault))
            fault.partWritten(.state)
            try writeState(to: temporary, step: step, epoch: epoch)
            fault.partWritten(.trainerState)
            try CheckpointStore.publishFolder(temporary, as: folder)
            try pruneCheckpoints()
            try emit(.checkpointSaved(step: step, folder: folder))
        }
    }

    /// Runs `work` on rank 0; every rank waits for it and learns whether it worked (one clear error, every rank exits).
    private func agreeOnMainRankWork(_ work: () throws -> Void) throws {
        var failure: Error?
        if communicator.isMainRank {
            do { try work() } catch { failure = error }
        }
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator)
    }

    func writeState(to folder: String, step: Int, epoch: Double) throws {
        try log?.writeState(to: folder, globalStep: step, maxSteps: steps.maxSteps, epoch: epoch, bestMetric: state.bestMetric,
                            bestCheckpoint: state.bestStep.map(checkpointFolder), loggingSteps: Double(steps.loggingSteps),
                            evalSteps: steps.evalSteps, saveSteps: steps.saveSteps,
                            trainBatchSize: arguments.training.perDeviceTrainBatchSize, numTrainEpochs: arguments.training.numTrainEpochs)
    }

    /// `save_total_limit`: keep the newest N checkpoints, and always the best.
    func pruneCheckpoints() throws {
        guard let limit = arguments.training.saveTotalLimit, limit > 0 else { return }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: arguments.training.outputDir)) ?? []
        let stepsOnDisk = entries.compactMap(CheckpointStore.step(ofFolderName:)).sorted()
        let keep = Set(stepsOnDisk.suffix(limit) + (state.bestStep.map { [$0] } ?? []))
        for step in stepsOnDisk where !keep.contains(step) {
            try? FileManager.default.removeItem(atPath: checkpointFolder(step))
        }
    }

    /// Peak resident set size of this process (ru_maxrss, KiB on Linux) in MiB.
    static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

/// Thrown after a requested stop has been checkpointed: the CLI exits 0.
public struct TrainingStopped: Error {
    public let step: Int
}
