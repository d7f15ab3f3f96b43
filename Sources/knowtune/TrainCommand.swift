// Implements `knowtune train`: LLaMA-Factory's `train_bash.py` flags (parsed with KnowTune's own table, not
// swift-argument-parser, to follow HfArgumentParser's conventions), started as one rank or under mpirun/srun.
import ArgumentParser
import Foundation
import KnowTuneDistributed
import KnowTuneGeneration
import KnowTuneModel
import KnowTunePrediction
import KnowTuneTensor
import KnowTuneTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune with LoRA (LLaMA-Factory 0.5.3 arguments; `knowtune train config.yaml` reads them from a file).",
        discussion: """
            Example: knowtune train --stage sft --model_name_or_path models/smollm2 --do_train --dataset dolly_train \
            --template alpaca --finetuning_type lora --lora_target q_proj,v_proj --output_dir checkpoint/dolly/sft
            Started without mpirun it is a 1-rank job; under `mpirun -np N` each rank trains its share of every batch.
            """)

    @Argument(parsing: .captureForPassthrough, help: "[config.yaml] --key value …")
    var tokens: [String] = []

    func run() throws {
        if tokens.contains("--help") || tokens.contains("-h") {
            print("usage: knowtune train [config.yaml] --key value …  (also --key=value; a bare boolean --key is true)\n")
            print(TrainingArgumentParser.helpText)
            return
        }
        // The collective watchdog is armed when MPI starts, so --collective_timeout (flag or file) is read before;
        // bad arguments are reported after MPI starts, by every rank agreeing on the parse below.
        if let early = try? TrainingArgumentParser.parse(tokens), early.givenKeys.contains("collective_timeout"),
           early.arguments.training.collectiveTimeout >= 0 {
            setenv("KNOWTUNE_COLLECTIVE_TIMEOUT", String(early.arguments.training.collectiveTimeout), 1)
        }
        let (communicator, rankLogger) = try startMPIJob()
        var logger = rankLogger
        do {
            let parsed = try Consensus.runAgreed(communicator: communicator, operation: "parse arguments") { () -> TrainingArgumentParser.Parsed in
                var parsed = try TrainingArgumentParser.parse(tokens)
                // One validation before anything loads, whichever workflows run.
                parsed.arguments.resolveDerivedDefaults()
                try parsed.arguments.validate()
                return parsed
            }
            if parsed.arguments.training.logAllRanks {
                logger = RankLogger(rank: communicator.rank, worldSize: communicator.size, hostname: communicator.hostname, allRanks: true)
            }
            if !parsed.ignoredFlags.isEmpty {
                logger.info("accepted without effect on CPU: " + parsed.ignoredFlags.map { "--\($0)" }.joined(separator: ", ")
                            + (parsed.ignoredFlags.contains("bf16") ? " (--base_dtype bf16 keeps the frozen base in bf16)" : ""))
            }
            let topology = try ThreadPlacement.apply(communicator: communicator)
            logger.info(topology)
            let arguments = parsed.arguments
            if arguments.training.doTrain || !arguments.training.doPredict {
                try TrainingWorkflow.run(arguments: arguments, communicator: communicator, logger: logger)
            }
            if arguments.training.doPredict {
                try PredictWorkflow.run(arguments: Self.predictionArguments(arguments), communicator: communicator, logger: logger)
            }
            try communicator.finalize()
        } catch let stopped as TrainingStopped {
            logger.info("stopped after step \(stopped.step); exiting 0")
            try? communicator.finalize()
        } catch {
            Consensus.terminate(after: error, communicator: communicator, logger: logger)
        }
    }

    /// The predict stage's view of the run; after training in the same run it predicts with the adapter just written
    /// (LLaMA-Factory does the same).
    static func predictionArguments(_ arguments: TrainingArguments) -> PredictionArguments {
        var predict = PredictionArguments()
        predict.modelNameOrPath = arguments.model.modelNameOrPath
        predict.adapterPaths = arguments.training.doTrain ? [arguments.training.outputDir] : arguments.model.adapterPaths
        predict.basePrecision = arguments.model.baseDtype
        predict.datasetNames = arguments.data.datasetNames
        predict.datasetDir = arguments.data.datasetDir
        predict.maxSamples = arguments.data.maxSamples
        predict.template = arguments.data.template
        predict.cutoffLength = arguments.data.cutoffLength
        predict.reservedLabelLength = arguments.data.reservedLabelLength
        predict.generation = GenerationConfiguration(arguments.generation, seed: UInt64(arguments.training.seed))
        predict.batchSize = arguments.training.perDeviceEvalBatchSize
        predict.outputDir = arguments.training.outputDir
        return predict
    }
}
