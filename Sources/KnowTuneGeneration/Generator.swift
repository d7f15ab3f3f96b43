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
public enum FinishReason: String, Codable, Sendable {
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
        var pending: [DecodeRequest] = []
        for (index, prompt) in prompts.enumerated() {
            if let problem = problem(with: prompt, exampleIndex: exampleIndices[index]) {
                results[index] = .failure(problem)
            } else {
                pending.append(DecodeRequest(tag: index, prompt: prompt, configuration: configuration,
                                             exampleIndex: exampleIndices[index], constraint: constraints?[index] ?? nil))
            }
        }
        guard let longest = pending.map(\.prompt.count).max() else { return results }
        let decoder = prepareDecoder(batchCapacity: min(batchSize, pending.count),
                                     maxLength: min(contextLength, longest + configuration.maxNewTokens))
        // A reused decoder may have a longer cache than this call needs; the context still bounds every sequence.
        let batch = DecodeBatch(decoder: decoder, stopTokenIds: stopTokenIds, contextLength: contextLength)
        var generated = [[Int32]](repeating: [], count: prompts.count)
        var nextPending = 0

        func deliver(_ events: [DecodeEvent]) {
            for event in events {
                generated[event.tag].append(event.token)
                var reason = event.finishReason
                if let onToken {
                    let token = GeneratedToken(promptIndex: event.tag, exampleIndex: exampleIndices[event.tag],
                                               token: event.token, finishReason: reason)
                    if reason == nil, onToken(token) == .stop {
                        batch.finish(tag: event.tag)
                        reason = .stoppedByCallback
                    } else if reason != nil {
                        _ = onToken(token)
                    }
                }
                if reason != nil { results[event.tag] = .success(generated[event.tag]) }
            }
        }

        while true {
            // Fill free slots with waiting prompts, prefilled together; each yields its sequence's first token.
            let admitted = min(batch.freeSlotCount, pending.count - nextPending)
            if admitted > 0 {
                deliver(batch.admit(Array(pending[nextPending..<nextPending + admitted])))
                nextPending += admitted
            }
            guard !batch.isIdle else { break }
            deliver(batch.step())
        }
        statistics = batch.statistics
        return results
    }

    /// The text of generated ids, without a trailing stop id (HF decodes with `skip_special_tokens=True`).
    public func text(of ids: [Int32], tokenizer: any Tokenizer) -> String {
        Self.text(of: ids, stopTokenIds: stopTokenIds, tokenizer: tokenizer)
    }

    /// The text of a reply's ids without its trailing stop ids: what every decoder of whole replies shows.
    public static func text(of ids: [Int32], stopTokenIds: Set<Int32>, tokenizer: any Tokenizer) -> String {
        var ids = ids
        while let last = ids.last, stopTokenIds.contains(last) { ids.removeLast() }
        return tokenizer.decode(ids)
    }

    // MARK: - Helpers

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
}
