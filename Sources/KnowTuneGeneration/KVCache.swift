// Implements the key/value cache of incremental decoding: for every layer, RoPE-rotated keys and values of up to
// `batchCapacity` sequences (slots) × `maxLength` positions, allocated once, plus each slot's filled length; does not
// compute attention (CachedAttention) or decide which sequence owns a slot (Generator).
//
// Layout (kernel letters: S slots, P maxLength, K = kvHeads·headDimension): keys[layer] and values[layer] are
// [S, P, K] row-major, so one slot's positions are contiguous rows of stride K, which is what sgemm reads.
import Foundation
import KnowTuneModel
import KnowTuneTensor

public final class KVCache {
    public let configuration: LlamaConfiguration
    public let batchCapacity: Int
    public let maxLength: Int
    /// Positions filled in each slot.
    public private(set) var lengths: [Int]
    private let storage: UnsafeMutablePointer<Float>
    private let layerStride: Int
    private let slotStride: Int

    public init(configuration: LlamaConfiguration, batchCapacity: Int, maxLength: Int) {
        precondition(batchCapacity > 0 && maxLength > 0, "a KV cache needs at least one slot and one position")
        self.configuration = configuration
        self.batchCapacity = batchCapacity
        self.maxLength = maxLength
        lengths = [Int](repeating: 0, count: batchCapacity)
        slotStride = maxLength * configuration.kvDimension
        layerStride = batchCapacity * slotStride
        let count = 2 * configuration.layerCount * layerStride
        // calloc: a large cache gets zero pages the kernel commits only when a slot first writes them, so a server
        // sized for long contexts holds only what its sequences use.
        guard let zeroed = calloc(count, MemoryLayout<Float>.stride) else { fatalError("cannot allocate a \(count * 4)-byte KV cache") }
        storage = zeroed.assumingMemoryBound(to: Float.self)
    }

    deinit { free(storage) }

    /// Bytes held by the cache.
    public var byteCount: Int { 2 * configuration.layerCount * layerStride * MemoryLayout<Float>.stride }

    /// [P, K] keys of `slot` in `layer`, rotated by RoPE.
    public func keys(layer: Int, slot: Int) -> UnsafeMutablePointer<Float> {
        storage + (2 * layer) * layerStride + slot * slotStride
    }

    /// [P, K] values of `slot` in `layer`.
    public func values(layer: Int, slot: Int) -> UnsafeMutablePointer<Float> {
        storage + (2 * layer + 1) * layerStride + slot * slotStride
    }

    /// Positions still free in `slot`.
    public func remaining(slot: Int) -> Int { maxLength - lengths[slot] }

    /// Empties a slot for a new sequence (the stale rows are overwritten before they are read again).
    public func reset(slot: Int) { lengths[slot] = 0 }

    /// Records that `count` more positions of `slot` were written.
    func advance(slot: Int, by count: Int) {
        precondition(lengths[slot] + count <= maxLength, "KV cache slot \(slot) overflows its \(maxLength) positions")
        lengths[slot] += count
    }
}
