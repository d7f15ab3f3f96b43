// Implements `knowtune train`'s workflow for the SFT stage (LLaMA-Factory `run_sft`): check the arguments and the
// output folder, load model and adapter, prepare and split the data, then train (with resume), evaluate, export;
// does not parse flags or start MPI. Every failure before training is agreed on by all ranks: one message from
// rank 0, a non-zero exit everywhere.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

public enum TrainingWorkflow {
    public static func run(arguments input: TrainingArguments, communicator: any Communicator, logger: RankLogger) throws {
        var arguments = input
        arguments.resolveDerivedDefaults()
        try Consensus.runAgreed(communicator: communicator, operation: "validate arguments") { try arguments.validate() }
        guard arguments.stage == "sft" else {
            throw AgreedFailure(rank: 0, hostname: communicator.hostname, failingRanks: Array(0..<communicator.size),
                                worldSize: communicator.size, message: "--stage \(arguments.stage) is not implemented yet (sft is)")
        }
        let resumeFolder = try Consensus.runAgreed(communicator: communicator, operation: "output folder") {
            try prepareOutputFolder(arguments)
        }
        let model = try Consensus.runAgreed(communicator: communicator, operation: "load model") { try ModelLoader.load(arguments.modelNameOrPath) }
        let lora = try Consensus.runAgreed(communicator: communicator, operation: "load adapter") { try makeAdapter(arguments, model: model) }
        let c = model.configuration
        logger.info("model \(model.source) [\(model.format)]: \(c.parameterCount) parameters; LoRA r=\(lora.layout.configuration.rank) "
                    + "alpha=\(lora.layout.configuration.alpha) on \(lora.layout.configuration.targets.map(\.moduleName).joined(separator: ",")): "
                    + "trainable params \(lora.count) (\(String(format: "%.4f", 100 * Double(lora.count) / Double(c.parameterCount + lora.count)))%)")
        let (train, validation) = try Consensus.runAgreed(communicator: communicator, operation: "prepare data") {
            // Every rank prepares the same data; only rank 0 reports on it.
            try prepareData(arguments, tokenizer: model.tokenizer, logger: communicator.isMainRank ? logger : nil)
        }
        let trainer = try SFTTrainer(arguments: arguments, communicator: communicator, logger: logger, model: model,
                                     lora: lora, train: train, validation: validation)
        if let resumeFolder {
            try Consensus.runAgreed(communicator: communicator, operation: "resume") { try TrainerCheckpoint.restore(trainer, from: resumeFolder) }
            logger.info("resumed from \(resumeFolder) at step \(trainer.globalStep)")
        }
        if arguments.doTrain {
            StopSignal.install()
            try trainer.run()
        } else if arguments.doEval {
            try trainer.writeEvaluation(epoch: 0)
        }
    }

    /// HF's rule: an output folder holding a previous run needs --overwrite_output_dir or --resume_from_checkpoint.
    /// Returns the checkpoint folder to resume from, if any. Nothing is ever deleted here.
    static func prepareOutputFolder(_ arguments: TrainingArguments) throws -> String? {
        let directory = arguments.outputDir
        let fileManager = FileManager.default
        var resumeFolder: String?
        if let resume = arguments.resumeFromCheckpoint, !["false", "False", "0"].contains(resume) {
            if ["latest", "true", "True", "1"].contains(resume) {
                guard let latest = CheckpointLocator.latestComplete(in: directory) else {
                    throw KnowTuneError.invalidConfiguration("--resume_from_checkpoint \(resume): no complete checkpoint-<step> in \(directory)")
                }
                resumeFolder = latest
            } else {
                guard fileManager.fileExists(atPath: resume) else {
                    throw KnowTuneError.fileUnreadable(path: resume, reason: "checkpoint folder not found")
                }
                resumeFolder = resume
            }
        } else if arguments.doTrain, let entries = try? fileManager.contentsOfDirectory(atPath: directory), !entries.isEmpty,
                  !arguments.overwriteOutputDir {
            throw KnowTuneError.invalidConfiguration(
                "Output directory (\(directory)) already exists and is not empty. Use --overwrite_output_dir to overcome, or --resume_from_checkpoint latest to continue.")
        }
        try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if arguments.doTrain, resumeFolder == nil {
            // A fresh run starts a fresh log (LLaMA-Factory removes it under overwrite_output_dir).
            try? fileManager.removeItem(atPath: (directory as NSString).appendingPathComponent("trainer_log.jsonl"))
        }
        return resumeFolder
    }

    /// A new LoRA (PEFT init, same seed on every rank) or the continued last adapter, earlier ones merged.
    static func makeAdapter(_ arguments: TrainingArguments, model: LoadedModel) throws -> LoRABuffer {
        let paths = arguments.adapterPaths
        if !paths.isEmpty {
            let continued = arguments.createNewAdapter ? paths : Array(paths.dropLast())
            for path in continued {
                let adapter = try PEFTAdapter.load(folder: path, model: model.configuration)
                LoRAMerger.merge(adapter, into: model.weights)
            }
            if !arguments.createNewAdapter, let last = paths.last {
                // LLaMA-Factory: the adapter keeps its own r/alpha/targets; fresh optimizer and schedule.
                return try PEFTAdapter.load(folder: last, model: model.configuration)
            }
        }
        let lora = LoRABuffer(layout: LoRALayout(model: model.configuration, lora: try arguments.loraConfiguration()))
        lora.initializePEFT(seed: UInt64(arguments.seed))
        return lora
    }

    /// Loads, encodes and splits the datasets identically on every rank.
    static func prepareData(_ arguments: TrainingArguments, tokenizer: any Tokenizer, logger: RankLogger?) throws
        -> (train: [EncodedExample], validation: [EncodedExample]) {
        let registry = try DatasetRegistry(directory: arguments.datasetDir)
        let examples = try DatasetLoader.load(names: arguments.datasetNames, registry: registry, maxSamples: arguments.maxSamples)
        let template = try ChatTemplate.named(arguments.template)
        let encoder = SupervisedEncoder(template: template, tokenizer: tokenizer, cutoffLength: arguments.cutoffLength,
                                        reservedLabelLength: arguments.reservedLabelLength)
        let (encoded, report) = encoder.encode(examples)
        if report.skippedEmpty > 0 { logger?.warning("skipped \(report.skippedEmpty) record(s) with an empty prompt or response") }
        if report.truncated > 0 { logger?.warning("truncated \(report.truncated) sequence(s) to cutoff_len \(arguments.cutoffLength)") }
        guard !encoded.isEmpty else {
            throw KnowTuneError.invalidInput("no usable records in \(arguments.dataset) (all \(examples.count) were empty)")
        }
        if !arguments.doTrain { return ([], encoded) }
        let split = try ValidationSplit.split(count: encoded.count, valSize: arguments.valSize, seed: UInt64(arguments.seed))
        return (split.train.map { encoded[$0] }, split.validation.map { encoded[$0] })
    }
}

/// Finds checkpoints in an output folder.
public enum CheckpointLocator {
    public static func latestComplete(in directory: String) -> String? {
        KnowTuneCheckpoint.CheckpointStore().latestComplete(in: directory)
    }
}

import KnowTuneCheckpoint
