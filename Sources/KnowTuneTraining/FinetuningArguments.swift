// Implements LLaMA-Factory 0.5.3's finetuning argument group (stage, LoRA, DPO, loss plot); holds defaults only
// (TrainingArgumentParser parses, TrainingArguments validates).
import KnowTuneModel

/// `--finetuning_type`: KnowTune trains LoRA adapters only; the others are refused by name.
public enum FinetuningType: String, ArgumentChoice {
    case lora
}

public struct FinetuningArguments: Codable, Equatable {
    public var stage = TrainingStage.sft
    public var finetuningType = FinetuningType.lora
    public var loraRank = 8
    public var loraAlpha: Double?
    public var loraDropout = 0.0
    public var loraTarget = "q_proj,v_proj"
    public var useRSLoRA = false
    public var dpoBeta = 0.1
    public var dpoLoss = DPOLoss.LossKind.sigmoid
    public var dpoFTX = 0.0
    /// KnowTune's default, unlike LF053's pair-level shuffle: pairs of one prompt stay together so that the
    /// sequences they share run once per step (no effect when every prompt is distinct).
    public var dpoGroupByPrompt = true
    public var plotLoss = false

    public init() {}

    /// The LoRA configuration the CLI asks for (ignored when continuing an adapter, which keeps its own).
    public func loraConfiguration() throws -> LoRAConfiguration {
        let configuration = LoRAConfiguration(rank: loraRank, alpha: loraAlpha.map(Float.init), dropout: Float(loraDropout),
                                              targets: try LoRAConfiguration.parseTargets(loraTarget), useRSLoRA: useRSLoRA)
        try configuration.validate()
        return configuration
    }
}
