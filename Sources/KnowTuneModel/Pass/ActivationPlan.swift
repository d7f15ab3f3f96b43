// Implements the preallocated buffers of one forward/backward pass, sized once from (model, LoRA layout, token
// capacity, longest sequence), as llm.c's activation memory; does not compute. A batch over capacity is a
// programmer error: callers split batches into micro-batches that fit.
//
// Kernel letters: N tokens (capacity), C hidden, K kv dimension (G·D), F intermediate, H heads, T longest
// sequence, r LoRA rank, M target rows (≤ N), V vocabulary.
import KnowTuneTensor

final class FloatArena {
    private(set) var allocations: [UnsafeMutablePointer<Float>] = []
    private(set) var floatCount = 0
    /// A measuring arena counts what a plan would take and hands out one dummy float.
    let measuresOnly: Bool

    init(measuresOnly: Bool = false) { self.measuresOnly = measuresOnly }

    func make(_ count: Int) -> UnsafeMutablePointer<Float> {
        floatCount += max(count, 1)
        if measuresOnly, let dummy = allocations.first { return dummy }
        let capacity = measuresOnly ? 1 : max(count, 1)
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
        allocations.append(pointer)
        return pointer
    }

    deinit { for pointer in allocations { pointer.deallocate() } }
}

public final class ActivationPlan {
    public let model: LlamaConfiguration
    public let loraLayout: LoRALayout?
    public let tokenCapacity: Int
    public let sequenceCapacity: Int
    public let logitRowsPerChunk: Int
    /// Activation recomputation (HF gradient checkpointing): only each layer's input is kept for backward, which
    /// recomputes the layer's forward into one shared set of buffers before going back through it.
    public let recomputesLayers: Bool
    private let arena: FloatArena

    // Saved for backward, per layer (under recomputation, every layer's entry but residualInput's is one buffer).
    /// [L][N, C] residual stream entering layer l.
    let residualInput: [UnsafeMutablePointer<Float>]
    /// [L][N, C] residual stream after attention.
    let residualMiddle: [UnsafeMutablePointer<Float>]
    /// [L][N] RMSNorm reciprocal RMS before attention / before the MLP.
    let attentionRSTD: [UnsafeMutablePointer<Float>]
    let feedForwardRSTD: [UnsafeMutablePointer<Float>]
    /// [L][N, C], [L][N, K], [L][N, K] after RoPE (q, k) and v.
    let query: [UnsafeMutablePointer<Float>]
    let key: [UnsafeMutablePointer<Float>]
    let value: [UnsafeMutablePointer<Float>]
    /// [L][N, H] attention log-sum-exp per row and head.
    let attentionLSE: [UnsafeMutablePointer<Float>]
    /// [L][N, C] attention output (input of o_proj).
    let attentionOutput: [UnsafeMutablePointer<Float>]
    /// [L][N, F] gate and up projections.
    let gate: [UnsafeMutablePointer<Float>]
    let up: [UnsafeMutablePointer<Float>]
    /// [L][kind][N, r] LoRA hidden u = x·Aᵀ per adapted projection.
    let loraHidden: [[UnsafeMutablePointer<Float>?]]

    // Final norm and head.
    /// [N, C] output of the last layer.
    let residualFinal: UnsafeMutablePointer<Float>
    /// [M] reciprocal RMS of the final norm for target rows.
    let finalRSTD: UnsafeMutablePointer<Float>
    /// [M, C] normed final hidden state of target rows.
    let finalNormed: UnsafeMutablePointer<Float>
    /// [M, C] its gradient.
    let finalNormedGradient: UnsafeMutablePointer<Float>
    /// [chunk, V]
    let logits: UnsafeMutablePointer<Float>
    /// [M] target ids, log-probs, log-sum-exp, gradient weights.
    let targetIds: UnsafeMutablePointer<Int32>
    let targetLogProbabilities: UnsafeMutablePointer<Float>
    let targetLSE: UnsafeMutablePointer<Float>
    let targetWeights: UnsafeMutablePointer<Float>

    // Scratch reused by every layer.
    let normed: UnsafeMutablePointer<Float>          // [N, C]
    let hidden: UnsafeMutablePointer<Float>          // [N, F]
    let residualGradient: UnsafeMutablePointer<Float>  // [N, C]
    let normedGradient: UnsafeMutablePointer<Float>  // [N, C]
    let queryGradient: UnsafeMutablePointer<Float>   // [N, C]
    let keyGradient: UnsafeMutablePointer<Float>     // [N, K]
    let valueGradient: UnsafeMutablePointer<Float>   // [N, K]
    let attentionGradient: UnsafeMutablePointer<Float>  // [N, C]
    let gateGradient: UnsafeMutablePointer<Float>    // [N, F]
    let upGradient: UnsafeMutablePointer<Float>      // [N, F]
    let hiddenGradient: UnsafeMutablePointer<Float>  // [N, F]
    let loraScratch: UnsafeMutablePointer<Float>     // [N, r]
    let dropoutInput: UnsafeMutablePointer<Float>    // [N, max(C, F)] (only with dropout)
    let dropoutGradient: UnsafeMutablePointer<Float> // [N, max(C, F)] (only with dropout)
    let scores: UnsafeMutablePointer<Float>          // CausalAttention.scratchCount
    let scoreGradients: UnsafeMutablePointer<Float>  // CausalAttention.scratchCount

    /// Bytes allocated by this plan.
    public var byteCount: Int { arena.floatCount * 4 + tokenCapacity * 4 }

    public convenience init(model: LlamaConfiguration, loraLayout: LoRALayout?, tokenCapacity: Int, sequenceCapacity: Int,
                            logitRowsPerChunk: Int = 128, recomputesLayers: Bool = false) {
        self.init(model: model, loraLayout: loraLayout, tokenCapacity: tokenCapacity, sequenceCapacity: sequenceCapacity,
                  logitRowsPerChunk: logitRowsPerChunk, recomputesLayers: recomputesLayers, arena: FloatArena())
    }

    /// The bytes such a plan would allocate, without allocating them.
    public static func byteCount(model: LlamaConfiguration, loraLayout: LoRALayout?, tokenCapacity: Int, sequenceCapacity: Int,
                                 logitRowsPerChunk: Int = 128, recomputesLayers: Bool) -> Int {
        ActivationPlan(model: model, loraLayout: loraLayout, tokenCapacity: tokenCapacity, sequenceCapacity: sequenceCapacity,
                       logitRowsPerChunk: logitRowsPerChunk, recomputesLayers: recomputesLayers,
                       arena: FloatArena(measuresOnly: true)).byteCount
    }

    private init(model c: LlamaConfiguration, loraLayout: LoRALayout?, tokenCapacity N: Int, sequenceCapacity T: Int,
                 logitRowsPerChunk: Int, recomputesLayers: Bool, arena: FloatArena) {
        precondition(N > 0 && T > 0 && T <= N, "bad activation plan capacity")
        model = c
        self.loraLayout = loraLayout
        tokenCapacity = N
        sequenceCapacity = T
        self.logitRowsPerChunk = logitRowsPerChunk
        self.recomputesLayers = recomputesLayers
        self.arena = arena
        let C = c.hiddenSize, K = c.kvDimension, F = c.intermediateSize, H = c.headCount, L = c.layerCount
        func everyLayer(_ width: Int) -> [UnsafeMutablePointer<Float>] { (0..<L).map { _ in arena.make(N * width) } }
        func perLayer(_ width: Int) -> [UnsafeMutablePointer<Float>] {
            guard recomputesLayers else { return everyLayer(width) }
            return Array(repeating: arena.make(N * width), count: L)
        }
        residualInput = everyLayer(C)
        residualMiddle = perLayer(C)
        attentionRSTD = perLayer(1)
        feedForwardRSTD = perLayer(1)
        query = perLayer(C)
        key = perLayer(K)
        value = perLayer(K)
        attentionLSE = perLayer(H)
        attentionOutput = perLayer(C)
        gate = perLayer(F)
        up = perLayer(F)
        let r = loraLayout?.configuration.rank ?? 0
        let adaptedKinds = Set(loraLayout?.configuration.targets ?? [])
        let sharedLoRAHidden = recomputesLayers ? ProjectionKind.allCases.map { adaptedKinds.contains($0) ? arena.make(N * r) : nil } : []
        loraHidden = (0..<L).map { layer in
            ProjectionKind.allCases.map { kind in
                guard loraLayout?.slot(layer: layer, kind: kind) != nil else { return nil }
                return recomputesLayers ? sharedLoRAHidden[kind.rawValue] ?? arena.make(N * r) : arena.make(N * r)
            }
        }
        residualFinal = arena.make(N * C)
        finalRSTD = arena.make(N)
        finalNormed = arena.make(N * C)
        finalNormedGradient = arena.make(N * C)
        logits = arena.make(logitRowsPerChunk * c.vocabularySize)
        let idCount = arena.measuresOnly ? 1 : N
        targetIds = .allocate(capacity: idCount)
        targetIds.initialize(repeating: 0, count: idCount)
        targetLogProbabilities = arena.make(N)
        targetLSE = arena.make(N)
        targetWeights = arena.make(N)
        normed = arena.make(N * C)
        hidden = arena.make(N * F)
        residualGradient = arena.make(N * C)
        normedGradient = arena.make(N * C)
        queryGradient = arena.make(N * C)
        keyGradient = arena.make(N * K)
        valueGradient = arena.make(N * K)
        attentionGradient = arena.make(N * C)
        gateGradient = arena.make(N * F)
        upGradient = arena.make(N * F)
        hiddenGradient = arena.make(N * F)
        loraScratch = arena.make(N * max(r, 1))
        let dropoutWidth = (loraLayout?.configuration.dropout ?? 0) > 0 ? N * max(C, F) : 1
        dropoutInput = arena.make(dropoutWidth)
        dropoutGradient = arena.make(dropoutWidth)
        let scratch = CausalAttention.scratchCount(sequenceLength: T, heads: c.headCount, kvHeads: c.kvHeadCount,
                                                   headDimension: c.headDimension)
        scores = arena.make(scratch)
        scoreGradients = arena.make(scratch)
    }

    deinit { targetIds.deallocate() }

    /// Whether a batch fits this plan.
    public func fits(_ batch: PackedBatch) -> Bool {
        batch.tokenCount <= tokenCapacity && batch.longestSequence <= sequenceCapacity
    }
}
