// Implements KA, fine-grained knowledge augmentation (paper §3.2, Fig. 2 top): per record extract the atomic
// facts, score their perplexity, keep the hardest (`--ka_keep`), rewrite them into one new QA pair; the KA
// dataset is the original pairs followed by the new ones. Does not shard or cache (KnowledgeBuild does).
import Foundation
import KnowTuneData
import KnowTuneTensor

/// One record of the source dataset, as the builders see it.
public struct SourceRecord: Codable, Equatable, Sendable {
    /// Position in the source dataset (after `--max_samples`).
    public var index: Int
    public var instruction: String
    public var input: String
    /// The gold answer (for a ranking dataset, the chosen one).
    public var output: String

    public init(index: Int, instruction: String, input: String = "", output: String) {
        self.index = index
        self.instruction = instruction
        self.input = input
        self.output = output
    }

    public init(index: Int, example: AlpacaExample) {
        self.init(index: index, instruction: example.instruction, input: example.input, output: example.responses.first ?? "")
    }

    /// The question as the model sees it (LLaMA-Factory: instruction + "\n" + input).
    public var question: String { ChatTemplate.userContent(instruction: instruction, input: input) }

    /// A stable hash of the record's text (cache entries are tied to it).
    public var fingerprint: String {
        var hash = StableHash()
        hash.combine(instruction)
        hash.combine(input)
        hash.combine(output)
        return hash.hex
    }
}

/// Which facts KA keeps (`--ka_keep`).
public enum FactKeepRule: Equatable, Sendable, CustomStringConvertible {
    /// Facts whose perplexity is at or above the answer's median (the default).
    case median
    /// The hardest ⌈fraction·n⌉ facts, 0 < fraction ≤ 1.
    case fraction(Double)

    /// "median" or a number in (0, 1].
    public init(parsing text: String) throws {
        if text == "median" {
            self = .median
            return
        }
        guard let value = Double(text), value > 0, value <= 1 else {
            throw KnowTuneError.invalidConfiguration("--ka_keep \(text): expected \"median\" or a fraction in (0, 1]")
        }
        self = .fraction(value)
    }

    public var description: String {
        switch self {
        case .median: return "median"
        case let .fraction(value): return String(value)
        }
    }

    /// The indices of the kept facts, ascending (answer order); at least one when there are facts.
    ///
    /// Median: the middle value, or the mean of the two middle values for an even count (Fig. 2: 18.86, 19.54,
    /// 30.74 → median 19.54 → the last two are kept). Fraction: the ⌈fraction·n⌉ highest, ties to the earlier fact.
    public func keptIndices(_ perplexities: [Double]) -> [Int] {
        guard !perplexities.isEmpty else { return [] }
        let ranked = perplexities.indices.sorted { perplexities[$0] > perplexities[$1] || (perplexities[$0] == perplexities[$1] && $0 < $1) }
        switch self {
        case .median:
            let sorted = perplexities.sorted()
            let n = sorted.count
            let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
            let kept = perplexities.indices.filter { perplexities[$0] >= median }
            return kept.isEmpty ? [ranked[0]] : kept
        case let .fraction(fraction):
            let count = min(perplexities.count, max(1, Int((fraction * Double(perplexities.count)).rounded(.up))))
            return ranked.prefix(count).sorted()
        }
    }
}

/// What KA made of one record (cached per record; the dataset is assembled from these).
public struct AugmentationOutcome: Codable, Equatable, Sendable {
    public var index: Int
    public var facts: [String]
    public var perplexities: [Double]
    public var keptIndices: [Int]
    /// The new fine-grained pair; nil when the record was skipped.
    public var newPair: QAPair?
    /// Why no pair was made: "no_facts" or "teacher_reply".
    public var skipReason: String?
    /// The teacher's message for a skipped reply.
    public var detail: String?
}

public struct KnowledgeAugmentationBuilder {
    public let teacher: any Teacher
    public let scorer: any FactScoring
    public let keep: FactKeepRule

    public init(teacher: any Teacher, scorer: any FactScoring, keep: FactKeepRule = .median) {
        self.teacher = teacher
        self.scorer = scorer
        self.keep = keep
    }

    /// What the outcomes depend on besides the records (the cache key).
    public var identity: String { "KA teacher=[\(teacher.identity)] scorer=[\(scorer.identity)] keep=\(keep)" }

    public func augment(_ record: SourceRecord) throws -> AugmentationOutcome {
        var outcome = AugmentationOutcome(index: record.index, facts: [], perplexities: [], keptIndices: [])
        do {
            outcome.facts = try teacher.extractFacts(question: record.question, answer: record.output)
        } catch let KnowTuneError.malformedReply(message) {
            outcome.skipReason = "teacher_reply"
            outcome.detail = message
            return outcome
        }
        guard !outcome.facts.isEmpty else {
            outcome.skipReason = "no_facts"
            return outcome
        }
        outcome.perplexities = try scorer.perplexities(instruction: record.instruction, input: record.input, facts: outcome.facts)
        outcome.keptIndices = keep.keptIndices(outcome.perplexities)
        do {
            outcome.newPair = try teacher.rewrite(question: record.question, facts: outcome.facts, kept: outcome.keptIndices)
        } catch let KnowTuneError.malformedReply(message) {
            outcome.skipReason = "teacher_reply"
            outcome.detail = message
        }
        return outcome
    }

    /// The KA dataset: every original pair (verbatim, in order), then the new pairs in record order.
    public static func dataset(records: [SourceRecord], outcomes: [AugmentationOutcome]) -> [QAPair] {
        records.map { QAPair(instruction: $0.instruction, input: $0.input, output: $0.output) }
            + outcomes.sorted { $0.index < $1.index }.compactMap(\.newPair)
    }
}
