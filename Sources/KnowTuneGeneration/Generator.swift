// Implements generation for many prompts: validates each prompt, keeps up to `batchSize` sequences decoding together
// (a slot freed by a finished sequence takes the next prompt at once), samples each sequence with its own seeded
// generator, stops at a stop id, `max_new_tokens` or the context end, and streams every token to an optional
// callback; does not template or tokenize prompts, or write prediction files.
//
// Output follows HF `generate` as LLaMA-Factory 0.5.3 calls it (semantics note §9.3): the new ids only, with the
// stop id included when one was emitted; `text(of:tokenizer:)` strips it before decoding, as
// `skip_special_tokens=True` does.
import Dispatch
import Foundation
import KnowTuneModel
import KnowTuneTensor

/// What a token callback asks for next.
public enum GenerationControl {
    case proceed
    /// Finish this sequence now, keeping the tokens so far (e.g. an interrupted `chat` reply).
    case stop
}

/// Why a sequence ended.
public enum FinishReason: String, Codable {
    case stopToken = "stop_token", maxNewTokens = "max_new_tokens", contextFull = "context_full", stoppedByCallback = "callback"
}

/// One streamed token.
public struct GeneratedToken {
    /// Index of the prompt in the `prompts` argument.
    public let promptIndex: Int
    public let exampleIndex: Int
    public let token: Int32
    /// Set on the sequence's last token.
    public let finishReason: FinishReason?
}

/// Counts and timings of the last `generate` call.
public struct GenerationStatistics: Codable, Equatable {
    public var promptTokens = 0
    /// Time in `prefill`, including the first token's logits.
    public var prefillSeconds = 0.0
    /// All new tokens, including each sequence's first (which comes from its prefill).
    public var generatedTokens = 0
    /// Tokens produced by batched `step`s, and the time spent in them (model and sampling).
    public var decodedTokens = 0
    public var decodeSeconds = 0.0
    public var steps = 0
    /// Time spent masking logits for constrained sequences (a decode step's masks count in its decode time too).
    public var maskSeconds = 0.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", prefillSeconds = "prefill_seconds", generatedTokens = "generated_tokens"
        case decodedTokens = "decoded_tokens", decodeSeconds = "decode_seconds", steps, maskSeconds = "mask_seconds"
    }
}

public final class Generator {
    public let weights: LlamaWeights
    /// Ids that end a sequence (EOS plus any extra, LLaMA-Factory's `[eos] + additional_special_tokens`).
    public let stopTokenIds: Set<Int32>
    /// Most sequences decoded together.
    public let batchSize: Int
    /// Most positions a sequence may occupy, prompt included.
    public let contextLength: Int
    /// Prompt rows run together in a prefill.
    public let prefillChunk: Int
    public private(set) var statistics = GenerationStatistics()
    /// Kept between calls (its cache is the largest allocation) and replaced only when too small.
    private var decoder: IncrementalDecoder?

    /// - Parameters:
    ///   - contextLength: defaults to the model's `max_position_embeddings`.
    public init(weights: LlamaWeights, stopTokenIds: [Int32], batchSize: Int = 8, contextLength: Int? = nil,
                prefillChunk: Int = 256) {
        precondition(batchSize > 0, "batch size must be positive")
        self.weights = weights
        self.stopTokenIds = Set(stopTokenIds)
        self.batchSize = batchSize
        self.contextLength = contextLength ?? weights.configuration.maxPositionEmbeddings
        self.prefillChunk = prefillChunk
    }

    /// Generates a continuation of every prompt. Returns one result per prompt, in order: the new ids, or the
    /// error that made that prompt unusable (empty, too long for the context, an id outside the vocabulary); other
    /// prompts are unaffected. `exampleIndices[i]` seeds prompt i's sampling (see `Sampler.generator`).
    /// Throws only for an invalid configuration or mismatched argument counts. `constraints[i]`, when given, keeps
    /// prompt i's output a prefix of a JSON document of its schema (each constraint serves one call).
    public func generate(prompts: [[Int32]], exampleIndices: [Int], configuration: GenerationConfiguration,
                         constraints: [JSONConstraint?]? = nil,
                         onToken: ((GeneratedToken) -> GenerationControl)? = nil) throws -> [Result<[Int32], KnowTuneError>] {
        try configuration.validate()
        guard prompts.count == exampleIndices.count, constraints.map({ $0.count == prompts.count }) ?? true else {
            throw KnowTuneError.invalidInput("\(prompts.count) prompts but \(exampleIndices.count) example indices"
                                             + (constraints.map { " and \($0.count) constraints" } ?? ""))
        }
        statistics = GenerationStatistics()
        var results = [Result<[Int32], KnowTuneError>](repeating: .success([]), count: prompts.count)
        var pending: [Int] = []
        for (index, prompt) in prompts.enumerated() {
            if let problem = problem(with: prompt, exampleIndex: exampleIndices[index]) {
                results[index] = .failure(problem)
            } else {
                pending.append(index)
            }
        }
        guard let longest = pending.map({ prompts[$0].count }).max() else { return results }
        let decoder = prepareDecoder(batchCapacity: min(batchSize, pending.count),
                                     maxLength: min(contextLength, longest + configuration.maxNewTokens))
        let sampler = Sampler(configuration: configuration)
        let vocabularySize = weights.configuration.vocabularySize
        var freeSlots = Array((0..<decoder.batchCapacity).reversed())
        var active: [ActiveSequence] = []
        var nextPending = 0
        // A reused decoder may have a longer cache than this call needs; the context still bounds every sequence.
        let positionLimit = min(contextLength, decoder.maxLength)

        /// Samples sequence's next token from a logits row; returns false when the sequence has finished.
        func advance(_ sequence: inout ActiveSequence, logits: UnsafeMutablePointer<Float>) -> Bool {
            let constraint = constraints?[sequence.promptIndex] ?? nil
            if let constraint {
                let started = DispatchTime.now().uptimeNanoseconds
                let remaining = min(configuration.maxNewTokens, positionLimit - sequence.promptLength) - sequence.generated.count
                constraint.mask(logits, remainingTokens: max(1, remaining))
                statistics.maskSeconds += Self.seconds(since: started)
            }
            var token = sampler.nextToken(logits: logits, vocabularySize: vocabularySize,
                                          previousTokens: sequence.penalizedTokens, generator: &sequence.generator)
            if let constraint { token = constraint.accept(token) }
            sequence.generated.append(token)
            if configuration.repetitionPenalty != 1.0 { sequence.penalizedTokens.insert(token) }
            var reason: FinishReason?
            if stopTokenIds.contains(token) { reason = .stopToken }
            else if sequence.generated.count >= configuration.maxNewTokens { reason = .maxNewTokens }
            // The last token must itself be fed before anything can follow it.
            else if sequence.promptLength + sequence.generated.count >= positionLimit { reason = .contextFull }
            if let onToken {
                let event = GeneratedToken(promptIndex: sequence.promptIndex, exampleIndex: sequence.exampleIndex,
                                           token: token, finishReason: reason)
                if reason == nil, onToken(event) == .stop { reason = .stoppedByCallback }
                else if reason != nil { _ = onToken(event) }
            }
            guard reason == nil else {
                results[sequence.promptIndex] = .success(sequence.generated)
                freeSlots.append(sequence.slot)
                return false
            }
            return true
        }

        while true {
            // Fill free slots with waiting prompts, prefilled together; each yields its sequence's first token.
            var admitted: [ActiveSequence] = []
            while let slot = freeSlots.last, nextPending < pending.count {
                freeSlots.removeLast()
                let index = pending[nextPending]
                nextPending += 1
                admitted.append(ActiveSequence(
                    promptIndex: index, exampleIndex: exampleIndices[index], slot: slot, promptLength: prompts[index].count,
                    generator: Sampler.generator(seed: configuration.seed, exampleIndex: exampleIndices[index]),
                    penalizedTokens: configuration.repetitionPenalty != 1.0 ? Set(prompts[index]) : []))
            }
            if !admitted.isEmpty {
                let started = DispatchTime.now().uptimeNanoseconds
                for sequence in admitted { decoder.cache.reset(slot: sequence.slot) }
                decoder.prefill(admitted.map { (tokens: prompts[$0.promptIndex], slot: $0.slot) })
                statistics.promptTokens += admitted.reduce(0) { $0 + $1.promptLength }
                statistics.prefillSeconds += Self.seconds(since: started)
                statistics.generatedTokens += admitted.count
                for row in admitted.indices {
                    var sequence = admitted[row]
                    if advance(&sequence, logits: decoder.logits(row: row)) { active.append(sequence) }
                }
            }
            guard !active.isEmpty else { break }
            let started = DispatchTime.now().uptimeNanoseconds
            decoder.step(tokens: active.map { $0.generated[$0.generated.count - 1] }, slots: active.map(\.slot))
            var stillActive: [ActiveSequence] = []
            stillActive.reserveCapacity(active.count)
            for row in active.indices {
                var sequence = active[row]
                if advance(&sequence, logits: decoder.logits(row: row)) { stillActive.append(sequence) }
            }
            statistics.steps += 1
            statistics.decodedTokens += active.count
            statistics.generatedTokens += active.count
            statistics.decodeSeconds += Self.seconds(since: started)
            active = stillActive
        }
        return results
    }

    /// The text of generated ids, without a trailing stop id (HF decodes with `skip_special_tokens=True`).
    public func text(of ids: [Int32], tokenizer: any Tokenizer) -> String {
        var ids = ids
        while let last = ids.last, stopTokenIds.contains(last) { ids.removeLast() }
        return tokenizer.decode(ids)
    }

    // MARK: - Helpers

    private struct ActiveSequence {
        let promptIndex: Int
        let exampleIndex: Int
        let slot: Int
        let promptLength: Int
        var generator: SplitMix64
        var penalizedTokens: Set<Int32>
        var generated: [Int32] = []

        init(promptIndex: Int, exampleIndex: Int, slot: Int, promptLength: Int, generator: SplitMix64,
             penalizedTokens: Set<Int32>) {
            self.promptIndex = promptIndex
            self.exampleIndex = exampleIndex
            self.slot = slot
            self.promptLength = promptLength
            self.generator = generator
            self.penalizedTokens = penalizedTokens
        }
    }

    /// Why a prompt cannot be decoded, or nil.
    private func problem(with prompt: [Int32], exampleIndex: Int) -> KnowTuneError? {
        guard !prompt.isEmpty else {
            return .invalidInput("example \(exampleIndex): the prompt is empty (generation needs at least one prompt token)")
        }
        guard prompt.count < contextLength else {
            return .invalidInput(
                "example \(exampleIndex): the prompt has \(prompt.count) tokens but the context holds \(contextLength), leaving no room to generate; shorten the prompt (e.g. a smaller cutoff_len) or raise the context length")
        }
        let vocabularySize = weights.configuration.vocabularySize
        if let bad = prompt.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            return .invalidInput("example \(exampleIndex): token id \(bad) is outside the model's vocabulary of \(vocabularySize)")
        }
        return nil
    }

    private func prepareDecoder(batchCapacity: Int, maxLength: Int) -> IncrementalDecoder {
        if let decoder, decoder.batchCapacity >= batchCapacity, decoder.maxLength >= maxLength,
           decoder.prefillChunk == prefillChunk {
            return decoder
        }
        decoder = nil  // release the old cache before planning the new one
        let fresh = IncrementalDecoder(weights: weights, batchCapacity: batchCapacity, maxLength: maxLength,
                                       prefillChunk: prefillChunk)
        decoder = fresh
        return fresh
    }

    private static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
