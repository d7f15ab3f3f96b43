// Implements `knowtune train`'s argument table with HfArgumentParser's conventions (a bare `--flag` is true,
// `--flag true|false|1|0` too; `--key value` or `--key=value`; unknown flags are errors) and YAML/JSON config
// files with the same keys; does not validate combinations (TrainingArguments.validate does).
import Foundation
import KnowTuneTensor
import Yams

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
        /// Accepted for compatibility; changes nothing on CPU.
        case noEffect(String)

        var isBoolean: Bool {
            switch self {
            case .bool, .optionalBool, .invertedBool: return true
            default: return false
            }
        }
    }

    /// Every accepted key (LLaMA-Factory 0.5.3 names, the seed's older spellings, KnowTune's own).
    static let table: [String: Setter] = [
        "model_name_or_path": .string(\.modelNameOrPath),
        "adapter_name_or_path": .optionalString(\.adapterNameOrPath),
        "checkpoint_dir": .optionalString(\.adapterNameOrPath),
        "create_new_adapter": .bool(\.createNewAdapter),
        "resume_lora_training": .invertedBool(\.createNewAdapter),
        "ref_model": .optionalString(\.refModel),
        "ref_model_adapters": .optionalString(\.refModelAdapters),
        "stage": .string(\.stage),
        "finetuning_type": .string(\.finetuningType),
        "lora_rank": .int(\.loraRank),
        "lora_alpha": .optionalDouble(\.loraAlpha),
        "lora_dropout": .double(\.loraDropout),
        "lora_target": .string(\.loraTarget),
        "use_rslora": .bool(\.useRSLoRA),
        "dpo_beta": .double(\.dpoBeta),
        "dpo_loss": .string(\.dpoLoss),
        "dpo_ftx": .double(\.dpoFTX),
        "plot_loss": .bool(\.plotLoss),
        "dataset": .string(\.dataset),
        "dataset_dir": .string(\.datasetDir),
        "template": .string(\.template),
        "cutoff_len": .int(\.cutoffLength),
        "reserved_label_len": .int(\.reservedLabelLength),
        "val_size": .double(\.valSize),
        "max_samples": .optionalInt(\.maxSamples),
        "train_on_prompt": .bool(\.trainOnPrompt),
        "output_dir": .string(\.outputDir),
        "overwrite_output_dir": .bool(\.overwriteOutputDir),
        "do_train": .bool(\.doTrain),
        "do_eval": .bool(\.doEval),
        "do_predict": .bool(\.doPredict),
        "per_device_train_batch_size": .int(\.perDeviceTrainBatchSize),
        "per_device_eval_batch_size": .int(\.perDeviceEvalBatchSize),
        "gradient_accumulation_steps": .int(\.gradientAccumulationSteps),
        "learning_rate": .double(\.learningRate),
        "weight_decay": .double(\.weightDecay),
        "adam_beta1": .double(\.adamBeta1),
        "adam_beta2": .double(\.adamBeta2),
        "adam_epsilon": .double(\.adamEpsilon),
        "max_grad_norm": .double(\.maxGradNorm),
        "num_train_epochs": .double(\.numTrainEpochs),
        "max_steps": .int(\.maxSteps),
        "lr_scheduler_type": .string(\.lrSchedulerType),
        "warmup_ratio": .double(\.warmupRatio),
        "warmup_steps": .int(\.warmupSteps),
        "logging_steps": .double(\.loggingSteps),
        "evaluation_strategy": .string(\.evaluationStrategy),
        "eval_strategy": .string(\.evaluationStrategy),
        "eval_steps": .optionalDouble(\.evalSteps),
        "save_strategy": .string(\.saveStrategy),
        "save_steps": .double(\.saveSteps),
        "save_total_limit": .optionalInt(\.saveTotalLimit),
        "seed": .int(\.seed),
        "load_best_model_at_end": .bool(\.loadBestModelAtEnd),
        "metric_for_best_model": .optionalString(\.metricForBestModel),
        "greater_is_better": .optionalBool(\.greaterIsBetter),
        "resume_from_checkpoint": .optionalString(\.resumeFromCheckpoint),
        "predict_with_generate": .bool(\.predictWithGenerate),
        "do_sample": .bool(\.doSample),
        "temperature": .double(\.temperature),
        "top_p": .double(\.topP),
        "top_k": .int(\.topK),
        "max_new_tokens": .int(\.maxNewTokens),
        "repetition_penalty": .double(\.repetitionPenalty),
        "token_budget": .int(\.tokenBudget),
        "base_dtype": .string(\.baseDtype),
        "collective_timeout": .double(\.collectiveTimeout),
        "log_all_ranks": .bool(\.logAllRanks),
        "bf16": .noEffect("bf16"), "fp16": .noEffect("fp16"), "overwrite_cache": .noEffect("overwrite_cache"),
        "preprocessing_num_workers": .noEffect("preprocessing_num_workers"), "report_to": .noEffect("report_to"),
        "ddp_timeout": .noEffect("ddp_timeout"), "logging_dir": .noEffect("logging_dir"),
        "ignore_pad_token_for_loss": .noEffect("ignore_pad_token_for_loss"), "flash_attn": .noEffect("flash_attn"),
        "gradient_checkpointing": .noEffect("gradient_checkpointing"), "ddp_find_unused_parameters": .noEffect("ddp_find_unused_parameters"),
    ]

    public struct Parsed {
        public var arguments: TrainingArguments
        /// Flags that were accepted but change nothing on CPU (the CLI says so once).
        public var ignoredFlags: [String]
    }

    static func parseBool(_ text: String, key: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "1", "yes", "y", "t", "on": return true
        case "false", "0", "no", "n", "f", "off": return false
        default: throw KnowTuneError.invalidConfiguration("--\(key) expects true/false/1/0, got '\(text)'")
        }
    }

    static func apply(_ key: String, _ value: String, to arguments: inout TrainingArguments, ignored: inout [String]) throws {
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
        switch setter {
        case let .string(path): arguments[keyPath: path] = value
        case let .optionalString(path): arguments[keyPath: path] = isNone ? nil : value
        case let .int(path): arguments[keyPath: path] = try number(Int.self)
        case let .optionalInt(path): arguments[keyPath: path] = isNone ? nil : try number(Int.self)
        case let .double(path): arguments[keyPath: path] = try number(Double.self)
        case let .optionalDouble(path): arguments[keyPath: path] = isNone ? nil : try number(Double.self)
        case let .bool(path): arguments[keyPath: path] = try parseBool(value, key: key)
        case let .optionalBool(path): arguments[keyPath: path] = isNone ? nil : try parseBool(value, key: key)
        case let .invertedBool(path): arguments[keyPath: path] = !(try parseBool(value, key: key))
        case let .noEffect(name): if !ignored.contains(name) { ignored.append(name) }
        }
    }

    /// Parses `[config.yaml|config.json] --key value …`; command-line flags override the file.
    public static func parse(_ tokens: [String]) throws -> Parsed {
        var arguments = TrainingArguments()
        var ignored: [String] = []
        var remaining = tokens[...]
        if let first = remaining.first, !first.hasPrefix("--") {
            try loadConfigurationFile(first, into: &arguments, ignored: &ignored)
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
            try apply(key, value ?? "", to: &arguments, ignored: &ignored)
        }
        return Parsed(arguments: arguments, ignoredFlags: ignored)
    }

    /// A flat mapping of the same keys, in YAML (or JSON, which YAML reads too).
    static func loadConfigurationFile(_ path: String, into arguments: inout TrainingArguments, ignored: inout [String]) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "configuration file not found")
        }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) } catch {
            throw KnowTuneError.badFormat(path: path, reason: "not valid YAML: \(error)")
        }
        guard let mapping = loaded as? [String: Any] else {
            throw KnowTuneError.badFormat(path: path, reason: "expected a mapping of argument names to values")
        }
        for key in mapping.keys.sorted() {
            guard let value = mapping[key] else { continue }
            let text: String
            switch value {
            case let bool as Bool: text = bool ? "true" : "false"
            case let list as [Any]: text = list.map { "\($0)" }.joined(separator: ",")
            case is NSNull: text = "None"
            default: text = "\(value)"
            }
            do { try apply(key, text, to: &arguments, ignored: &ignored) } catch let error as KnowTuneError {
                throw KnowTuneError.badFormat(path: path, reason: "\(error)")
            }
        }
    }
}
