// Implements continuous batching over one KV-cache decoder: sequences join between steps (prefilled together into
// free slots, each yielding its first token), every `step` decodes one token for all running sequences, and a
// sequence leaves when it hits a stop id, its token budget or the context end, or when its owner finishes it. Each
// sequence carries its own sampling settings, seeded generator and optional JSON constraint, so a batch can mix
// requests. Serves `Generator.generate` (all prompts known up front) and the API server (requests arriving while
// others decode); does not validate prompts (Generator does), queue requests or decode text.
import Dispatch
import KnowTuneModel
import KnowTuneTensor

/// One sequence to decode.
public struct DecodeRequest {
    /// The caller's name for the sequence, echoed in its events.
    public let tag: Int
    /// Non-empty, shorter than the context, ids inside the vocabulary (the caller checks).
    public let prompt: [Int32]
    /// Sampling settings and `maxNewTokens` of this sequence.
    public let configuration: GenerationConfiguration
    /// Seeds the sequence's generator together with `configuration.seed` (see `Sampler.generator`).
    public let exampleIndex: Int
    public let constraint: JSONConstraint?
    /// Decode through stop ids to the full budget (benchmarks; vLLM's `ignore_eos`).
    public let ignoresStopTokens: Bool

    public init(tag: Int, prompt: [Int32], configuration: GenerationConfiguration, exampleIndex: Int,
                constraint: JSONConstraint? = nil, ignoresStopTokens: Bool = false) {
        self.tag = tag
        self.prompt = prompt
        self.configuration = configuration
        self.exampleIndex = exampleIndex
        self.constraint = constraint
        self.ignoresStopTokens = ignoresStopTokens
    }
}

/// A token a sequence produced; `finishReason` is set on its last.
public struct DecodeEvent {
    public let tag: Int
    public let token: Int32
    public let finishReason: FinishReason?
}

public final class DecodeBatch {
    public let decoder: IncrementalDecoder
    public let stopTokenIds: Set<Int32>
    /// Most positions a sequence may occupy, prompt included (≤ the decoder's cache length).
    public let positionLimit: Int
    public var statistics = GenerationStatistics()
    private var freeSlots: [Int]
    private var active: [Sequence] = []
    private let vocabularySize: Int

    public init(decoder: IncrementalDecoder, stopTokenIds: Set<Int32>, contextLength: Int) {
        self.decoder = decoder
        self.stopTokenIds = stopTokenIds
        positionLimit = min(contextLength, decoder.maxLength)
        freeSlots = Array((0..<decoder.batchCapacity).reversed())
        vocabularySize = decoder.configuration.vocabularySize
    }

    public var freeSlotCount: Int { freeSlots.count }
    public var runningCount: Int { active.count }
    public var isIdle: Bool { active.isEmpty }

    /// Prefills `requests` (at most `freeSlotCount`) into free slots together and returns each one's first token.
    public func admit(_ requests: [DecodeRequest]) -> [DecodeEvent] {
        precondition(requests.count <= freeSlots.count, "more sequences than free slots")
        guard !requests.isEmpty else { return [] }
        var admitted: [Sequence] = []
        for request in requests {
            let slot = freeSlots.removeLast()
            decoder.cache.reset(slot: slot)
            admitted.append(Sequence(request: request, slot: slot))
        }
        let started = DispatchTime.now().uptimeNanoseconds
        decoder.prefill(admitted.map { (tokens: $0.request.prompt, slot: $0.slot) })
        statistics.promptTokens += requests.reduce(0) { $0 + $1.prompt.count }
        statistics.prefillSeconds += Self.seconds(since: started)
        statistics.generatedTokens += admitted.count
        var events: [DecodeEvent] = []
        for row in admitted.indices {
            var sequence = admitted[row]
            let event = advance(&sequence, logits: decoder.logits(row: row))
            events.append(event)
            if event.finishReason == nil { active.append(sequence) } else { freeSlots.append(sequence.slot) }
        }
        return events
    }

    /// Decodes one token for every running sequence.
    public func step() -> [DecodeEvent] {
        guard !active.isEmpty else { return [] }
        let started = DispatchTime.now().uptimeNanoseconds
        decoder.step(tokens: active.map { $0.generated[$0.generated.count - 1] }, slots: active.map(\.slot))
        var events: [DecodeEvent] = []
        var stillActive: [Sequence] = []
        events.reserveCapacity(active.count)
        stillActive.reserveCapacity(active.count)
        for row in active.indices {
            var sequence = active[row]
            let event = advance(&sequence, logits: decoder.logits(row: row))
            events.append(event)
            if event.finishReason == nil { stillActive.append(sequence) } else { freeSlots.append(sequence.slot) }
        }
        statistics.steps += 1
        statistics.decodedTokens += active.count
        statistics.generatedTokens += active.count
        statistics.decodeSeconds += Self.seconds(since: started)
        active = stillActive
        return events
    }

    /// Ends the running sequence `tag` now (its owner stopped it or went away); its slot is free for the next
    /// admission. Returns false when no such sequence is running.
    @discardableResult
    public func finish(tag: Int) -> Bool {
        guard let index = active.firstIndex(where: { $0.request.tag == tag }) else { return false }
        freeSlots.append(active.remove(at: index).slot)
        return true
    }

    /// The tokens generated so far for the running sequence `tag`.
    public func generated(tag: Int) -> [Int32]? { active.first { $0.request.tag == tag }?.generated }

    // MARK: - Helpers

    private struct Sequence {
        let request: DecodeRequest
        let slot: Int
        let sampler: Sampler
        var generator: SplitMix64
        var penalizedTokens: Set<Int32>
        var generated: [Int32] = []

        init(request: DecodeRequest, slot: Int) {
            self.request = request
            self.slot = slot
            sampler = Sampler(configuration: request.configuration)
            generator = Sampler.generator(seed: request.configuration.seed, exampleIndex: request.exampleIndex)
            penalizedTokens = request.configuration.repetitionPenalty != 1.0 ? Set(request.prompt) : []
        }
    }

    /// Samples the sequence's next token from its logits row and says whether that ended it.
    private func advance(_ sequence: inout Sequence, logits: UnsafeMutablePointer<Float>) -> DecodeEvent {
        let configuration = sequence.request.configuration
        let promptLength = sequence.request.prompt.count
        if let constraint = sequence.request.constraint {
            let started = DispatchTime.now().uptimeNanoseconds
            let remaining = min(configuration.maxNewTokens, positionLimit - promptLength) - sequence.generated.count
            constraint.mask(logits, remainingTokens: max(1, remaining))
            statistics.maskSeconds += Self.seconds(since: started)
        }
        var token = sequence.sampler.nextToken(logits: logits, vocabularySize: vocabularySize,
                                               previousTokens: sequence.penalizedTokens, generator: &sequence.generator)
        if let constraint = sequence.request.constraint { token = constraint.accept(token) }
        sequence.generated.append(token)
        if configuration.repetitionPenalty != 1.0 { sequence.penalizedTokens.insert(token) }
        var reason: FinishReason?
        if !sequence.request.ignoresStopTokens, stopTokenIds.contains(token) { reason = .stopToken }
        else if sequence.generated.count >= configuration.maxNewTokens { reason = .maxNewTokens }
        // The last token must itself be fed before anything can follow it.
        else if promptLength + sequence.generated.count >= positionLimit { reason = .contextFull }
        return DecodeEvent(tag: sequence.request.tag, token: token, finishReason: reason)
    }

    private static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
