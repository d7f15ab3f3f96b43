// Implements incremental decoding of a LLaMA decoder with a KV cache: `prefill` runs new prompt rows of one or more
// sequences packed together and `step` runs one new token for each of several sequences together, each leaving
// next-token logits; does not sample, apply LoRA on the fly (merge it first, LoRAMerge) or decide what to decode (Generator).
//
// Same math as the training forward `LlamaDecoder.forward` (transformers `LlamaForCausalLM` with `use_cache`):
// pre-norm blocks, RMSNorm, RoPE (rotate_half) at each row's absolute position, grouped-query causal attention,
// SwiGLU MLP, residual adds done by accumulating into the residual stream, final RMSNorm and the head. Only the
// attention differs in form: new rows read the cached keys/values of earlier positions (CachedAttention). Decoding
// is bound by reading the weights (0.54 GB for SmolLM2-135M), so every weight is read once per step for all rows
// (RowProjection).
//
// Kernel letters: R row capacity, B rows in a call, S slots (batch capacity), C hidden, K kv dimension,
// F intermediate, H heads, G kv heads, D head size, V vocabulary, P cache length per slot.
import Foundation
import KnowTuneModel
import KnowTuneTensor

public final class IncrementalDecoder {
    public let configuration: LlamaConfiguration
    public let weights: LlamaWeights
    public let cache: KVCache
    /// Prompt rows run together; longer prompts are prefilled in chunks of this many rows.
    public let prefillChunk: Int
    private let rotary: RotaryEmbedding
    private let rowCapacity: Int
    private let arena: [UnsafeMutablePointer<Float>]

    /// [R, C] residual stream.
    private let residual: UnsafeMutablePointer<Float>
    /// [R, C] RMSNorm output (input of q/k/v and gate/up).
    private let normed: UnsafeMutablePointer<Float>
    /// [R, C+2K] q, k and v side by side in each row (q and k rotated in place).
    private let queryKeyValue: UnsafeMutablePointer<Float>
    /// [R, C] attention output (input of o_proj).
    private let attentionOutput: UnsafeMutablePointer<Float>
    /// [R, 2F] gate and up side by side in each row; [R, F] silu(gate)·up.
    private let gateUp: UnsafeMutablePointer<Float>
    private let hidden: UnsafeMutablePointer<Float>
    /// [max(R, H)·P] attention scores.
    private let scores: UnsafeMutablePointer<Float>
    /// [S, C] final-normed rows whose logits are wanted.
    private let finalNormed: UnsafeMutablePointer<Float>
    /// [S, V] next-token logits: row b for the b-th sequence of the last `step` or `prefill`.
    public let logits: UnsafeMutablePointer<Float>
    /// [R] absolute position of each row.
    private var positions: [Int32]

    /// Plans every buffer once: `batchCapacity` sequences decoded together, each up to `maxLength` positions.
    public init(weights: LlamaWeights, batchCapacity: Int, maxLength: Int, prefillChunk: Int = 256) {
        let c = weights.configuration
        precondition(prefillChunk > 0, "prefill chunk must be positive")
        configuration = c
        self.weights = weights
        cache = KVCache(configuration: c, batchCapacity: batchCapacity, maxLength: maxLength)
        self.prefillChunk = prefillChunk
        rotary = RotaryEmbedding(headDimension: c.headDimension, theta: c.ropeTheta, maxPositions: maxLength)
        let R = max(prefillChunk, batchCapacity)
        rowCapacity = R
        let C = c.hiddenSize, K = c.kvDimension, F = c.intermediateSize, V = c.vocabularySize
        var arena: [UnsafeMutablePointer<Float>] = []
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            arena.append(pointer)
            return pointer
        }
        residual = make(R * C)
        normed = make(R * C)
        queryKeyValue = make(R * (C + 2 * K))
        attentionOutput = make(R * C)
        gateUp = make(R * 2 * F)
        hidden = make(R * F)
        scores = make(max(R, c.headCount) * maxLength)
        finalNormed = make(batchCapacity * C)
        logits = make(batchCapacity * V)
        self.arena = arena
        positions = [Int32](repeating: 0, count: R)
    }

    deinit { for pointer in arena { pointer.deallocate() } }

    public var batchCapacity: Int { cache.batchCapacity }
    public var maxLength: Int { cache.maxLength }

    /// Row `row` of `logits` [V].
    public func logits(row: Int) -> UnsafeMutablePointer<Float> { logits + row * configuration.vocabularySize }

    /// Appends `tokens` to `slot`'s cached sequence (a new prompt after `cache.reset(slot:)`, or more turns of a
    /// conversation) and leaves the next-token logits of its last token in row 0 of `logits`.
    public func prefill(tokens: [Int32], slot: Int) {
        prefill([(tokens: tokens, slot: slot)])
    }

    /// Appends each sequence's tokens to its slot (slots distinct) and leaves sequence i's next-token logits in row i
    /// of `logits`. The rows of all sequences are packed together, up to `prefillChunk` rows per pass, so the
    /// weights are read once per chunk rather than once per prompt; logits are computed only for last rows.
    /// Callers check sizes and ids first (Generator does); a violation here is a programmer error.
    public func prefill(_ sequences: [(tokens: [Int32], slot: Int)]) {
        precondition(!sequences.isEmpty && sequences.count <= batchCapacity, "prefill takes 1…\(batchCapacity) sequences")
        precondition(Set(sequences.map(\.slot)).count == sequences.count, "a slot may appear only once in a prefill")
        for sequence in sequences {
            precondition(!sequence.tokens.isEmpty, "prefill needs at least one token per sequence")
            precondition(sequence.slot >= 0 && sequence.slot < batchCapacity, "slot \(sequence.slot) outside the cache")
            precondition(sequence.tokens.count <= cache.remaining(slot: sequence.slot),
                         "prefill of \(sequence.tokens.count) tokens overflows slot \(sequence.slot)")
        }
        var rowTokens: [Int32] = []
        var segments: [Segment] = []
        // (row in this chunk, sequence index) of sequences whose last token is in this chunk.
        var finishing: [(row: Int, sequence: Int)] = []
        func flush() {
            runLayers(tokens: rowTokens, segments: segments)
            for segment in segments { cache.advance(slot: segment.slot, by: segment.count) }
            if let first = finishing.first {
                // Sequences finish in order, so their logits rows are consecutive.
                head(fromRows: finishing.map(\.row), toLogitsRow: first.sequence)
            }
            rowTokens.removeAll(keepingCapacity: true)
            segments.removeAll(keepingCapacity: true)
            finishing.removeAll(keepingCapacity: true)
        }
        for (index, sequence) in sequences.enumerated() {
            var offset = 0
            while offset < sequence.tokens.count {
                if rowTokens.count == prefillChunk { flush() }
                let count = min(prefillChunk - rowTokens.count, sequence.tokens.count - offset)
                segments.append(Segment(slot: sequence.slot, firstPosition: cache.lengths[sequence.slot], row: rowTokens.count,
                                        count: count))
                if offset + count == sequence.tokens.count { finishing.append((rowTokens.count + count - 1, index)) }
                rowTokens += sequence.tokens[offset..<(offset + count)]
                offset += count
            }
        }
        flush()
    }

    /// Feeds one token to each listed slot (`tokens[b]` to `slots[b]`, slots distinct) and leaves sequence b's
    /// next-token logits in row b of `logits`. Every projection runs once for all B rows.
    public func step(tokens: [Int32], slots: [Int]) {
        let B = tokens.count
        precondition(B == slots.count && B > 0 && B <= batchCapacity, "step needs 1…\(batchCapacity) rows, one slot each")
        precondition(Set(slots).count == B, "a slot may take only one token per step")
        let segments = slots.enumerated().map { row, slot in
            precondition(cache.remaining(slot: slot) > 0, "KV cache slot \(slot) is full")
            return Segment(slot: slot, firstPosition: cache.lengths[slot], row: row, count: 1)
        }
        runLayers(tokens: tokens, segments: segments)
        for slot in slots { cache.advance(slot: slot, by: 1) }
        head(fromRows: Array(0..<B), toLogitsRow: 0)
    }

    // MARK: - The layers

    /// Rows `row ..< row+count` of a pass hold one sequence's tokens at positions firstPosition… in `slot`.
    private struct Segment {
        let slot: Int
        let firstPosition: Int
        let row: Int
        let count: Int
    }

    /// Runs all layers on B = tokens.count rows made of `segments`, writing each row's key and value into its slot.
    private func runLayers(tokens: [Int32], segments: [Segment]) {
        let c = configuration
        let B = tokens.count, C = c.hiddenSize, K = c.kvDimension, F = c.intermediateSize
        let H = c.headCount, G = c.kvHeadCount, D = c.headDimension, QKV = C + 2 * K
        precondition(B <= rowCapacity, "\(B) rows exceed the decoder's \(rowCapacity)")
        for (row, token) in tokens.enumerated() {
            precondition(token >= 0 && Int(token) < c.vocabularySize, "token id \(token) outside the vocabulary")
            weights.copyEmbeddingRow(Int(token), into: residual + row * C)
        }
        for segment in segments {
            for i in 0..<segment.count { positions[segment.row + i] = Int32(segment.firstPosition + i) }
        }
        positions.withUnsafeBufferPointer { positionBuffer in
            guard let rowPositions = positionBuffer.baseAddress else { return }
            for layer in 0..<c.layerCount {
                // Attention block.
                RMSNorm.forward(output: normed, reciprocalRMS: nil, input: residual, weight: weights.attentionNorm(layer),
                                rows: B, channels: C, epsilon: c.rmsNormEpsilon)
                project([.query, .key, .value], layer: layer, input: normed, output: queryKeyValue, rows: B)
                let query = queryKeyValue, key = queryKeyValue + C, value = queryKeyValue + C + K
                rotary.apply(query, rows: B, heads: H, rowStride: QKV, positions: rowPositions)
                rotary.apply(key, rows: B, heads: G, rowStride: QKV, positions: rowPositions)
                for segment in segments {
                    let cachedKeys = cache.keys(layer: layer, slot: segment.slot)
                    let cachedValues = cache.values(layer: layer, slot: segment.slot)
                    for i in 0..<segment.count {
                        let row = segment.row + i, position = segment.firstPosition + i
                        (cachedKeys + position * K).update(from: key + row * QKV, count: K)
                        (cachedValues + position * K).update(from: value + row * QKV, count: K)
                    }
                    CachedAttention.forward(output: attentionOutput + segment.row * C, query: query + segment.row * QKV,
                                            key: cachedKeys, value: cachedValues, scores: scores, rows: segment.count,
                                            firstPosition: segment.firstPosition, heads: H, kvHeads: G, headDimension: D,
                                            queryStride: QKV, keyStride: K, outputStride: C)
                }
                project([.output], layer: layer, input: attentionOutput, output: residual, rows: B, accumulate: true)
                // MLP block.
                RMSNorm.forward(output: normed, reciprocalRMS: nil, input: residual, weight: weights.feedForwardNorm(layer),
                                rows: B, channels: C, epsilon: c.rmsNormEpsilon)
                project([.gate, .up], layer: layer, input: normed, output: gateUp, rows: B)
                for row in 0..<B {
                    SwiGLU.forward(output: hidden + row * F, gate: gateUp + row * 2 * F, up: gateUp + row * 2 * F + F, count: F)
                }
                project([.down], layer: layer, input: hidden, output: residual, rows: B, accumulate: true)
            }
        }
    }

    /// Projections of one input written side by side in each output row ([B, Σ out]). When their weights are
    /// adjacent in the weight buffer (LlamaWeightLayout stores q, k, v and gate, up back to back, each [out, in]),
    /// they form one taller matrix and take one BLAS call.
    private func project(_ kinds: [ProjectionKind], layer: Int, input: UnsafeMutablePointer<Float>,
                         output: UnsafeMutablePointer<Float>, rows: Int, accumulate: Bool = false) {
        let shapes = kinds.map { $0.shape(configuration) }
        let inFeatures = shapes[0].inFeatures
        let width = shapes.reduce(0) { $0 + $1.outFeatures }
        var adjacent = true
        var expected = weights.frozenProjection(layer, kinds[0]).address
        for (kind, shape) in zip(kinds, shapes) {
            let stored = weights.storageLayout.projections[layer][kind.rawValue]
            adjacent = adjacent && weights.frozenProjection(layer, kind).address == expected && shape.inFeatures == inFeatures
                && stored.encoding == weights.storageLayout.projections[layer][kinds[0].rawValue].encoding
            expected += stored.byteCount
        }
        if adjacent {
            RowProjection.linear(output: output, input: input, weight: weights.frozenProjection(layer, kinds[0]), rows: rows,
                                 inFeatures: inFeatures, outFeatures: width, accumulate: accumulate)
            return
        }
        var offset = 0
        for (kind, shape) in zip(kinds, shapes) {
            RowProjection.linear(output: output + offset, input: input, weight: weights.frozenProjection(layer, kind), rows: rows,
                                 inFeatures: shape.inFeatures, outFeatures: shape.outFeatures, outputStride: width,
                                 accumulate: accumulate)
            offset += shape.outFeatures
        }
    }

    /// Final RMSNorm of the listed residual rows, then their logits into rows `toLogitsRow`… of `logits`, with the
    /// head weight read once for all rows (RowProjection).
    private func head(fromRows rows: [Int], toLogitsRow firstRow: Int) {
        let c = configuration, C = c.hiddenSize
        for (n, row) in rows.enumerated() {
            RMSNorm.forward(output: finalNormed + n * C, reciprocalRMS: nil, input: residual + row * C,
                            weight: weights.finalNorm, rows: 1, channels: C, epsilon: c.rmsNormEpsilon)
        }
        RowProjection.linear(output: logits(row: firstRow), input: finalNormed, weight: weights.frozenLMHead, rows: rows.count,
                             inFeatures: C, outFeatures: c.vocabularySize)
    }
}
