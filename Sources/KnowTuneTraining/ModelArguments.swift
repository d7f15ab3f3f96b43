// Implements LLaMA-Factory 0.5.3's model argument group (base, adapters, DPO reference) plus the storage of the
// frozen base; holds defaults only (TrainingArgumentParser parses, TrainingArguments validates).
import KnowTuneTensor

public struct ModelArguments: Codable, Equatable {
    public var modelNameOrPath = ""
    /// Comma list of PEFT adapter folders (LFDEC: --checkpoint_dir).
    public var adapterNameOrPath: String?
    /// LLaMA-Factory 0.5.3 `create_new_adapter` (LFDEC: `resume_lora_training` inverted).
    public var createNewAdapter = false
    public var refModel: String?
    public var refModelAdapters: String?
    /// Storage of the frozen base weights in training: fp32, bf16 (bf16 products, as `--bf16` autocast on GPU) or f16.
    public var baseDtype = BasePrecision.fp32
    /// LLaMA-Factory 0.5.3: never recompute activations.
    public var disableGradientCheckpointing = false

    public init() {}

    public var adapterPaths: [String] { (adapterNameOrPath ?? "").commaSeparatedItems }
}
