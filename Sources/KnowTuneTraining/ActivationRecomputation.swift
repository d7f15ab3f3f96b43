// Implements the choice of activation recomputation (HF `--gradient_checkpointing`, LLaMA-Factory 0.5.3's
// `--disable_gradient_checkpointing`): as asked when asked; otherwise on only when the node's ranks' activation
// plans without it would not fit the memory the node has. LF turns it on always; KnowTune does not, because on CPU
// it costs a second forward pass per step (documented in the README). Also refuses a token budget that does not fit
// even with recomputation. Does not recompute (LlamaDecoder does).
import Foundation
import KnowTuneModel
import KnowTuneTensor

public struct ActivationRecomputation: Codable, Equatable {
    public var enabled: Bool
    /// Why, with the numbers, for the start-up banner.
    public var reason: String

    /// Share of the available memory the plans may take: the rest is for the LoRA state, data and the system.
    static let usableShare = 0.8

    /// Decides for ranks that each hold a plan of `tokenCapacity` tokens (longest sequence `sequenceCapacity`), with
    /// `availableBytes` free on the node (nil: unknown, then recomputation stays off unless asked) of which the mapped
    /// base may take `baseBytes` (counted against it, as the page cache that holds it may be reported free).
    public static func decide(arguments: TrainingArguments, model: LlamaConfiguration, loraLayout: LoRALayout,
                              tokenCapacity: Int, sequenceCapacity: Int, ranksOnNode: Int, availableBytes: Int?,
                              baseBytes: Int) throws -> ActivationRecomputation {
        func planBytes(_ recomputing: Bool) -> Int {
            ranksOnNode * ActivationPlan.byteCount(model: model, loraLayout: loraLayout, tokenCapacity: tokenCapacity,
                                                   sequenceCapacity: sequenceCapacity, recomputesLayers: recomputing)
        }
        func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
        let saved = planBytes(false), recomputed = planBytes(true)
        let plans = "activations of \(ranksOnNode) rank(s) × \(tokenCapacity) tokens: \(gib(saved)) saved, \(gib(recomputed)) recomputed"
        if let availableBytes, recomputed > availableBytes {
            throw KnowTuneError.invalidConfiguration(
                "--token_budget \(arguments.training.tokenBudget) (longest sequence \(sequenceCapacity)) needs \(gib(recomputed)) of "
                + "activations on this node even with recomputation, and \(gib(availableBytes)) is available: lower --token_budget "
                + "or --cutoff_len, or run fewer ranks per node")
        }
        if arguments.model.disableGradientCheckpointing {
            return ActivationRecomputation(enabled: false, reason: "--disable_gradient_checkpointing (\(plans))")
        }
        if arguments.training.gradientCheckpointing == true {
            return ActivationRecomputation(enabled: true, reason: "--gradient_checkpointing (\(plans))")
        }
        if arguments.training.gradientCheckpointing == false {
            return ActivationRecomputation(enabled: false, reason: "--gradient_checkpointing false (\(plans))")
        }
        guard let availableBytes else {
            return ActivationRecomputation(enabled: false, reason: "the node's free memory is unknown (\(plans))")
        }
        let usable = Int(Double(max(availableBytes - baseBytes, 0)) * usableShare)
        let fits = saved <= usable
        return ActivationRecomputation(
            enabled: !fits,
            reason: "\(plans); \(Int(usableShare * 100)) % of the node's \(gib(availableBytes)) free less the \(gib(baseBytes)) base is "
                + "\(gib(usable)), which the saved activations \(fits ? "fit" : "do not fit")")
    }
}
