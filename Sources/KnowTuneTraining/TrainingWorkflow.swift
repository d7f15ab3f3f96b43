// Implements `knowtune train`'s workflow for the SFT stage (LLaMA-Factory `run_sft`: check the arguments and the
// output folder, load model and adapter, prepare and split the data, then train (with resume), evaluate, export)
// and the DPO stage (`run_dpo`: the same up to the adapter, then preference pairs, the reference log-probs once,
// DPO training, export); does not parse flags or start MPI. Every failure before training is agreed on by all
// ranks: one message from rank 0, a non-zero exit everywhere.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

public enum TrainingWorkflow {
    /// Runs the stage of `arguments`, which `knowtune train` has resolved (`resolveDerivedDefaults`) and validated
    /// (`validate`, agreed on every rank) before calling: that one pass covers every workflow, predict included.
    public static func run(arguments: TrainingArguments, communicator: any Communicator, logger: RankLogger) throws {
        // Rank 0 reads the checkpoints (a whole state.h5 each) and chooses; every rank proves it can write the folder.
        let choice = try Consensus.runAgreed(communicator: communicator, operation: "output folder") { () -> ResumeChoice in
            if communicator.isMainRank { return try prepareOutputFolder(arguments) }
            try CheckpointLocator.checkWritable(arguments.training.outputDir)
            return ResumeChoice()
        }
        let resumeFolder = try communicator.broadcast(choice.folder, root: 0, operation: "resume folder")
        for skipped in choice.skipped { logger.warning("resume: skipping \(skipped.folder): \(skipped.reason)") }
        // The data and the step plan are checked with the tokenizer alone, before the weights load.
        let data = try Consensus.runAgreed(communicator: communicator, operation: "prepare data") { () -> PreparedData in
            let tokenizer = try TokenizerLoader.load(arguments.model.modelNameOrPath)
            // Every rank prepares the same data; only rank 0 reports on it.
            let reporter = communicator.isMainRank ? logger : nil
            let data: PreparedData = arguments.finetuning.stage == .dpo
                ? .pairs(try preparePairs(arguments, tokenizer: tokenizer, logger: reporter))
                : .examples(try prepareData(arguments, tokenizer: tokenizer, logger: reporter))
            if arguments.training.doTrain { _ = try StepPlan(arguments: arguments, trainCount: data.trainCount, worldSize: communicator.size) }
            return data
        }
        let model = try NodeSharedModel.load(arguments.model.modelNameOrPath, precision: arguments.model.baseDtype,
                                             communicator: communicator, logger: logger)
        let lora = try Consensus.runAgreed(communicator: communicator, operation: "load adapter") { try makeAdapter(arguments, model: model) }
        let c = model.configuration
        logger.info("model \(model.source) [\(model.format)]: \(c.parameterCount) parameters; LoRA r=\(lora.layout.configuration.rank) "
                    + "alpha=\(lora.layout.configuration.alpha) on \(lora.layout.configuration.targets.map(\.moduleName).joined(separator: ",")): "
                    + "trainable params \(lora.count) (\(String(format: "%.4f", 100 * Double(lora.count) / Double(c.parameterCount + lora.count)))%)")
        logger.info(OpenBLASCore.startupChoice?.description ?? "OpenBLAS kernels \(BLAS.coreName)")
        let capacity: (tokens: Int, sequence: Int)
        switch data {
        case let .pairs(pairs): capacity = DPOObjective.planCapacity(arguments: arguments, pairs: pairs)
        case let .examples((train, validation)): capacity = SFTObjective.planCapacity(arguments: arguments, train: train, validation: validation)
        }
        let recomputation = try chooseRecomputation(arguments, model: model, loraLayout: lora.layout, capacity: capacity,
                                                    communicator: communicator)
        logger.info("activation recomputation \(recomputation.enabled ? "on" : "off"): \(recomputation.reason)")
        switch data {
        case let .pairs(pairs):
            try runDPO(arguments, communicator: communicator, logger: logger, model: model, lora: lora, pairs: pairs,
                       resumeFolder: resumeFolder, recomputesLayers: recomputation.enabled)
        case let .examples((train, validation)):
            let objective = SFTObjective(arguments: arguments, model: model.configuration, loraLayout: lora.layout, train: train,
                                         validation: validation, recomputesLayers: recomputation.enabled)
            let trainer = try Trainer(objective: objective, arguments: arguments, communicator: communicator, logger: logger,
                                      model: model, lora: lora)
            try resume(trainer, from: resumeFolder, communicator: communicator, logger: logger)
            if arguments.training.doTrain {
                StopSignal.install()
                try trainer.run()
            } else if arguments.training.doEval {
                try trainer.writeEvaluation()
            }
        }
    }

    /// A stage's encoded data: SFT examples (train, validation) or DPO pairs.
    enum PreparedData {
        case examples((train: [EncodedExample], validation: [EncodedExample]))
        case pairs([EncodedPair])

        var trainCount: Int {
            switch self {
            case let .examples(split): return split.train.count
            case let .pairs(pairs): return pairs.count
            }
        }
    }

    /// Rank 0 decides from its node's memory and every rank follows (the results are the same either way; one
    /// decision keeps the banner true for every rank).
    static func chooseRecomputation(_ arguments: TrainingArguments, model: LoadedModel, loraLayout: LoRALayout,
                                    capacity: (tokens: Int, sequence: Int), communicator: any Communicator) throws -> ActivationRecomputation {
        let decided = try Consensus.runAgreed(communicator: communicator, operation: "activation recomputation") { () -> ActivationRecomputation in
            guard communicator.isMainRank else { return ActivationRecomputation(enabled: false, reason: "") }
            return try ActivationRecomputation.decide(
                arguments: arguments, model: model.configuration, loraLayout: loraLayout, tokenCapacity: capacity.tokens,
                sequenceCapacity: capacity.sequence, ranksOnNode: communicator.localSize, availableBytes: NodeMemory.availableBytes(),
                baseBytes: model.weights.storageLayout.byteCount)
        }
        return try communicator.broadcast(decided, root: 0, operation: "activation recomputation")
    }

    static func resume(_ trainer: Trainer, from folder: String?, communicator: any Communicator, logger: RankLogger) throws {
        guard let folder else { return }
        try Consensus.runAgreed(communicator: communicator, operation: "resume") { try trainer.restore(from: folder) }
        logger.info("resumed from \(folder) at step \(trainer.globalStep)")
    }

    // MARK: - DPO

    /// LLaMA-Factory `run_dpo`: pairs, reference log-probs (once), DPO training with resume, export.
    static func runDPO(_ arguments: TrainingArguments, communicator: any Communicator, logger: RankLogger, model: LoadedModel,
                       lora: LoRABuffer, pairs: [EncodedPair], resumeFolder: String?, recomputesLayers: Bool) throws {
        if let continued = arguments.model.adapterPaths.last, !arguments.model.createNewAdapter {
            logger.info("continuing the adapter \(continued) with its own configuration (--lora_* flags ignored); fresh optimizer and schedule")
        }
        let referenceModel = try Consensus.runAgreed(communicator: communicator, operation: "load reference model") {
            try ReferenceLogProbabilities.loadReferenceModel(arguments, policy: model.configuration)
        }
        let objective = try DPOObjective.prepare(arguments: arguments, model: model, loraLayout: lora.layout, pairs: pairs,
                                                 referenceModel: referenceModel, communicator: communicator,
                                                 recomputesLayers: recomputesLayers)
        logger.info(String(format: "reference log-probs of %d pairs in %.2f s (%@)", pairs.count, objective.reference.seconds,
                           arguments.model.refModel.map { "--ref_model \($0)" } ?? "the base model with the adapter disabled"))
        let trainer = try Trainer(objective: objective, arguments: arguments, communicator: communicator, logger: logger,
                                  model: model, lora: lora)
        try resume(trainer, from: resumeFolder, communicator: communicator, logger: logger)
        StopSignal.install()
        try trainer.run()
    }

    /// Loads and encodes the preference pairs identically on every rank (no validation split: DPO does not evaluate).
    static func preparePairs(_ arguments: TrainingArguments, tokenizer: any Tokenizer, logger: RankLogger?) throws -> [EncodedPair] {
        let registry = try DatasetRegistry(directory: arguments.data.datasetDir)
        try PairwiseEncoder.requireRanking(try arguments.data.datasetNames.map { try registry.entry(named: $0) })
        let examples = try DatasetLoader.load(names: arguments.data.datasetNames, registry: registry, maxSamples: arguments.data.maxSamples)
        let encoder = PairwiseEncoder(template: ChatTemplate(kind: arguments.data.template), tokenizer: tokenizer,
                                      cutoffLength: arguments.data.cutoffLength, reservedLabelLength: arguments.data.reservedLabelLength)
        let (pairs, report) = try encoder.encode(examples)
        if report.skippedEmpty > 0 { logger?.warning("skipped \(report.skippedEmpty) pair(s) with an empty prompt, chosen or rejected answer") }
        if report.truncated > 0 { logger?.warning("truncated \(report.truncated) pair(s) to cutoff_len \(arguments.data.cutoffLength)") }
        if report.identical > 0 {
            logger?.warning("\(report.identical) pair(s) have identical chosen and rejected answers; kept, but their preference term has no gradient")
        }
        guard !pairs.isEmpty else {
            throw KnowTuneError.invalidInput("no usable pairs in \(arguments.data.dataset) (all \(examples.count) were empty)")
        }
        return pairs
    }

    // MARK: - Shared steps

    /// HF's rule: an output folder holding a previous run needs --overwrite_output_dir or --resume_from_checkpoint.
    /// Returns the checkpoint folder to resume from, if any, and the newer ones skipped as damaged (with why); an
    /// explicit checkpoint path that is damaged is an error. The output folder must be writable. Nothing is ever
    /// deleted here.
    static func prepareOutputFolder(_ arguments: TrainingArguments) throws -> ResumeChoice {
        let directory = arguments.training.outputDir
        let fileManager = FileManager.default
        var resumeFolder: String?
        var skipped: [ResumeChoice.Skipped] = []
        if let resume = arguments.training.resumeFromCheckpoint, !["false", "False", "0"].contains(resume) {
            if ["latest", "true", "True", "1"].contains(resume) {
                let found = CheckpointLocator.latestComplete(in: directory)
                skipped = found.skipped.map { ResumeChoice.Skipped(folder: $0.folder, reason: $0.reason) }
                guard let latest = found.folder else {
                    let reasons = skipped.map { "\(($0.folder as NSString).lastPathComponent): \($0.reason)" }.joined(separator: "; ")
                    throw KnowTuneError.invalidConfiguration("--resume_from_checkpoint \(resume): no complete checkpoint-<step> in \(directory)"
                                                             + (reasons.isEmpty ? "" : " (skipped \(reasons))"))
                }
                resumeFolder = latest
            } else {
                guard fileManager.fileExists(atPath: resume) else {
                    throw KnowTuneError.fileUnreadable(path: resume, reason: "checkpoint folder not found")
                }
                if let damage = CheckpointLocator.damage(in: resume) {
                    throw KnowTuneError.badFormat(path: resume, reason: "cannot resume from this checkpoint: \(damage)")
                }
                resumeFolder = resume
            }
        } else if arguments.training.doTrain, let entries = try? fileManager.contentsOfDirectory(atPath: directory),
                  // Another rank's write probe is not a previous run.
                  entries.contains(where: { !$0.hasPrefix(CheckpointLocator.writeProbePrefix) }),
                  !arguments.training.overwriteOutputDir {
            throw KnowTuneError.invalidConfiguration(
                "Output directory (\(directory)) already exists and is not empty. Use --overwrite_output_dir to overcome, or --resume_from_checkpoint latest to continue.")
        }
        try CheckpointLocator.checkWritable(directory)
        if arguments.training.doTrain, resumeFolder == nil {
            // A fresh run starts a fresh log (LLaMA-Factory removes it under overwrite_output_dir).
            try? fileManager.removeItem(atPath: (directory as NSString).appendingPathComponent("trainer_log.jsonl"))
        }
        return ResumeChoice(folder: resumeFolder, skipped: skipped)
    }

    /// The checkpoint a run resumes from, and the newer ones passed over as damaged.
    struct ResumeChoice {
        struct Skipped { var folder: String, reason: String }
        var folder: String?
        var skipped: [Skipped] = []
    }

    /// A new LoRA (PEFT init, same seed on every rank) or the continued last adapter, earlier ones merged.
    static func makeAdapter(_ arguments: TrainingArguments, model: LoadedModel) throws -> LoRABuffer {
        let paths = arguments.model.adapterPaths
        if !paths.isEmpty {
            try LoRAMerger.mergeAdapters(at: arguments.model.createNewAdapter ? paths : Array(paths.dropLast()), into: model.weights)
            if !arguments.model.createNewAdapter, let last = paths.last {
                // LLaMA-Factory: the adapter keeps its own r/alpha/targets; fresh optimizer and schedule.
                return try PEFTAdapter.load(folder: last, model: model.configuration)
            }
        }
        let lora = LoRABuffer(layout: LoRALayout(model: model.configuration, lora: try arguments.finetuning.loraConfiguration()))
        lora.initializePEFT(seed: UInt64(arguments.training.seed))
        return lora
    }

    /// Loads, encodes and splits the datasets identically on every rank.
    static func prepareData(_ arguments: TrainingArguments, tokenizer: any Tokenizer, logger: RankLogger?) throws
        -> (train: [EncodedExample], validation: [EncodedExample]) {
        let registry = try DatasetRegistry(directory: arguments.data.datasetDir)
        let examples = try DatasetLoader.load(names: arguments.data.datasetNames, registry: registry, maxSamples: arguments.data.maxSamples)
        let template = ChatTemplate(kind: arguments.data.template)
        let encoder = SupervisedEncoder(template: template, tokenizer: tokenizer, cutoffLength: arguments.data.cutoffLength,
                                        reservedLabelLength: arguments.data.reservedLabelLength)
        let (encoded, report) = encoder.encode(examples)
        if report.skippedEmpty > 0 { logger?.warning("skipped \(report.skippedEmpty) record(s) with an empty prompt or response") }
        if report.truncated > 0 { logger?.warning("truncated \(report.truncated) sequence(s) to cutoff_len \(arguments.data.cutoffLength)") }
        guard !encoded.isEmpty else {
            throw KnowTuneError.invalidInput("no usable records in \(arguments.data.dataset) (all \(examples.count) were empty)")
        }
        if !arguments.training.doTrain { return ([], encoded) }
        let split = try ValidationSplit.split(count: encoded.count, valSize: arguments.data.valSize, seed: UInt64(arguments.training.seed))
        return (split.train.map { encoded[$0] }, split.validation.map { encoded[$0] })
    }
}

