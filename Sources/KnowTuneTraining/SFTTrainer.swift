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

public final class SFTTrainer {
    /// Parameters, optimizer, schedule, step arithmetic, logs and checkpoints (shared with DPO).
    let core: TrainerCore
    public var arguments: TrainingArguments { core.arguments }
    var communicator: any Communicator { core.communicator }
    var logger: RankLogger { core.logger }
    var decoder: LlamaDecoder { core.decoder }
    var parameters: LoRABuffer { core.parameters }
    var gradients: LoRABuffer { core.gradients }
    var steps: StepPlan { core.steps }
    var log: TrainingLog? { core.log }
    let train: [EncodedExample]
    let validation: [EncodedExample]
    private var plan: ActivationPlan

    /// The last finished optimizer step (restored on resume).
    public var globalStep: Int { core.globalStep }

    public init(arguments: TrainingArguments, communicator: any Communicator, logger: RankLogger, model: LoadedModel,
                lora: LoRABuffer, train: [EncodedExample], validation: [EncodedExample]) throws {
        core = try TrainerCore(arguments: arguments, communicator: communicator, logger: logger, model: model, lora: lora,
                               trainCount: train.count, checkpointFormat: TrainerCheckpoint.sftFormat)
        self.train = train
        self.validation = validation
        let longest = (train + validation).map(\.tokenCount).max() ?? 1
        plan = ActivationPlan(model: model.configuration, loraLayout: lora.layout,
                              tokenCapacity: max(arguments.tokenBudget, longest), sequenceCapacity: longest)
    }

    /// Continues from a checkpoint folder written by an SFT run.
    public func restore(from folder: String) throws {
        try TrainerCheckpoint.restore(core, from: folder)
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
        return try core.update(scalars: [lossSum], step: step)
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
        let progress = ProgressBar(total: steps.maxSteps, isMainRank: communicator.isMainRank)
        defer { progress.clear() }
        for step in (startStep + 1)...max(startStep + 1, steps.maxSteps) where step <= steps.maxSteps {
            faults.beforeStep(step, rank: communicator.rank)
            let batch = steps.batch(forStep: step, trainCount: train.count, seed: arguments.seed)
            let result = try trainStep(batch, step: step)
            core.recordLoss(result.loss, step: step)
            stepsThisRun += 1
            tokensThisRun += batch.reduce(0) { $0 + train[$1].tokenCount }
            let epoch = steps.epoch(afterStep: step)
            progress.update(step: step, loss: result.loss, learningRate: core.schedule.loggedRate(afterStep: step),
                            throughput: String(format: "%.1f tok/s", Double(tokensThisRun) / max(Date().timeIntervalSince(started), 1e-9)))
            let willLog = step % steps.loggingSteps == 0 || step % (steps.evalSteps ?? Int.max) == 0 || step % steps.saveSteps == 0
                || result.stopRequested
            if willLog { progress.clear() }

            if step % steps.loggingSteps == 0 {
                let tokensPerSecond = Double(tokensThisRun) / max(Date().timeIntervalSince(started), 1e-9)
                let loss = core.takeLoggedLoss()
                core.record(LogEntry(step: step, epoch: epoch, metrics: [
                    "loss": loss.rounded, "grad_norm": result.gradientNorm, "learning_rate": core.schedule.loggedRate(afterStep: step),
                    "tokens_per_second": (tokensPerSecond * 10).rounded() / 10,
                ]))
                logger.info(String(format: "step %d/%d  loss %.4f  grad_norm %.3f  lr %.3e  %.1f tok/s  epoch %.2f",
                                   step, steps.maxSteps, loss.exact, result.gradientNorm,
                                   core.schedule.loggedRate(afterStep: step), tokensPerSecond, epoch))
            }
            if let evalSteps = steps.evalSteps, !validation.isEmpty, step % evalSteps == 0 {
                try evaluateDuringTraining(step: step, epoch: epoch)
            }
            if step % steps.saveSteps == 0 || result.stopRequested {
                try core.saveCheckpoint(step: step, epoch: epoch)
            }
            if result.stopRequested {
                logger.info("stop requested (SIGTERM/SIGUSR1): checkpoint-\(step) written; resume with --resume_from_checkpoint latest")
                throw TrainingStopped(step: step)
            }
        }
        try finish(runtime: Date().timeIntervalSince(started), stepsThisRun: stepsThisRun, tokensThisRun: tokensThisRun)
    }

    func isBetter(_ metric: Double) -> Bool {
        guard let bestMetric = core.bestMetric else { return true }
        return (arguments.greaterIsBetter ?? false) ? metric > bestMetric : metric < bestMetric
    }

    func evaluateDuringTraining(step: Int, epoch: Double) throws {
        let (loss, seconds) = try evaluate(validation, label: "eval-loss")
        let samples = Double(validation.count) / max(seconds, 1e-9)
        core.record(LogEntry(step: step, epoch: epoch, metrics: [
            "eval_loss": loss, "eval_runtime": (seconds * 10000).rounded() / 10000,
            "eval_samples_per_second": (samples * 1000).rounded() / 1000,
            "eval_steps_per_second": (samples / Double(arguments.perDeviceEvalBatchSize * communicator.size) * 1000).rounded() / 1000,
        ]))
        logger.info(String(format: "eval at step %d: eval_loss %.4f (%.1fs)", step, loss, seconds))
        // Every rank holds the same reduced eval loss, so every rank tracks the same best without a broadcast.
        if isBetter(loss) {
            core.bestMetric = loss
            core.bestStep = step
            core.bestParameters = parameters.array
        }
    }

    func finish(runtime: Double, stepsThisRun: Int, tokensThisRun: Int) throws {
        if arguments.loadBestModelAtEnd, let bestParameters = core.bestParameters, let bestStep = core.bestStep {
            bestParameters.withUnsafeBufferPointer { parameters.values.update(from: $0.baseAddress!, count: $0.count) }
            logger.info("loaded the best adapter (step \(bestStep), \(arguments.metricForBestModel ?? "eval_loss") \(core.bestMetric ?? .nan))")
        }
        var trainMetrics = try core.trainMetrics(runtime: runtime, stepsThisRun: stepsThisRun, sampleCount: train.count)
        // Real (unpadded) tokens, the figure the benchmarks compare.
        trainMetrics["train_tokens_per_second"] = Double(tokensThisRun) / max(runtime, 1e-9)
        try core.exportFinal(trainMetrics: trainMetrics)
        if arguments.doEval, !validation.isEmpty {
            try writeEvaluation(epoch: steps.epoch(afterStep: globalStep))
        }
        core.plotLossesIfAsked()
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
