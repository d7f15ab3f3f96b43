// Implements reading and writing LoRA adapters in PEFT's folder format (adapter_config.json +
// adapter_model.safetensors, fp32, PEFT key names, A [r,in], B [out,r]); does not train or merge.
import Foundation
import KnowTuneTensor

public enum PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// Reads the LoRA hyper-parameters from adapter_config.json.
    public static func configuration(folder: String) throws -> LoRAConfiguration {
        let path = (folder as NSString).appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no adapter_config.json (is \(folder) a PEFT adapter folder?)")
        }
        // Wrong types are refused, never read as a default: "r": "8" or "lora_alpha": "sixteen" is a damaged file.
        let fields = try JSONFields(try? JSONSerialization.jsonObject(with: data), path: path, place: "the configuration")
        if let type = try fields.string("peft_type"), type != "LORA" {
            throw KnowTuneError.unsupported(what: "peft_type \(type) in \(path)", supported: "LORA")
        }
        guard let rankValue = try fields.number("r") else { throw KnowTuneError.badFormat(path: path, reason: "missing field r") }
        guard let rank = Int(exactly: rankValue) else { throw fields.wrongType("r", expected: "a whole number") }
        let alpha = try fields.number("lora_alpha").map(Float.init) ?? Float(rank)
        let dropout = try fields.number("lora_dropout").map(Float.init) ?? 0
        let useRSLoRA = try fields.bool("use_rslora") ?? false
        let names: [String]
        if let list = fields.object["target_modules"] as? [String] { names = list }
        else if let single = fields.object["target_modules"] as? String { names = [single] }
        else { throw fields.wrongType("target_modules", expected: "a module name or a list of them") }
        let targets = try LoRAConfiguration.parseTargets(names.joined(separator: ","))
        let configuration = LoRAConfiguration(rank: rank, alpha: alpha, dropout: dropout, targets: targets, useRSLoRA: useRSLoRA)
        do { try configuration.validate() } catch { throw KnowTuneError.badFormat(path: path, reason: "\(error)") }
        return configuration
    }

    /// Loads an adapter for `model`, checking every tensor's presence and shape and reporting all problems at once.
    public static func load(folder: String, model: LlamaConfiguration) throws -> LoRABuffer {
        let lora = try configuration(folder: folder)
        let layout = LoRALayout(model: model, lora: lora)
        let path = (folder as NSString).appendingPathComponent(weightsFile)
        let file = try SafeTensorsFile(path: path)
        let buffer = LoRABuffer(layout: layout)
        var problems: [String] = []
        let expected = Set(layout.namedTensors.map(\.name))
        for tensor in layout.namedTensors {
            guard let info = file.tensors[tensor.name] else { problems.append("missing \(tensor.name)"); continue }
            guard info.shape == tensor.shape else {
                problems.append("\(tensor.name) has shape \(info.shape), this model needs \(tensor.shape)")
                continue
            }
            try file.read(tensor.name, into: buffer.values + tensor.offset)
        }
        let unexpected = file.tensors.keys.filter { !expected.contains($0) && $0.contains("lora_") }.sorted()
        if !unexpected.isEmpty { problems.append("unexpected tensors: \(unexpected.prefix(3).joined(separator: ", "))\(unexpected.count > 3 ? " …" : "")") }
        if !problems.isEmpty {
            throw KnowTuneError.badFormat(
                path: path,
                reason: "adapter does not fit this base model (\(model.layerCount) layers, hidden \(model.hiddenSize)): " +
                    problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; and \(problems.count - 5) more" : ""))
        }
        return buffer
    }

    /// Writes the adapter folder (created if needed) so that `PeftModel.from_pretrained` loads it.
    public static func save(_ buffer: LoRABuffer, to folder: String, baseModel: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lora = buffer.layout.configuration
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": baseModel,
            "r": lora.rank, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
            "target_modules": lora.targets.map(\.moduleName), "bias": "none", "fan_in_fan_out": false,
            "inference_mode": true, "init_lora_weights": true, "use_rslora": lora.useRSLoRA, "use_dora": false,
            "modules_to_save": NSNull(), "layers_to_transform": NSNull(), "layers_pattern": NSNull(),
            "rank_pattern": [String: Any](), "alpha_pattern": [String: Any](), "revision": NSNull(),
        ]
        let configData = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try configData.write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(configFile)), options: .atomic)
        let tensors = buffer.layout.namedTensors.map { tensor in
            (name: tensor.name, shape: tensor.shape,
             values: UnsafeBufferPointer(start: buffer.values + tensor.offset, count: tensor.shape.reduce(1, *)))
        }
        try SafeTensorsWriter.write(tensors, to: (folder as NSString).appendingPathComponent(weightsFile))
    }
}
