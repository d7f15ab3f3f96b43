// Implements the DPO reference model's sequence log-probabilities of every training pair, computed once before
// training (LF053 recomputes them in every step under `disable_adapter()`; the frozen reference gives the same
// numbers each time, so one pass suffices): sharded over the ranks by tokens, all-gathered so every rank holds
// them all, kept in memory. Also resolves which model is the reference. Does not train.
//
// Reference (LF053 `create_ref_model`, `CustomDPOTrainer.get_batch_loss_metrics`, semantics §7.1): without
// `--ref_model`, the policy's own base weights with the adapter disabled, i.e. a forward with `lora: nil`. Adapters
// that `makeAdapter` merged into the base (all but the continued one, or all with --create_new_adapter) are part of
// those weights, as in LLaMA-Factory. With `--ref_model` (and `--ref_model_adapters`, merged), that model instead.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

public struct ReferenceLogProbabilities: Equatable {
    /// Σ log p_ref(chosen answer | prompt) per training pair.
    public let chosen: [Double]
    /// Σ log p_ref(rejected answer | prompt) per training pair.
    public let rejected: [Double]
    /// Wall time of the precompute, collectives included.
    public let seconds: Double

    public init(chosen: [Double], rejected: [Double], seconds: Double) {
        precondition(chosen.count == rejected.count, "one chosen and one rejected value per pair")
        self.chosen = chosen
        self.rejected = rejected
        self.seconds = seconds
    }

    /// Scores `pairs` with `decoder` (no adapter): each rank takes its work-balanced share (PassWorkload),
    /// micro-batched under `tokenBudget`, then every rank receives everything. With `groups`, a group's pairs stay together and the
    /// sequences they share are scored once.
    public static func compute(pairs: [EncodedPair], groups: TrainingUnitGroups? = nil, decoder: LlamaDecoder, tokenBudget: Int,
                               communicator: any Communicator) throws -> ReferenceLogProbabilities {
        let started = Date()
        let sharing = groups != nil
        let clusters = groups?.members ?? pairs.indices.map { [$0] }
        let tokenCounts = clusters.map { DPOPairBatch.tokenCount($0.map { pairs[$0] }, sharingSequences: sharing) }
        // Each rank's pairs, in the order their values travel.
        let workload = PassWorkload(decoder.configuration)
        let clusterShards = BatchSharder.shard(costs: clusters.map { cluster in
            workload.flops(of: DPOPairBatch(cluster.map { pairs[$0] }, sharingSequences: sharing).packed)
        }, rankCount: communicator.size)
        let shards = clusterShards.map { $0.flatMap { clusters[$0] } }
        let mine = clusterShards[communicator.rank]
        var local: [Double] = []
        local.reserveCapacity(2 * shards[communicator.rank].count)
        if !mine.isEmpty {
            // A cluster larger than the budget runs alone.
            let plan = ActivationPlan(model: decoder.configuration, loraLayout: nil,
                                      tokenCapacity: max(tokenBudget, mine.map { tokenCounts[$0] }.max() ?? 1),
                                      sequenceCapacity: max(shards[communicator.rank].map { pairs[$0].longestSequence }.max() ?? 1, 1))
            for micro in BatchSharder.microBatches(mine, tokenCounts: tokenCounts, budget: tokenBudget) {
                let batch = DPOPairBatch(micro.flatMap { clusters[$0] }.map { pairs[$0] }, sharingSequences: sharing)
                let sums = batch.sequenceSums(decoder.forward(batch: batch.packed, plan: plan, lora: nil))
                for k in 0..<batch.pairCount { local += [sums[batch.chosenSequence[k]], sums[batch.rejectedSequence[k]]] }
            }
        }
        // Every rank knows every shard's indices, so only the values travel: 8 bytes each, little-endian.
        let bytes = local.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        let gathered = try communicator.allGather(bytes, operation: "reference-logps")
        var chosen = [Double](repeating: .nan, count: pairs.count)
        var rejected = [Double](repeating: .nan, count: pairs.count)
        for (rank, shard) in shards.enumerated() {
            let payload = gathered[rank]
            guard payload.count == 16 * shard.count else {
                throw KnowTuneError.invalidInput("reference log-probs from rank \(rank): \(payload.count) bytes, expected \(16 * shard.count)")
            }
            func value(_ slot: Int) -> Double {
                var bits: UInt64 = 0
                for byte in 0..<8 { bits |= UInt64(payload[8 * slot + byte]) << (8 * byte) }
                return Double(bitPattern: bits)
            }
            for (k, index) in shard.enumerated() {
                chosen[index] = value(2 * k)
                rejected[index] = value(2 * k + 1)
            }
        }
        return ReferenceLogProbabilities(chosen: chosen, rejected: rejected, seconds: Date().timeIntervalSince(started))
    }

    /// Loads `--ref_model` with its `--ref_model_adapters` merged, checking that it reads the policy's token ids.
    public static func loadReferenceModel(_ arguments: TrainingArguments, policy: LlamaConfiguration) throws -> LoadedModel? {
        guard let path = arguments.model.refModel, !path.isEmpty else { return nil }
        let model = try ModelLoader.load(path)
        guard model.configuration.vocabularySize == policy.vocabularySize else {
            throw KnowTuneError.invalidConfiguration(
                "--ref_model \(path) has a vocabulary of \(model.configuration.vocabularySize) tokens, the policy model "
                + "\(policy.vocabularySize): the reference must use the same tokenizer")
        }
        let adapters = (arguments.model.refModelAdapters ?? "").commaSeparatedItems
        try LoRAMerger.mergeAdapters(at: adapters, into: model.weights)
        // The reference computes in the policy's precision, so their log-probs differ only by the adapter.
        return model.converted(to: arguments.model.baseDtype)
    }
}
