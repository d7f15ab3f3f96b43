// Implements supervised LoRA fine-tuning, data-parallel: every rank holds the frozen base and the LoRA factors,
// runs its token-balanced shard of each global batch, and all-reduces one fused gradient buffer before AdamW;
// rank 0 writes logs and checkpoints. Loss and gradients are the global token mean, so N ranks reproduce 1 rank.
// Does not parse flags, load models or launch processes.
import Foundation
import KnowTuneCheckpoint
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

/// The per-step numbers every rank agrees on.
struct StepResult {
    var loss: Double
    var gradientNorm: Double
    var learningRate: Double
    var stopRequested: Bool
}

public final class SFTTrainer {
    public let arguments: TrainingArguments
    let communicator: any Communicator
    let logger: RankLogger
    let model: LoadedModel
    let decoder: LlamaDecoder
    let train: [EncodedExample]
    let validation: [EncodedExample]
    let parameters: LoRABuffer
    let gradients: LoRABuffer
    let optimizer: AdamW
    let schedule: LearningRateSchedule
    let steps: StepPlan
    private var plan: ActivationPlan
    /// Rank 0 only.
    let log: TrainingLog?

    var globalStep = 0
    var bestMetric: Double?
    var bestStep: Int?
    var bestParameters: [Float]?
    var lossSinceLog: (sum: Double, count: Int) = (0, 0)
    var trainLossTotal = 0.0

    public init(arguments: TrainingArguments, communicator: any Communicator, logger: RankLogger, model: LoadedModel,
                lora: LoRABuffer, train: [EncodedExample], validation: [EncodedExample]) throws {
        self.arguments = arguments
        self.communicator = communicator
        self.logger = logger
        self.model = model
        decoder = LlamaDecoder(weights: model.weights, maxPositions: max(arguments.cutoffLength + 1, model.configuration.maxPositionEmbeddings))
        self.train = train
        self.validation = validation
        parameters = lora
        gradients = LoRABuffer(layout: lora.layout)
        optimizer = AdamW(layout: lora.layout, configuration: AdamWConfiguration(
            beta1: Float(arguments.adamBeta1), beta2: Float(arguments.adamBeta2), epsilon: Float(arguments.adamEpsilon),
            weightDecay: Float(arguments.weightDecay)))
        steps = try StepPlan(arguments: arguments, trainCount: train.count, worldSize: communicator.size)
        schedule = try LearningRateSchedule(kind: arguments.lrSchedulerType, baseRate: arguments.learningRate,
                                            totalSteps: steps.maxSteps, warmupSteps: arguments.warmupSteps,
                                            warmupRatio: arguments.warmupRatio)
        let longest = (train + validation).map(\.tokenCount).max() ?? 1
        plan = ActivationPlan(model: model.configuration, loraLayout: lora.layout,
                              tokenCapacity: max(arguments.tokenBudget, longest), sequenceCapacity: longest)
        log = communicator.isMainRank ? TrainingLog(outputDirectory: arguments.outputDir) : nil
    }

    // MARK: - One optimizer step

    /// Forward/backward of this rank's shard of `batch` (indices into `train`), the all-reduce, clipping and AdamW.
    func trainStep(_ batch: [Int], step: Int) throws -> StepResult {
        communicator.step = step
        let examples = batch.map { train[$0] }
        let tokenCounts = examples.map(\.tokenCount)
        let globalTargets = examples.reduce(0) { $0 + $1.response.count }
        let mine = BatchSharder.shard(tokenCounts: tokenCounts, rankCount: communicator.size)[communicator.rank]
        let weight = 1 / Float(max(globalTargets, 1))
        let dropout = arguments.loraDropout > 0
            ? LoRADropout(probability: Float(arguments.loraDropout), seed: UInt64(arguments.seed), step: step) : nil
        gradients.zero()
        var lossSum = 0.0
        for micro in BatchSharder.microBatches(mine, tokenCounts: tokenCounts, budget: arguments.tokenBudget) {
            var packed = PackedBatch()
            for index in micro {
                // The dataset index keys dropout masks, so they do not depend on the rank layout.
                packed.append(prompt: examples[index].prompt, response: examples[index].response, exampleIndex: examples[index].index)
            }
            let weights = [Float](repeating: weight, count: packed.targetCount)
            let logProbabilities = decoder.forward(batch: packed, plan: plan, lora: parameters, dropout: dropout,
                                                   objective: HeadObjective(weights: weights))
            decoder.backward(batch: packed, plan: plan, lora: parameters, gradients: gradients, dropout: dropout)
            lossSum -= logProbabilities.reduce(0.0) { $0 + Double($1) } * Double(weight)
        }
        var scalars = [lossSum, StopSignal.isRequested ? 1 : 0]
        try communicator.allReduceSum(&scalars, operation: "step-scalars")
        try communicator.allReduceSum(gradients.values, count: gradients.count, operation: "gradients")
        guard scalars[0].isFinite else {
            throw agreed(.numerical("training loss is \(scalars[0]) at step \(step); lower --learning_rate or check the data and adapter"))
        }
        let norm = gradients.sumOfSquares().squareRoot()
        guard norm.isFinite else { throw agreed(.numerical("gradient norm is \(norm) at step \(step)")) }
        if arguments.maxGradNorm > 0 {
            // torch `clip_grad_norm_`: scale by max_norm/(norm + 1e-6) when that is below 1.
            let coefficient = arguments.maxGradNorm / (norm + 1e-6)
            if coefficient < 1 {
                let c = Float(coefficient)
                for i in 0..<gradients.count { gradients.values[i] *= c }
            }
        }
        let rate = schedule.rate(forStep: step)
        optimizer.step(parameters: parameters, gradients: gradients, learningRate: Float(rate))
        return StepResult(loss: scalars[0], gradientNorm: norm, learningRate: rate, stopRequested: scalars[1] > 0)
    }

    /// An error every rank raises identically from all-reduced values: reported once, by rank 0.
    func agreed(_ error: KnowTuneError) -> AgreedFailure {
        AgreedFailure(rank: 0, hostname: communicator.hostname, failingRanks: Array(0..<communicator.size),
                      worldSize: communicator.size, message: error.description, localError: error)
    }

    // MARK: - Evaluation

    /// The global token-mean NLL of `examples` (sharded by tokens over all ranks, no dropout).
    public func evaluate(_ examples: [EncodedExample], label: String) throws -> (loss: Double, seconds: Double) {
        let started = Date()
        let tokenCounts = examples.map(\.tokenCount)
        let mine = BatchSharder.shard(tokenCounts: tokenCounts, rankCount: communicator.size)[communicator.rank]
        var sums = [0.0, 0.0]
        for micro in BatchSharder.microBatches(mine, tokenCounts: tokenCounts, budget: arguments.tokenBudget) {
            var packed = PackedBatch()
            for index in micro { packed.append(prompt: examples[index].prompt, response: examples[index].response) }
            let logProbabilities = decoder.forward(batch: packed, plan: plan, lora: parameters)
            sums[0] -= logProbabilities.reduce(0.0) { $0 + Double($1) }
            sums[1] += Double(logProbabilities.count)
        }
        try communicator.allReduceSum(&sums, operation: label)
        return (sums[0] / max(sums[1], 1), Date().timeIntervalSince(started))
    }

    // MARK: - The loop

    public func run() throws {
        let startStep = globalStep
        logger.info("training: \(train.count) examples, \(validation.count) validation, global batch \(steps.globalBatchSize), "
                    + "\(steps.maxSteps) steps (\(steps.stepsPerEpoch)/epoch), eval every \(steps.evalSteps.map(String.init) ?? "-"), "
                    + "save every \(steps.saveSteps), lr \(arguments.learningRate) \(arguments.lrSchedulerType)")
        var stepsThisRun = 0
        let started = Date()
        var tokensThisRun = 0
        let faults = TrainingFaultInjection()
        for step in (startStep + 1)...max(startStep + 1, steps.maxSteps) where step <= steps.maxSteps {
            faults.beforeStep(step, rank: communicator.rank)
            let batch = steps.batch(forStep: step, trainCount: train.count, seed: arguments.seed)
            let result = try trainStep(batch, step: step)
            globalStep = step
            stepsThisRun += 1
            tokensThisRun += batch.reduce(0) { $0 + train[$1].tokenCount }
            lossSinceLog.sum += result.loss
            lossSinceLog.count += 1
            trainLossTotal += result.loss
            let epoch = steps.epoch(afterStep: step)

            if step % steps.loggingSteps == 0 {
                let tokensPerSecond = Double(tokensThisRun) / max(Date().timeIntervalSince(started), 1e-9)
                let entry = LogEntry(step: step, epoch: epoch, metrics: [
                    "loss": (lossSinceLog.sum / Double(lossSinceLog.count) * 10000).rounded() / 10000,
                    "grad_norm": result.gradientNorm, "learning_rate": schedule.loggedRate(afterStep: step),
                    "tokens_per_second": (tokensPerSecond * 10).rounded() / 10,
                ])
                log?.record(entry, currentStep: step, totalSteps: steps.maxSteps)
                logger.info(String(format: "step %d/%d  loss %.4f  grad_norm %.3f  lr %.3e  %.1f tok/s  epoch %.2f",
                                   step, steps.maxSteps, lossSinceLog.sum / Double(lossSinceLog.count), result.gradientNorm,
                                   schedule.loggedRate(afterStep: step), tokensPerSecond, epoch))
                lossSinceLog = (0, 0)
            }
            var evaluatedNow = false
            if let evalSteps = steps.evalSteps, !validation.isEmpty, step % evalSteps == 0 {
                try evaluateDuringTraining(step: step, epoch: epoch)
                evaluatedNow = true
            }
            if step % steps.saveSteps == 0 || result.stopRequested {
                try saveCheckpoint(step: step, epoch: epoch, evaluated: evaluatedNow)
            }
            if result.stopRequested {
                logger.info("stop requested (SIGTERM/SIGUSR1): checkpoint-\(step) written; resume with --resume_from_checkpoint latest")
                throw TrainingStopped(step: step)
            }
        }
        try finish(runtime: Date().timeIntervalSince(started), stepsThisRun: stepsThisRun, tokensThisRun: tokensThisRun)
    }

    func isBetter(_ metric: Double) -> Bool {
        guard let bestMetric else { return true }
        return (arguments.greaterIsBetter ?? false) ? metric > bestMetric : metric < bestMetric
    }

    func evaluateDuringTraining(step: Int, epoch: Double) throws {
        let (loss, seconds) = try evaluate(validation, label: "eval-loss")
        let samples = Double(validation.count) / max(seconds, 1e-9)
        let entry = LogEntry(step: step, epoch: epoch, metrics: [
            "eval_loss": loss, "eval_runtime": (seconds * 10000).rounded() / 10000,
            "eval_samples_per_second": (samples * 1000).rounded() / 1000,
            "eval_steps_per_second": (samples / Double(arguments.perDeviceEvalBatchSize * communicator.size) * 1000).rounded() / 1000,
        ])
        log?.record(entry, currentStep: step, totalSteps: steps.maxSteps)
        logger.info(String(format: "eval at step %d: eval_loss %.4f (%.1fs)", step, loss, seconds))
        // Every rank holds the same reduced eval loss, so every rank tracks the same best without a broadcast.
        if isBetter(loss) {
            bestMetric = loss
            bestStep = step
            bestParameters = parameters.array
        }
    }

    var checkpointFolder: (Int) -> String {
        { step in (self.arguments.outputDir as NSString).appendingPathComponent("checkpoint-\(step)") }
    }

    func saveCheckpoint(step: Int, epoch: Double, evaluated: Bool) throws {
        let folder = checkpointFolder(step)
        var failure: Error?
        if communicator.isMainRank {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try PEFTAdapter.save(parameters, to: folder, baseModel: arguments.modelNameOrPath)
                try TrainerCheckpoint.write(self, step: step, epoch: epoch, to: folder)
                try log?.writeState(to: folder, globalStep: step, maxSteps: steps.maxSteps, epoch: epoch, bestMetric: bestMetric,
                                    bestCheckpoint: bestStep.map(checkpointFolder), loggingSteps: Double(steps.loggingSteps),
                                    evalSteps: steps.evalSteps, saveSteps: steps.saveSteps,
                                    trainBatchSize: arguments.perDeviceTrainBatchSize, numTrainEpochs: arguments.numTrainEpochs)
                try pruneCheckpoints()
                logger.info("saved \(folder)")
            } catch { failure = error }
        }
        // Every rank waits for the write and learns whether it worked (one clear error, every rank exits).
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator)
    }

    /// `save_total_limit`: keep the newest N checkpoints, and always the best.
    func pruneCheckpoints() throws {
        guard let limit = arguments.saveTotalLimit, limit > 0 else { return }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: arguments.outputDir)) ?? []
        let stepsOnDisk = entries.compactMap { name -> Int? in
            name.hasPrefix("checkpoint-") ? Int(name.dropFirst("checkpoint-".count)) : nil
        }.sorted()
        let keep = Set(stepsOnDisk.suffix(limit) + (bestStep.map { [$0] } ?? []))
        for step in stepsOnDisk where !keep.contains(step) {
            try? FileManager.default.removeItem(atPath: checkpointFolder(step))
        }
    }

    func finish(runtime: Double, stepsThisRun: Int, tokensThisRun: Int) throws {
        if arguments.loadBestModelAtEnd, let bestParameters, let bestStep {
            bestParameters.withUnsafeBufferPointer { parameters.values.update(from: $0.baseAddress!, count: $0.count) }
            logger.info("loaded the best adapter (step \(bestStep), \(arguments.metricForBestModel ?? "eval_loss") \(bestMetric ?? .nan))")
        }
        let epoch = steps.epoch(afterStep: globalStep)
        let trainLoss = trainLossTotal / Double(max(globalStep, 1))
        var peakResident = [Self.peakResidentMiB()]
        try communicator.allReduceMax(&peakResident, operation: "peak-rss")
        let trainMetrics: [String: Double] = [
            "epoch": epoch, "total_flos": 0, "train_loss": trainLoss, "train_runtime": (runtime * 10000).rounded() / 10000,
            "train_samples_per_second": Double(train.count) * arguments.numTrainEpochs / max(runtime, 1e-9),
            "train_steps_per_second": Double(stepsThisRun) / max(runtime, 1e-9),
            // Real (unpadded) tokens, the figure the benchmarks compare; and this process's peak resident memory.
            "train_tokens_per_second": Double(tokensThisRun) / max(runtime, 1e-9),
            "train_peak_rss_mib": peakResident[0],  // the largest of any rank
        ]
        var failure: Error?
        if let log {
            do {
                try PEFTAdapter.save(parameters, to: arguments.outputDir, baseModel: arguments.modelNameOrPath)
                log.record(LogEntry(step: globalStep, epoch: epoch, metrics: trainMetrics), currentStep: globalStep, totalSteps: steps.maxSteps)
                try log.writeResults(trainMetrics, split: "train")
                try log.writeState(to: arguments.outputDir, globalStep: globalStep, maxSteps: steps.maxSteps, epoch: epoch,
                                   bestMetric: bestMetric, bestCheckpoint: bestStep.map(checkpointFolder),
                                   loggingSteps: Double(steps.loggingSteps), evalSteps: steps.evalSteps, saveSteps: steps.saveSteps,
                                   trainBatchSize: arguments.perDeviceTrainBatchSize, numTrainEpochs: arguments.numTrainEpochs)
            } catch { failure = error }
        }
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator)
        if arguments.doEval, !validation.isEmpty {
            try writeEvaluation(epoch: epoch)
        }
        if arguments.plotLoss, let log {
            let plots = log.plotLosses()
            if plots.isEmpty { logger.warning("no loss values to plot (logging_steps \(steps.loggingSteps) > steps?)") }
        }
    }

    /// Peak resident set size of this process (ru_maxrss, KiB on Linux) in MiB.
    static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// The post-training (or `--do_eval`-only) evaluation: eval_results.json with loss and perplexity.
    public func writeEvaluation(epoch: Double) throws {
        let (loss, seconds) = try evaluate(validation, label: "final-eval-loss")
        let metrics: [String: Double] = [
            "epoch": epoch, "eval_loss": loss, "perplexity": exp(loss), "eval_runtime": (seconds * 10000).rounded() / 10000,
            "eval_samples_per_second": (Double(validation.count) / max(seconds, 1e-9) * 1000).rounded() / 1000,
        ]
        logger.info(String(format: "eval_loss %.4f  perplexity %.3f", loss, exp(loss)))
        var failure: Error?
        if let log {
            do {
                log.record(LogEntry(step: globalStep, epoch: epoch, metrics: metrics), currentStep: globalStep, totalSteps: steps.maxSteps)
                try log.writeResults(metrics, split: "eval")
            } catch { failure = error }
        }
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator)
    }
}

/// Thrown after a requested stop has been checkpointed: the CLI exits 0.
public struct TrainingStopped: Error {
    public let step: Int
}
