// Implements the options every model-using subcommand shares (LLaMA-Factory spellings) and model loading with
// the load-time report; does not parse training flags (`train` has its own table).
import ArgumentParser
import Foundation
import KnowTuneModel
import KnowTuneTensor

struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model_name_or_path"), help: "A .gguf file, a folder holding one .gguf, or an HF folder (config.json + *.safetensors).")
    var modelPath: String

    @Option(name: .customLong("adapter_name_or_path"), help: "PEFT LoRA adapter folder(s), comma-separated (adapter_config.json + adapter_model.safetensors).")
    var adapterPath: String?

    @Option(name: .customLong("base_dtype"), help: ArgumentHelp(BaseDtypeOption.help))
    var baseDtype = "fp32"

    var adapterPaths: [String] {
        (adapterPath ?? "").commaSeparatedItems
    }

    func validate() throws { _ = try BaseDtypeOption.precision(baseDtype, option: "--base_dtype") }

    /// Loads the model with every adapter merged into it (W + s·B·A, in the order given: LLaMA-Factory 0.5.3 merges all
    /// adapters for inference), printing the parameter counts to stderr.
    func load() throws -> LoadedModel {
        let started = Date()
        let model = try ModelLoader.load(modelPath, precision: try BaseDtypeOption.precision(baseDtype, option: "--base_dtype"))
        let c = model.configuration
        logToStandardError(String(format: "loaded %@ [%@]: %d layers, hidden %d, %d heads (%d kv), vocab %d; %@ parameters in %.1fs",
                                  model.source, model.format, c.layerCount, c.hiddenSize, c.headCount, c.kvHeadCount,
                                  c.vocabularySize, c.parameterCount.formatted(), Date().timeIntervalSince(started)))
        for (path, lora) in zip(adapterPaths, try LoRAMerger.mergeAdapters(at: adapterPaths, into: model.weights)) {
            logToStandardError(String(format: "adapter %@ merged: r=%d alpha=%g targets=%@ (%@ parameters)",
                                      path, lora.layout.configuration.rank, lora.layout.configuration.alpha,
                                      lora.layout.configuration.targets.map(\.moduleName).joined(separator: ","), lora.count.formatted()))
        }
        return model
    }
}

/// `--base_dtype` and `--teacher_base_dtype`: the base precision by name, refused with the accepted names.
enum BaseDtypeOption {
    static let help = "The frozen base's precision in memory: fp32, bf16, f16, or ggml blocks q8_0, q4_0, q4_k (QLoRA-style)."

    static func precision(_ text: String, option: String) throws -> BasePrecision {
        guard let precision = BasePrecision(rawValue: text) else { throw ValidationError(BasePrecision.unsupported(text, option: option)) }
        return precision
    }
}

extension Int {
    /// 1234567 → "1,234,567".
    func formatted() -> String {
        let digits = String(Swift.abs(self))
        var groups: [Substring] = []
        var end = digits.endIndex
        while end > digits.startIndex {
            let start = digits.index(end, offsetBy: -3, limitedBy: digits.startIndex) ?? digits.startIndex
            groups.insert(digits[start..<end], at: 0)
            end = start
        }
        return (self < 0 ? "-" : "") + groups.joined(separator: ",")
    }
}
