// Implements folding a LoRA adapter into base weights (PEFT `merge_and_unload`: W ← W + s·B·A), used for
// inference and for adapters that are continued on top of earlier ones; does not un-merge.
import KnowTuneTensor

public enum LoRAMerger {
    /// W ← W + s·B·A on every adapted projection. 16-bit weights are merged in fp32 and rounded back to their
    /// precision, as PEFT merges in the model dtype.
    public static func merge(_ adapter: LoRABuffer, into weights: LlamaWeights) {
        let r = adapter.layout.configuration.rank
        let s = adapter.layout.configuration.scaling
        for slot in adapter.layout.slots {
            let count = slot.outFeatures * slot.inFeatures
            let target = weights.frozenProjection(slot.layer, slot.kind)
            let projection = weights.precision == .fp32
                ? UnsafeMutablePointer(mutating: target.address.assumingMemoryBound(to: Float.self))
                : UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { if weights.precision != .fp32 { projection.deallocate() } }
            if weights.precision != .fp32 { weights.precision.decode(target.address, count: count, into: projection) }
            // W[out, in] += s · B[out, r] · A[r, in]
            BLAS.gemm(m: slot.outFeatures, n: slot.inFeatures, k: r, alpha: s, a: adapter.values + slot.bOffset, lda: r,
                      b: adapter.values + slot.aOffset, ldb: slot.inFeatures, beta: 1, c: projection, ldc: slot.inFeatures)
            if weights.precision != .fp32 {
                weights.precision.encode(projection, count: count, into: UnsafeMutableRawPointer(mutating: target.address))
            }
        }
    }
}
