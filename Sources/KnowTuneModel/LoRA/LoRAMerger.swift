// Implements folding a LoRA adapter into base weights (PEFT `merge_and_unload`: W ← W + s·B·A), used for
// inference and for adapters that are continued on top of earlier ones; does not un-merge.
import KnowTuneTensor

public enum LoRAMerger {
    public static func merge(_ adapter: LoRABuffer, into weights: LlamaWeights) {
        let r = adapter.layout.configuration.rank
        let s = adapter.layout.configuration.scaling
        for slot in adapter.layout.slots {
            // W[out, in] += s · B[out, r] · A[r, in]
            BLAS.gemm(m: slot.outFeatures, n: slot.inFeatures, k: r, alpha: s, a: adapter.values + slot.bOffset, lda: r,
                      b: adapter.values + slot.aOffset, ldb: slot.inFeatures, beta: 1,
                      c: weights.projection(slot.layer, slot.kind), ldc: slot.inFeatures)
        }
    }
}
