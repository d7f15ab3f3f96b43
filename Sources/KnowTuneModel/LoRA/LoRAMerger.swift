// Implements folding a LoRA adapter into base weights (PEFT `merge_and_unload`: W ← W + s·B·A), used for
// inference and for adapters that are continued on top of earlier ones; does not un-merge.
import KnowTuneTensor

public enum LoRAMerger {
    /// W ← W + s·B·A on every adapted projection. Other encodings are merged in fp32 and stored back in their
    /// encoding, as PEFT merges in the model dtype; quantized weights are requantized (as PEFT does with a 4-bit base).
    public static func merge(_ adapter: LoRABuffer, into weights: LlamaWeights) {
        for slot in adapter.layout.slots {
            let target = weights.frozenProjection(slot.layer, slot.kind)
            let address = UnsafeMutableRawPointer(mutating: target.address)
            guard target.encoding != .fp32 else {
                addProduct(of: adapter, slot, into: address.assumingMemoryBound(to: Float.self))
                continue
            }
            let count = slot.outFeatures * slot.inFeatures
            var widened = [Float](repeating: 0, count: count)
            target.encoding.decode(target.address, count: count, into: &widened)
            addProduct(of: adapter, slot, into: &widened)
            target.encoding.encode(widened, count: count, into: address)
        }
    }

    /// Loads each PEFT adapter folder (checked against the model's shape) and merges it, in the order given
    /// (LLaMA-Factory merges a list of adapters one after another); returns the adapters.
    @discardableResult
    public static func mergeAdapters(at folders: [String], into weights: LlamaWeights) throws -> [LoRABuffer] {
        try folders.map { folder in
            let adapter = try PEFTAdapter.load(folder: folder, model: weights.configuration)
            merge(adapter, into: weights)
            return adapter
        }
    }

    /// W[out, in] += s · B[out, r] · A[r, in] for the projection of `slot`.
    private static func addProduct(of adapter: LoRABuffer, _ slot: LoRAModuleSlot, into projection: UnsafeMutablePointer<Float>) {
        BLAS.gemm(m: slot.outFeatures, n: slot.inFeatures, k: adapter.layout.configuration.rank,
                  alpha: adapter.layout.configuration.scaling, a: adapter.values + slot.bOffset, lda: adapter.layout.configuration.rank,
                  b: adapter.values + slot.aOffset, ldb: slot.inFeatures, beta: 1, c: projection, ldc: slot.inFeatures)
    }
}
