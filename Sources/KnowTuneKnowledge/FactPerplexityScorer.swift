// Implements the KA difficulty score: the perplexity exp(nll_mean) of each atomic fact as the response to its
// record's question under a prompt template (`alpaca`), computed by the base model with SequenceScorer; plus the
// record-sharded scoring of many records over the ranks. Does not choose which facts to keep (the KA builder does).
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

/// Something that gives each fact of a question a perplexity (the model scorer, or a stand-in in tests).
public protocol FactScoring: AnyObject {
    /// What the scores depend on (model, template); part of the cache key.
    var identity: String { get }
    /// One perplexity per fact, in order.
    func perplexities(instruction: String, input: String, facts: [String]) throws -> [Double]
}

/// Perplexity of facts under the base model being tuned (paper Fig. 2: "PPL" 18.86, 19.54, 30.74).
///
/// The prompt is the record's question in the template (`ChatTemplate.userContent(instruction:input:)`), the
/// response is the fact **without EOS**: a fact is one part of an answer, so the model's belief that the answer
/// ends after it is not part of its difficulty. A record's facts are scored in one `SequenceScorer.score` call of
/// their own, the question's prompt run once for all of them, so a fact's score does not depend on which other records
/// share a rank (identical for any rank count).
public final class FactPerplexityScorer: FactScoring, @unchecked Sendable {
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate
    public let scorer: SequenceScorer
    /// Prompt + fact tokens are cut to this length (LLaMA-Factory's default `cutoff_len`).
    public let maximumLength: Int
    public let appendsEOS: Bool
    public let identity: String
    private let lock = NSLock()

    public init(model: LoadedModel, lora: LoRABuffer? = nil, template: ChatTemplate = .alpaca, maximumLength: Int = 1024,
                appendsEOS: Bool = false, tokenBudget: Int = 2048) {
        tokenizer = model.tokenizer
        self.template = template
        let decoder = LlamaDecoder(weights: model.weights)
        scorer = SequenceScorer(decoder: decoder, lora: lora, tokenBudget: tokenBudget)
        self.maximumLength = min(maximumLength, decoder.rotary.maxPositions)
        self.appendsEOS = appendsEOS
        identity = "ppl model=\(model.source) template=\(template.name) eos=\(appendsEOS) cutoff=\(self.maximumLength)"
    }

    public func perplexities(instruction: String, input: String, facts: [String]) throws -> [Double] {
        guard !facts.isEmpty else { return [] }
        // One pass at a time: the scorer's buffers are shared, and records in flight call from several threads.
        lock.lock()
        defer { lock.unlock() }
        let fullPrompt = template.encodePrompt(ChatTemplate.userContent(instruction: instruction, input: input), tokenizer: tokenizer)
        let pairs = facts.map { fact -> (prompt: [Int32], response: [Int32]) in
            var response = template.encodeResponse(fact, tokenizer: tokenizer, appendEOS: appendsEOS)
            if response.isEmpty { response = [tokenizer.eosTokenId] }
            var prompt = fullPrompt
            if prompt.count + response.count > maximumLength {
                // Keep the end of the prompt (the question and "### Response:") and the start of the fact.
                prompt = Array(prompt.suffix(max(1, min(prompt.count, maximumLength / 2))))
                response = Array(response.prefix(max(1, maximumLength - prompt.count)))
            }
            return (prompt, response)
        }
        return try scorer.score(pairs, sharingPrompts: true).enumerated().map { index, score in
            guard !score.meanNegativeLogLikelihood.isNaN else {
                throw KnowTuneError.numerical("NaN log-likelihood for fact \(index) of question \"\(instruction.prefix(60))\"")
            }
            // An overflow is "maximally difficult", and must stay encodable in the JSON cache.
            return min(exp(score.meanNegativeLogLikelihood), Double.greatestFiniteMagnitude)
        }
    }
}

/// The perplexities of one record's facts.
public struct RecordFactScores: Codable, Equatable, Sendable {
    public var index: Int
    public var perplexities: [Double]

    public init(index: Int, perplexities: [Double]) {
        self.index = index
        self.perplexities = perplexities
    }
}

extension FactScoring {
    /// Scores every record's facts, each rank taking records `rank, rank + size, …`, and gathers all results on
    /// every rank (one `allGather`). `items` must be the same list on every rank.
    public func scoreSharded(_ items: [(record: SourceRecord, facts: [String])], communicator: any Communicator) throws
        -> [RecordFactScores] {
        let mine = stride(from: communicator.rank, to: items.count, by: max(1, communicator.size)).map { items[$0] }
        let local = try Consensus.runAgreed(communicator: communicator, operation: "fact perplexities") {
            try mine.map { item in
                RecordFactScores(index: item.record.index,
                                 perplexities: try perplexities(instruction: item.record.instruction, input: item.record.input, facts: item.facts))
            }
        }
        let gathered = try communicator.allGather(Array(try JSONEncoder().encode(local)), operation: "fact perplexities: gather")
        let decoder = JSONDecoder()
        let all = try gathered.flatMap { try decoder.decode([RecordFactScores].self, from: Data($0)) }
        return all.sorted { $0.index < $1.index }
    }
}
