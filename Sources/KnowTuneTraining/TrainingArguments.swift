// Implements the settings of a `knowtune train` run as LLaMA-Factory 0.5.3's argument groups, the defaults HF derives
// from them and the one validation of values and combinations; does not parse flags (TrainingArgumentParser).
import Foundation
import KnowTuneData
import KnowTuneTensor

/// A `knowtune train` run's settings in LLaMA-Factory's argument groups; each default lives in its group's struct.
public struct TrainingArguments: Codable, Equatable {
    public var model = ModelArguments()
    public var data = DataArguments()
    public var finetuning = FinetuningArguments()
    public var training = TrainerArguments()
    public var generation = GeneratingArguments()

    public init() {}

    /// HF `__post_init__` consequences: eval turned on by an evaluation strategy, the best-model metric.
    public mutating func resolveDerivedDefaults() {
        if training.evaluationStrategy != .no { training.doEval = true }
        if training.loadBestModelAtEnd, training.metricForBestModel == nil { training.metricForBestModel = .loss }
        if let metric = training.metricForBestModel, training.greaterIsBetter == nil { training.greaterIsBetter = metric.greaterIsBetter }
        if training.evaluationStrategy == .steps, training.evalSteps == nil { training.evalSteps = training.loggingSteps }
    }

    /// HF's `__post_init__` rule for `load_best_model_at_end`: saves must coincide with evaluations, so the two
    /// strategies match and, by steps, the save interval is a multiple of the eval interval (both ratios, or both
    /// counts). Checked before anything loads; StepPlan checks the resolved step counts again.
    var bestModelCadenceProblem: String? {
        guard training.loadBestModelAtEnd else { return nil }
        if training.saveStrategy != training.evaluationStrategy {
            return "--load_best_model_at_end requires the save and eval strategy to match (save_strategy \(training.saveStrategy.rawValue), evaluation_strategy \(training.evaluationStrategy.rawValue))"
        }
        guard training.saveStrategy == .steps else { return nil }
        let eval = training.evalSteps ?? training.loggingSteps
        if eval < 1 || training.saveSteps < 1 {
            let (saveMillionths, evalMillionths) = (Int((training.saveSteps * 1e6).rounded()), Int((eval * 1e6).rounded()))
            if !(eval < 1 && training.saveSteps < 1) || evalMillionths == 0 || saveMillionths % evalMillionths != 0 {
                return "--load_best_model_at_end needs --save_steps (\(training.saveSteps)) to be a multiple of --eval_steps (\(eval)), both ratios or both step counts"
            }
        } else if Int(training.saveSteps) % max(Int(eval), 1) != 0 {
            return "--load_best_model_at_end needs --save_steps (\(Int(training.saveSteps))) to be a multiple of --eval_steps (\(Int(eval)))"
        }
        return nil
    }

    /// What `--stage dpo` does not do, refused rather than ignored.
    var dpoProblems: [String] {
        var problems: [String] = []
        if !training.doTrain { problems.append("--stage dpo needs --do_train") }
        if training.doEval || data.valSize > 1e-6 || training.loadBestModelAtEnd {
            problems.append("--stage dpo does not evaluate (no --do_eval, --val_size, --evaluation_strategy or --load_best_model_at_end)")
        }
        if model.refModelAdapters != nil, model.refModel == nil {
            // LLaMA-Factory reads ref_model_adapters only together with ref_model.
            problems.append("--ref_model_adapters needs --ref_model (the reference is otherwise the base model with the adapter disabled)")
        }
        if !(finetuning.dpoBeta > 0) { problems.append("--dpo_beta must be positive") }
        if finetuning.dpoFTX < 0 { problems.append("--dpo_ftx must be ≥ 0") }
        return problems
    }

    /// Checks values and combinations, collecting every problem into one message.
    public func validate() throws {
        var problems: [String] = []
        if model.modelNameOrPath.isEmpty { problems.append("--model_name_or_path is required") }
        if data.dataset.isEmpty { problems.append("--dataset is required") }
        if training.outputDir.isEmpty { problems.append("--output_dir is required") }
        if !training.doTrain && !training.doEval && !training.doPredict { problems.append("nothing to do: give --do_train, --do_eval or --do_predict") }
        if training.perDeviceTrainBatchSize < 1 || training.perDeviceEvalBatchSize < 1 { problems.append("batch sizes must be ≥ 1") }
        if training.gradientAccumulationSteps < 1 { problems.append("--gradient_accumulation_steps must be ≥ 1") }
        if !(training.learningRate > 0) { problems.append("--learning_rate must be positive") }
        if data.cutoffLength < 2 { problems.append("--cutoff_len must be ≥ 2") }
        if training.tokenBudget < 16 { problems.append("--token_budget must be ≥ 16") }
        if !(training.collectiveTimeout >= 0) || !training.collectiveTimeout.isFinite { problems.append("--collective_timeout must be a number of seconds ≥ 0 (0: never)") }
        if training.maxSteps <= 0 && !(training.numTrainEpochs > 0) && training.doTrain { problems.append("--num_train_epochs must be positive (or give --max_steps)") }
        if training.loadBestModelAtEnd && training.evaluationStrategy == .no { problems.append("--load_best_model_at_end needs --evaluation_strategy steps|epoch") }
        if training.loadBestModelAtEnd && data.valSize <= 1e-6 && training.doTrain { problems.append("--load_best_model_at_end needs a validation split (--val_size)") }
        if let problem = bestModelCadenceProblem { problems.append(problem) }
        if finetuning.stage != .sft && training.predictWithGenerate { problems.append("`predict_with_generate` cannot be set as True except SFT.") }
        if finetuning.stage == .sft && training.doPredict && !training.predictWithGenerate { problems.append("Please enable `predict_with_generate` to save model predictions.") }
        if finetuning.stage != .sft && data.trainOnPrompt { problems.append("--train_on_prompt applies to SFT only (--stage \(finetuning.stage.rawValue))") }
        if finetuning.stage == .dpo { problems += dpoProblems }
        if model.disableGradientCheckpointing && training.gradientCheckpointing == true {
            problems.append("--gradient_checkpointing and --disable_gradient_checkpointing contradict each other")
        }
        if !problems.isEmpty { throw KnowTuneError.invalidConfiguration(problems.joined(separator: "; ")) }
    }
}
