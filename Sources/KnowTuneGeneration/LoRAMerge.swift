// Implements preparing merged weights for inference: checking that an adapter fits the model, then W ← W + s·B·A on
// every adapted projection (PEFT `merge_and_unload`; LLaMA-Factory 0.5.3 merges the SFT adapter before predict,
// semantics note §9.1), into the caller's weights or into a private copy; does not hold the merge arithmetic
// (KnowTuneModel's `LoRAMerger`, the one home of W + s·B·A), load adapters (PEFTAdapter) or unmerge.
import KnowTuneModel
import KnowTuneTensor

public enum LoRAMerge {
    /// Adds s·B[out, r]·A[r, in] to each adapted projection of `weights` in place (s = the adapter's scaling).
    /// `weights` must be the caller's own copy: every user of those weights sees the merged values.
    public static func merge(_ adapter: LoRABuffer, into weights: LlamaWeights) throws {
        let model = weights.configuration
        // A layout built for another model shape would write outside the projections it names.
        guard LoRALayout(model: model, lora: adapter.layout.configuration) == adapter.layout else {
            throw KnowTuneError.invalidConfiguration(
                "the LoRA adapter was laid out for another model shape (this model: \(model.layerCount) layers, hidden \(model.hiddenSize), kv \(model.kvDimension), ffn \(model.intermediateSize))")
        }
        LoRAMerger.merge(adapter, into: weights)
    }

    /// A private copy of `base` with `adapter` merged in; `base` is left untouched.
    public static func merged(base: LlamaWeights, adapter: LoRABuffer) throws -> LlamaWeights {
        let copy = LlamaWeights(copying: base)
        try merge(adapter, into: copy)
        return copy
    }
}
