// Implements the stage-independent half of a trainer, shared by SFT and DPO: the LoRA parameters, gradients,
// AdamW and schedule, the step that all-reduces one scalar block and the fused gradient buffer, clips and updates
// (HF `_inner_training_loop` + accelerate `clip_grad_norm_`), step logging, checkpoints (adapter, state.h5,
// trainer_state.json, pruning) and the final export; does not compute a loss or a gradient (the stage trainers
// run the model and fill `gradients`) and does not choose batches (StepPlan).
import Foundation
import KnowTuneCheckpoint
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

/// The per-step numbers every rank agrees on.
struct StepResult {
    /// The step's loss: the first of the all-reduced scalars.
    var loss: Double
    var gradientNorm: Double
    var learningRate: Double
    var stopRequested: Bool
    /// Every scalar the stage passed in, summed over ranks (the loss first).
    var scalars: [Double]
}

final class TrainerCore {
    let arguments: TrainingArguments
    let communicator: any Communicator
    let logger: RankLogger
    let model: LoadedModel
    let decoder: LlamaDecoder
    let parameters: LoRABuffer
    let gradients: LoRABuffer
    let optimizer: AdamW
    let schedule: LearningRateSchedule
    let steps: StepPlan
    /// `state.h5`'s format_version, which names the stage ("knowtune-sft-1", "knowtune-dpo-1").
    let checkpointFormat: String
    /// Rank 0 only.
    let log: TrainingLog?

    var globalStep = 0
    var bestMetric: Double?
    var bestStep: Int?
    var bestParameters: [Float]?
    var lossSinceLog: (sum: Double, count: Int) = (0, 0)
    var trainLossTotal = 0.0
    /// Wall time inside the per-step all-reduces (waiting for slower ranks included) and the steps it covers.
    var allReduceTime: (seconds: Double, steps: Int) = (0, 0)

    init(arguments: TrainingArguments, communicator: any Communicator, logger: RankLogger, model: LoadedModel,
         lora: LoRABuffer, trainCount: Int, checkpointFormat: String, maxPositions: Int = 0) throws {
        self.arguments = arguments
        self.communicator = communicator
        self.logger = logger
        self.model = model
        self.checkpointFormat = checkpointFormat
        // RoPE tables cover the cutoff, the model's own range, and any longer sequence the stage has (DPO's
        // prompt + rejected can pass the cutoff: each answer is truncated against the prompt on its own).
        decoder = LlamaDecoder(weights: model.weights,
                               maxPositions: max(arguments.cutoffLength + 1, model.configuration.maxPositionEmbeddings, maxPositions))
        parameters = lora
        gradients = LoRABuffer(layout: lora.layout)
        optimizer = AdamW(layout: lora.layout, configuration: AdamWConfiguration(
            beta1: Float(arguments.adamBeta1), beta2: Float(arguments.adamBeta2), epsilon: Float(arguments.adamEpsilon),
            weightDecay: Float(arguments.weightDecay)))
        steps = try StepPlan(arguments: arguments, trainCount: trainCount, worldSize: communicator.size)
        schedule = try LearningRateSchedule(kind: arguments.lrSchedulerType, baseRate: arguments.learningRate,
                                            totalSteps: steps.maxSteps, warmupSteps: arguments.warmupSteps,
                                            warmupRatio: arguments.warmupRatio)
        log = communicator.isMainRank ? TrainingLog(outputDirectory: arguments.outputDir) : nil
    }

    // MARK: - The update

    /// Finishes optimizer step `step` once this rank's share of the gradient is in `gradients`: all-reduces
    /// `scalars` (the loss first, each already divided so that the sum over ranks is the global value) with the
    /// stop flag, then the gradient buffer; checks both are finite, clips to `max_grad_norm` and steps AdamW.
    func update(scalars local: [Double], step: Int) throws -> StepResult {
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
        let stop = scalars.removeLast() > 0
        return StepResult(loss: scalars[0], gradientNorm: norm, learningRate: rate, stopRequested: stop, scalars: scalars)
    }

    /// Books a finished step's loss into the running averages.
    func recordLoss(_ loss: Double, step: Int) {
        globalStep = step
        lossSinceLog.sum += loss
        lossSinceLog.count += 1
        trainLossTotal += loss
    }

    /// HF's logged loss: the mean since the last log, rounded to 4 decimals; resets the running mean.
    func takeLoggedLoss() -> (rounded: Double, exact: Double) {
        let exact = lossSinceLog.sum / Double(max(lossSinceLog.count, 1))
        lossSinceLog = (0, 0)
        return ((exact * 10000).rounded() / 10000, exact)
    }

    /// Adds an entry to trainer_log.jsonl and the log history (rank 0).
    func record(_ entry: LogEntry) {
        log?.record(entry, currentStep: entry.step, totalSteps: steps.maxSteps)
    }

    /// An error every rank raises identically from all-reduced values: reported once, by rank 0.
    func agreed(_ error: KnowTuneError) -> AgreedFailure {
        AgreedFailure(rank: 0, hostname: communicator.hostname, failingRanks: Array(0..<communicator.size),
                      worldSize: communicator.size, message: error.description, localError: error)
    }

    // MARK: - Checkpoints

    func checkpointFolder(_ step: Int) -> String {
        (arguments.outputDir as NSString).appendingPathComponent("checkpoint-\(step)")
    }

    /// Writes `checkpoint-<step>` (adapter, state.h5 with `extra` stage values, trainer_state.json) on rank 0;
    /// every rank learns whether it worked.
    func saveCheckpoint(step: Int, epoch: Double, extra: [String: [Double]] = [:]) throws {
        let folder = checkpointFolder(step)
        var failure: Error?
        if communicator.isMainRank {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try PEFTAdapter.save(parameters, to: folder, baseModel: arguments.modelNameOrPath)
                try TrainerCheckpoint.write(self, step: step, epoch: epoch, extra: extra, to: folder)
                try writeState(to: folder, step: step, epoch: epoch)
                try pruneCheckpoints()
                logger.info("saved \(folder)")
            } catch { failure = error }
        }
        // Every rank waits for the write and learns whether it worked (one clear error, every rank exits).
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator)
    }

    func writeState(to folder: String, step: Int, epoch: Double) throws {
        try log?.writeState(to: folder, globalStep: step, maxSteps: steps.maxSteps, epoch: epoch, bestMetric: bestMetric,
                            bestCheckpoint: bestStep.map(checkpointFolder), loggingSteps: Double(steps.loggingSteps),
                            evalSteps: steps.evalSteps, saveSteps: steps.saveSteps,
                            trainBatchSize: arguments.perDeviceTrainBatchSize, numTrainEpochs: arguments.numTrainEpochs)
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

    // MARK: - The end of a run

    /// HF's train metrics common to every stage (after a `peak-rss` all-reduce): epoch, train_loss, runtime,
    /// samples and steps per second, and the largest peak resident memory of any rank.
    func trainMetrics(runtime: Double, stepsThisRun: Int, sampleCount: Int) throws -> [String: Double] {
        var peaks = [Self.peakResidentMiB(), 1000 * allReduceTime.seconds / Double(max(allReduceTime.steps, 1))]
        try communicator.allReduceMax(&peaks, operation: "peak-rss")
        return [
            "epoch": steps.epoch(afterStep: globalStep), "total_flos": 0,
            "train_loss": trainLossTotal / Double(max(globalStep, 1)), "train_runtime": (runtime * 10000).rounded() / 10000,
            "train_samples_per_second": Double(sampleCount) * arguments.numTrainEpochs / max(runtime, 1e-9),
            "train_steps_per_second": Double(stepsThisRun) / max(runtime, 1e-9),
            "train_peak_rss_mib": peaks[0],  // the largest of any rank
            "train_allreduce_ms_per_step": (peaks[1] * 1000).rounded() / 1000,  // the slowest rank's mean
        ]
    }

    /// Writes the output folder's adapter, the final log entry, train_results.json and trainer_state.json (rank 0);
    /// every rank learns whether it worked.
    func exportFinal(trainMetrics: [String: Double]) throws {
        let epoch = steps.epoch(afterStep: globalStep)
        var failure: Error?
        if let log {
            do {
                try PEFTAdapter.save(parameters, to: arguments.outputDir, baseModel: arguments.modelNameOrPath)
                log.record(LogEntry(step: globalStep, epoch: epoch, metrics: trainMetrics), currentStep: globalStep, totalSteps: steps.maxSteps)
                try log.writeResults(trainMetrics, split: "train")
                try writeState(to: arguments.outputDir, step: globalStep, epoch: epoch)
            } catch { failure = error }
        }
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator)
    }

    /// `--plot_loss`: the loss plots (rank 0), with a warning when there is nothing to plot.
    func plotLossesIfAsked() {
        guard arguments.plotLoss, let log else { return }
        let plots = log.plotLosses()
        if plots.isEmpty { logger.warning("no loss values to plot (logging_steps \(steps.loggingSteps) > steps?)") }
    }

    /// Peak resident set size of this process (ru_maxrss, KiB on Linux) in MiB.
    static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
