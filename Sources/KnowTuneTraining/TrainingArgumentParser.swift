// Implements `knowtune train`'s argument table with HfArgumentParser's conventions (a bare `--flag` is true,
// `--flag true|false|1|0` too; `--key value` or `--key=value`; unknown flags are errors), YAML/JSON config files
// through the same table, and the `--help` text generated from it (every key, its default, one line of meaning);
// does not validate combinations (TrainingArguments.validate does).
import Foundation
import KnowTuneData
import KnowTuneTensor

public enum TrainingArgumentParser {
    enum Setter {
        case string(WritableKeyPath<TrainingArguments, String>)
        case optionalString(WritableKeyPath<TrainingArguments, String?>)
        case int(WritableKeyPath<TrainingArguments, Int>)
        case optionalInt(WritableKeyPath<TrainingArguments, Int?>)
        case double(WritableKeyPath<TrainingArguments, Double>)
        case optionalDouble(WritableKeyPath<TrainingArguments, Double?>)
        case bool(WritableKeyPath<TrainingArguments, Bool>)
        case optionalBool(WritableKeyPath<TrainingArguments, Bool?>)
        /// `resume_lora_training` is `create_new_adapter` inverted.
        case invertedBool(WritableKeyPath<TrainingArguments, Bool>)
        /// One of a closed set of names (an enum's raw values); `None` clears an optional one.
        case choice(names: [String], optional: Bool, set: (inout TrainingArguments, String?) -> Void, get: (TrainingArguments) -> String?)
        /// Accepted for compatibility; changes nothing on CPU.
        case noEffect(String)

        static func choice<E: ArgumentChoice>(_ path: WritableKeyPath<TrainingArguments, E>) -> Setter {
            .choice(names: E.allCases.map(\.rawValue), optional: false, set: { arguments, name in
                if let name, let value = E(rawValue: name) { arguments[keyPath: path] = value }
            }, get: { $0[keyPath: path].rawValue })
        }

        static func optionalChoice<E: ArgumentChoice>(_ path: WritableKeyPath<TrainingArguments, E?>) -> Setter {
            .choice(names: E.allCases.map(\.rawValue), optional: true, set: { arguments, name in
                arguments[keyPath: path] = name.flatMap(E.init(rawValue:))
            }, get: { $0[keyPath: path]?.rawValue })
        }

        var isBoolean: Bool {
            switch self {
            case .bool, .optionalBool, .invertedBool: return true
            default: return false
            }
        }

        /// The value `arguments` holds, as a flag would spell it ("None" when unset).
        func value(in arguments: TrainingArguments) -> String {
            func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "None" }
            switch self {
            case let .string(path): return arguments[keyPath: path].isEmpty ? "\"\"" : arguments[keyPath: path]
            case let .optionalString(path): return text(arguments[keyPath: path])
            case let .int(path): return text(arguments[keyPath: path])
            case let .optionalInt(path): return text(arguments[keyPath: path])
            case let .double(path): return text(arguments[keyPath: path])
            case let .optionalDouble(path): return text(arguments[keyPath: path])
            case let .bool(path): return text(arguments[keyPath: path])
            case let .optionalBool(path): return text(arguments[keyPath: path])
            case let .invertedBool(path): return text(!arguments[keyPath: path])
            case let .choice(_, _, _, get): return text(get(arguments))
            case .noEffect: return "-"
            }
        }
    }

    /// One accepted key: how it sets the arguments and one line of meaning for `--help`.
    struct Key {
        let name: String
        let setter: Setter
        let help: String
        init(_ name: String, _ setter: Setter, _ help: String) {
            self.name = name
            self.setter = setter
            self.help = help
        }
    }

    /// Every accepted key in LLaMA-Factory's groups (model, data, finetuning, training, generation), then KnowTune's
    /// own and the flags that have no effect on CPU. Defaults are TrainingArguments' own.
    static let keys: [Key] = [
        // Model.
        Key("model_name_or_path", .string(\.model.modelNameOrPath), "base model: a .gguf file, a folder with one, or an HF folder"),
        Key("adapter_name_or_path", .optionalString(\.model.adapterNameOrPath), "PEFT adapter folder(s), comma-separated: training merges all but the last and continues the last; predict merges all"),
        Key("checkpoint_dir", .optionalString(\.model.adapterNameOrPath), "the seed's name for --adapter_name_or_path"),
        Key("create_new_adapter", .bool(\.model.createNewAdapter), "with adapters given: merge them all and train a new LoRA"),
        Key("resume_lora_training", .invertedBool(\.model.createNewAdapter), "the seed's --create_new_adapter, inverted"),
        Key("ref_model", .optionalString(\.model.refModel), "DPO reference model (default: the base without the adapter)"),
        Key("ref_model_adapters", .optionalString(\.model.refModelAdapters), "adapters merged into --ref_model"),
        // Data.
        Key("dataset", .string(\.data.dataset), "dataset names from dataset_info.json, comma-separated"),
        Key("dataset_dir", .string(\.data.datasetDir), "folder holding dataset_info.json"),
        Key("template", .choice(\.data.template), "prompt template"),
        Key("cutoff_len", .int(\.data.cutoffLength), "most tokens of prompt + response; longer pairs are cut in proportion"),
        Key("reserved_label_len", .int(\.data.reservedLabelLength), "tokens kept for the response when cutting"),
        Key("val_size", .double(\.data.valSize), "validation split: a count if > 1, else a fraction"),
        Key("max_samples", .optionalInt(\.data.maxSamples), "use only the first N records of each dataset"),
        Key("train_on_prompt", .bool(\.data.trainOnPrompt), "SFT: put the prompt tokens under the loss too"),
        // Finetuning.
        Key("stage", .choice(\.finetuning.stage), "training stage"),
        Key("finetuning_type", .choice(\.finetuning.finetuningType), "adapter kind (LoRA only)"),
        Key("lora_rank", .int(\.finetuning.loraRank), "LoRA rank r"),
        Key("lora_alpha", .optionalDouble(\.finetuning.loraAlpha), "LoRA alpha (None: 2 × r)"),
        Key("lora_dropout", .double(\.finetuning.loraDropout), "dropout on the LoRA input"),
        Key("lora_target", .string(\.finetuning.loraTarget), "projections to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all"),
        Key("use_rslora", .bool(\.finetuning.useRSLoRA), "rank-stabilised scaling alpha/sqrt(r)"),
        Key("dpo_beta", .double(\.finetuning.dpoBeta), "DPO beta"),
        Key("dpo_loss", .choice(\.finetuning.dpoLoss), "DPO loss"),
        Key("dpo_ftx", .double(\.finetuning.dpoFTX), "DPO: weight of the chosen answers' SFT loss"),
        Key("dpo_group_by_prompt", .bool(\.finetuning.dpoGroupByPrompt),
            "DPO: shuffle and batch the pairs of one prompt together and compute their shared sequences once (false: LF's pair-level order)"),
        Key("plot_loss", .bool(\.finetuning.plotLoss), "write training_loss.svg and training_eval_loss.svg"),
        // Training.
        Key("output_dir", .string(\.training.outputDir), "where adapters, checkpoints and logs go"),
        Key("overwrite_output_dir", .bool(\.training.overwriteOutputDir), "train into a non-empty output folder"),
        Key("do_train", .bool(\.training.doTrain), "train"),
        Key("do_eval", .bool(\.training.doEval), "evaluate the validation split (loss, perplexity)"),
        Key("do_predict", .bool(\.training.doPredict), "generate answers for --dataset (needs --predict_with_generate)"),
        Key("per_device_train_batch_size", .int(\.training.perDeviceTrainBatchSize), "examples per rank per micro-step"),
        Key("per_device_eval_batch_size", .int(\.training.perDeviceEvalBatchSize), "prompts per rank decoded together in predict"),
        Key("gradient_accumulation_steps", .int(\.training.gradientAccumulationSteps), "micro-steps per optimizer step"),
        Key("learning_rate", .double(\.training.learningRate), "AdamW peak learning rate"),
        Key("weight_decay", .double(\.training.weightDecay), "AdamW weight decay"),
        Key("adam_beta1", .double(\.training.adamBeta1), "AdamW beta1"),
        Key("adam_beta2", .double(\.training.adamBeta2), "AdamW beta2"),
        Key("adam_epsilon", .double(\.training.adamEpsilon), "AdamW epsilon"),
        Key("max_grad_norm", .double(\.training.maxGradNorm), "clip the global gradient norm (0: off)"),
        Key("num_train_epochs", .double(\.training.numTrainEpochs), "epochs"),
        Key("max_steps", .int(\.training.maxSteps), "optimizer steps, overriding epochs when > 0"),
        Key("lr_scheduler_type", .choice(\.training.lrSchedulerType), "learning-rate schedule"),
        Key("warmup_ratio", .double(\.training.warmupRatio), "warm-up as a fraction of the steps"),
        Key("warmup_steps", .int(\.training.warmupSteps), "warm-up steps (wins over the ratio)"),
        Key("logging_steps", .double(\.training.loggingSteps), "log every N steps (a ratio if < 1)"),
        Key("evaluation_strategy", .choice(\.training.evaluationStrategy), "when to evaluate"),
        Key("eval_strategy", .choice(\.training.evaluationStrategy), "newer name of --evaluation_strategy"),
        Key("eval_steps", .optionalDouble(\.training.evalSteps), "evaluate every N steps (a ratio if < 1; None: logging_steps)"),
        Key("save_strategy", .choice(\.training.saveStrategy), "when to write checkpoints"),
        Key("save_steps", .double(\.training.saveSteps), "checkpoint every N steps (a ratio if < 1)"),
        Key("save_total_limit", .optionalInt(\.training.saveTotalLimit), "keep the newest N checkpoints (and the best)"),
        Key("seed", .int(\.training.seed), "seed of the LoRA init, data order, split, dropout and sampling"),
        Key("load_best_model_at_end", .bool(\.training.loadBestModelAtEnd), "restore the adapter with the best --metric_for_best_model at the end"),
        Key("metric_for_best_model", .optionalChoice(\.training.metricForBestModel), "what the best model is chosen by (None: loss)"),
        Key("greater_is_better", .optionalBool(\.training.greaterIsBetter), "direction of the metric (None: false for a loss)"),
        Key("resume_from_checkpoint", .optionalString(\.training.resumeFromCheckpoint), "a checkpoint folder, or latest"),
        Key("predict_with_generate", .bool(\.training.predictWithGenerate), "with --do_predict: generate and score the answers"),
        Key("gradient_checkpointing", .optionalBool(\.training.gradientCheckpointing),
            "recompute each layer's activations in backward (None: only when the saved ones would not fit the node's memory)"),
        Key("disable_gradient_checkpointing", .bool(\.model.disableGradientCheckpointing), "never recompute activations"),
        // Generation.
        Key("do_sample", .bool(\.generation.doSample), "sample (false: greedy)"),
        Key("temperature", .double(\.generation.temperature), "sampling temperature"),
        Key("top_p", .double(\.generation.topP), "nucleus sampling mass"),
        Key("top_k", .int(\.generation.topK), "sample among the k most likely tokens"),
        Key("max_new_tokens", .int(\.generation.maxNewTokens), "most generated tokens per answer"),
        Key("repetition_penalty", .double(\.generation.repetitionPenalty), "HF repetition penalty (1: off)"),
        // KnowTune's own.
        Key("token_budget", .int(\.training.tokenBudget), "most tokens per forward/backward; larger batches run as micro-batches"),
        Key("base_dtype", .choice(\.model.baseDtype), "precision the frozen base is kept in"),
        Key("collective_timeout", .double(\.training.collectiveTimeout), "seconds before a stuck collective aborts the job (0: never)"),
        Key("log_all_ranks", .bool(\.training.logAllRanks), "every rank logs INFO lines"),
    ] + ["bf16", "fp16", "overwrite_cache", "preprocessing_num_workers", "report_to", "ddp_timeout", "logging_dir",
         "ignore_pad_token_for_loss", "flash_attn", "ddp_find_unused_parameters"].map {
        Key($0, .noEffect($0), "accepted, no effect on CPU")
    }

    static let table: [String: Setter] = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0.setter) })

    /// `knowtune train --help`: every key with its default and meaning, in the table's order.
    public static var helpText: String {
        let defaults = TrainingArguments()
        let width = keys.map(\.name.count).max() ?? 0
        return keys.map { key in
            var line = "  --" + key.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + key.help
            if case let .choice(names, _, _, _) = key.setter { line += " (" + names.joined(separator: ", ") + ")" }
            if case .noEffect = key.setter { return line }
            return line + "; default " + key.setter.value(in: defaults)
        }.joined(separator: "\n")
    }

    public struct Parsed {
        public var arguments: TrainingArguments
        /// Flags that were accepted but change nothing on CPU (the CLI says so once).
        public var ignoredFlags: [String]
        /// Every key the command line or the configuration file gave.
        public var givenKeys: Set<String>
    }

    static func parseBool(_ text: String, key: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "1", "yes", "y", "t", "on": return true
        case "false", "0", "no", "n", "f", "off": return false
        default: throw KnowTuneError.invalidConfiguration("--\(key) expects true/false/1/0, got '\(text)'")
        }
    }

    static func apply(_ key: String, _ value: String, to parsed: inout Parsed) throws {
        guard let setter = table[key] else {
            throw KnowTuneError.invalidConfiguration("unknown argument --\(key) (LLaMA-Factory rejects unused arguments too; see knowtune train --help)")
        }
        func number<T: LosslessStringConvertible>(_: T.Type) throws -> T {
            guard let parsed = T(value.trimmingCharacters(in: .whitespaces)) else {
                throw KnowTuneError.invalidConfiguration("--\(key) expects a \(T.self == Int.self ? "whole number" : "number"), got '\(value)'")
            }
            return parsed
        }
        let isNone = value == "None" || value == "null"
        parsed.givenKeys.insert(key)
        switch setter {
        case let .string(path): parsed.arguments[keyPath: path] = value
        case let .optionalString(path): parsed.arguments[keyPath: path] = isNone ? nil : value
        case let .int(path): parsed.arguments[keyPath: path] = try number(Int.self)
        case let .optionalInt(path): parsed.arguments[keyPath: path] = isNone ? nil : try number(Int.self)
        case let .double(path): parsed.arguments[keyPath: path] = try number(Double.self)
        case let .optionalDouble(path): parsed.arguments[keyPath: path] = isNone ? nil : try number(Double.self)
        case let .bool(path): parsed.arguments[keyPath: path] = try parseBool(value, key: key)
        case let .optionalBool(path): parsed.arguments[keyPath: path] = isNone ? nil : try parseBool(value, key: key)
        case let .invertedBool(path): parsed.arguments[keyPath: path] = !(try parseBool(value, key: key))
        case let .choice(names, optional, set, _):
            if isNone, optional {
                set(&parsed.arguments, nil)
            } else {
                guard names.contains(value) else {
                    throw KnowTuneError.invalidConfiguration("--\(key) \(value) is not supported (\(names.joined(separator: ", ")))")
                }
                set(&parsed.arguments, value)
            }
        case let .noEffect(name): if !parsed.ignoredFlags.contains(name) { parsed.ignoredFlags.append(name) }
        }
    }

    /// Parses `[config.yaml|config.json] --key value …`; command-line flags override the file.
    public static func parse(_ tokens: [String]) throws -> Parsed {
        var parsed = Parsed(arguments: TrainingArguments(), ignoredFlags: [], givenKeys: [])
        var remaining = tokens[...]
        if let first = remaining.first, !first.hasPrefix("--") {
            try loadConfigurationFile(first, into: &parsed)
            remaining = remaining.dropFirst()
        }
        while let token = remaining.first {
            remaining = remaining.dropFirst()
            guard token.hasPrefix("--"), token.count > 2 else {
                throw KnowTuneError.invalidConfiguration("unexpected argument '\(token)' (flags look like --key value)")
            }
            var key = String(token.dropFirst(2))
            var value: String?
            if let equals = key.firstIndex(of: "=") {
                value = String(key[key.index(after: equals)...])
                key = String(key[..<equals])
            }
            key = key.replacingOccurrences(of: "-", with: "_")
            guard let setter = table[key] else {
                throw KnowTuneError.invalidConfiguration("unknown argument --\(key) (LLaMA-Factory rejects unused arguments too; see knowtune train --help)")
            }
            if value == nil {
                let next = remaining.first
                if setter.isBoolean || { if case .noEffect = setter { return true } else { return false } }() {
                    // A bare boolean flag is true; a following literal sets it explicitly.
                    if let next, (try? parseBool(next, key: key)) != nil {
                        value = next
                        remaining = remaining.dropFirst()
                    } else if case .noEffect = setter, let next, !next.hasPrefix("--") {
                        value = next
                        remaining = remaining.dropFirst()
                    } else {
                        value = "true"
                    }
                } else {
                    guard let next, !next.hasPrefix("--") || Double(next) != nil else {
                        throw KnowTuneError.invalidConfiguration("--\(key) needs a value")
                    }
                    value = next
                    remaining = remaining.dropFirst()
                }
            }
            try apply(key, value ?? "", to: &parsed)
        }
        return parsed
    }

    /// A flat mapping of the same keys, in YAML (or JSON, which YAML reads too).
    static func loadConfigurationFile(_ path: String, into parsed: inout Parsed) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "configuration file not found")
        }
        let arguments = try ConfigurationYAML.arguments(in: data, path: path)
        for (key, text) in arguments {
            do { try apply(key, text, to: &parsed) } catch let error as KnowTuneError {
                throw KnowTuneError.badFormat(path: path, reason: "\(error)")
            }
        }
    }
}
