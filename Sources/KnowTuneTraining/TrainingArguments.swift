// Implements the resolved settings of a `knowtune train` run, with LLaMA-Factory 0.5.3 / HF defaults in one
// place (LLaMA-Factory 0.5.3's defaults); does not parse flags (TrainingArgumentParser) or run anything.
import Foundation
import KnowTuneModel
import KnowTuneTensor

public struct TrainingArguments: Codable, Equatable {
    // Model and adapters.
    public var modelNameOrPath = ""
    /// Comma list of PEFT adapter folders (LFDEC: --checkpoint_dir).
    public var adapterNameOrPath: String?
    /// LLaMA-Factory 0.5.3 `create_new_adapter` (LFDEC: `resume_lora_training` inverted).
    public var createNewAdapter = false
    public var refModel: String?
    public var refModelAdapters: String?

    // Stage and tuning.
    public var stage = TrainingStage.sft
    public var finetuningType = "lora"
    public var loraRank = 8
    public var loraAlpha: Double?
    public var loraDropout = 0.0
    public var loraTarget = "q_proj,v_proj"
    public var useRSLoRA = false
    public var dpoBeta = 0.1
    public var dpoLoss = DPOLoss.LossKind.sigmoid
    public var dpoFTX = 0.0
    public var plotLoss = false

    // Data.
    public var dataset = ""
    public var datasetDir = "data"
    public var template = "alpaca"
    public var cutoffLength = 1024
    public var reservedLabelLength = 1
    public var valSize = 0.0
    public var maxSamples: Int?
    public var trainOnPrompt = false

    // Trainer.
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

    // Generation (predict).
    public var doSample = true
    public var temperature = 0.95
    public var topP = 0.7
    public var topK = 50
    public var maxNewTokens = 512
    public var repetitionPenalty = 1.0

    // KnowTune's own.
    /// Most tokens one forward/backward holds (activation memory); larger batches run as micro-batches.
    public var tokenBudget = 1024
    /// Storage of the frozen base weights in training: fp32, bf16 (bf16 products, as `--bf16` autocast on GPU) or f16.
    public var baseDtype = BasePrecision.fp32
    public var collectiveTimeout = 1800.0
    public var logAllRanks = false

    public init() {}

    public var basePrecision: BasePrecision { baseDtype }

    /// The LoRA configuration the CLI asks for (ignored when continuing an adapter, which keeps its own).
    public func loraConfiguration() throws -> LoRAConfiguration {
        let configuration = LoRAConfiguration(rank: loraRank, alpha: loraAlpha.map(Float.init), dropout: Float(loraDropout),
                                              targets: try LoRAConfiguration.parseTargets(loraTarget), useRSLoRA: useRSLoRA)
        try configuration.validate()
        return configuration
    }

    public var datasetNames: [String] {
        dataset.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public var adapterPaths: [String] {
        (adapterNameOrPath ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// HF `__post_init__` consequences: eval turned on by an evaluation strategy, the best-model metric.
    public mutating func resolveDerivedDefaults() {
        if evaluationStrategy != .no { doEval = true }
        if loadBestModelAtEnd, metricForBestModel == nil { metricForBestModel = .loss }
        if let metric = metricForBestModel, greaterIsBetter == nil { greaterIsBetter = metric.greaterIsBetter }
        if evaluationStrategy == .steps, evalSteps == nil { evalSteps = loggingSteps }
    }

    /// HF's `__post_init__` rule for `load_best_model_at_end`: saves must coincide with evaluations, so the two
    /// strategies match and, by steps, the save interval is a multiple of the eval interval (both ratios, or both
    /// counts). Checked before anything loads; StepPlan checks the resolved step counts again.
    var bestModelCadenceProblem: String? {
        guard loadBestModelAtEnd else { return nil }
        if saveStrategy != evaluationStrategy {
            return "--load_best_model_at_end requires the save and eval strategy to match (save_strategy \(saveStrategy.rawValue), evaluation_strategy \(evaluationStrategy.rawValue))"
        }
        guard saveStrategy == .steps else { return nil }
        let eval = evalSteps ?? loggingSteps
        if eval < 1 || saveSteps < 1 {
            let (saveMillionths, evalMillionths) = (Int((saveSteps * 1e6).rounded()), Int((eval * 1e6).rounded()))
            if !(eval < 1 && saveSteps < 1) || evalMillionths == 0 || saveMillionths % evalMillionths != 0 {
                return "--load_best_model_at_end needs --save_steps (\(saveSteps)) to be a multiple of --eval_steps (\(eval)), both ratios or both step counts"
            }
        } else if Int(saveSteps) % max(Int(eval), 1) != 0 {
            return "--load_best_model_at_end needs --save_steps (\(Int(saveSteps))) to be a multiple of --eval_steps (\(Int(eval)))"
        }
        return nil
    }

    /// What `--stage dpo` does not do, refused rather than ignored.
    var dpoProblems: [String] {
        var problems: [String] = []
        if !doTrain { problems.append("--stage dpo needs --do_train") }
        if doEval || valSize > 1e-6 || loadBestModelAtEnd {
            problems.append("--stage dpo does not evaluate (no --do_eval, --val_size, --evaluation_strategy or --load_best_model_at_end)")
        }
        if refModelAdapters != nil, refModel == nil {
            // LLaMA-Factory reads ref_model_adapters only together with ref_model.
            problems.append("--ref_model_adapters needs --ref_model (the reference is otherwise the base model with the adapter disabled)")
        }
        if !(dpoBeta > 0) { problems.append("--dpo_beta must be positive") }
        if dpoFTX < 0 { problems.append("--dpo_ftx must be ≥ 0") }
        return problems
    }

    /// Checks values and combinations, collecting every problem into one message.
    public func validate() throws {
        var problems: [String] = []
        if modelNameOrPath.isEmpty { problems.append("--model_name_or_path is required") }
        if finetuningType != "lora" { problems.append("--finetuning_type \(finetuningType) is not supported (lora)") }
        if dataset.isEmpty { problems.append("--dataset is required") }
        if outputDir.isEmpty { problems.append("--output_dir is required") }
        if !doTrain && !doEval && !doPredict { problems.append("nothing to do: give --do_train, --do_eval or --do_predict") }
        if perDeviceTrainBatchSize < 1 || perDeviceEvalBatchSize < 1 { problems.append("batch sizes must be ≥ 1") }
        if gradientAccumulationSteps < 1 { problems.append("--gradient_accumulation_steps must be ≥ 1") }
        if !(learningRate > 0) { problems.append("--learning_rate must be positive") }
        if cutoffLength < 2 { problems.append("--cutoff_len must be ≥ 2") }
        if tokenBudget < 16 { problems.append("--token_budget must be ≥ 16") }
        if !(collectiveTimeout >= 0) || !collectiveTimeout.isFinite { problems.append("--collective_timeout must be a number of seconds ≥ 0 (0: never)") }
        if maxSteps <= 0 && !(numTrainEpochs > 0) && doTrain { problems.append("--num_train_epochs must be positive (or give --max_steps)") }
        if loadBestModelAtEnd && evaluationStrategy == .no { problems.append("--load_best_model_at_end needs --evaluation_strategy steps|epoch") }
        if loadBestModelAtEnd && valSize <= 1e-6 && doTrain { problems.append("--load_best_model_at_end needs a validation split (--val_size)") }
        if let problem = bestModelCadenceProblem { problems.append(problem) }
        if stage != .sft && predictWithGenerate { problems.append("`predict_with_generate` cannot be set as True except SFT.") }
        if stage == .sft && doPredict && !predictWithGenerate { problems.append("Please enable `predict_with_generate` to save model predictions.") }
        if stage != .sft && trainOnPrompt { problems.append("--train_on_prompt applies to SFT only (--stage \(stage.rawValue))") }
        if stage == .dpo { problems += dpoProblems }
        if !problems.isEmpty { throw KnowTuneError.invalidConfiguration(problems.joined(separator: "; ")) }
    }
}
