// Implements KC, coarse-grained knowledge comparison (paper §3.3, Fig. 2 bottom): per record a rephrased gold
// answer as the chosen side of three pairs whose rejected sides are the facts disturbed for completeness
// (deleted), factuality (revised) and logicality (shuffled), concatenated; skips and counts a disturbance that
// is impossible or changes nothing. Does not shard or cache (KnowledgeBuild does).
import Foundation
import KnowTuneTensor

/// The three knowledge disturbances, in the order their pairs are written.
public enum Disturbance: String, CaseIterable, Codable, Sendable {
    /// Completeness: a share of the facts deleted, order kept.
    case incomplete
    /// Factuality: the facts revised to be false.
    case nonfactual
    /// Logicality: the facts shuffled (never into their own order).
    case illogical
}

/// One `[chosen, rejected]` pair with how its rejected side was made.
public struct ComparisonPair: Codable, Equatable, Sendable {
    public var disturbance: Disturbance
    public var rejected: String
    /// Incomplete: the deleted facts' indices, ascending.
    public var deletedIndices: [Int]?
    /// Illogical: the facts' order in the rejected answer (a permutation of 0..<n, never the identity).
    public var order: [Int]?
    /// Nonfactual: the revised facts, one per fact (unchanged ones included).
    public var revisedFacts: [String]?
}

/// What KC made of one record (cached per record).
public struct ComparisonOutcome: Codable, Equatable, Sendable {
    public var index: Int
    public var facts: [String]
    public var chosen: String?
    public var pairs: [ComparisonPair]
    /// Skipped disturbances: disturbance (or "record") → reason ("no_facts", "too_few_facts", "unchanged",
    /// "equals_chosen", "teacher_reply").
    public var skipped: [String: String]
    public var detail: String?
}

public struct KnowledgeComparisonBuilder {
    public let teacher: any Teacher
    /// The share of facts deleted for the incomplete answer (`--kc_delete_ratio`).
    public let deleteRatio: Double
    public let seed: UInt64

    public init(teacher: any Teacher, deleteRatio: Double = 0.5, seed: UInt64 = 42) throws {
        guard deleteRatio > 0, deleteRatio < 1 else {
            throw KnowTuneError.invalidConfiguration("--kc_delete_ratio \(deleteRatio): expected a value in (0, 1)")
        }
        self.teacher = teacher
        self.deleteRatio = deleteRatio
        self.seed = seed
    }

    public var identity: String { "KC teacher=[\(teacher.identity)] delete_ratio=\(deleteRatio) seed=\(seed)" }

    /// How many of `count` facts the incomplete answer loses: ⌊ratio·n⌋, at least 1 and at most n − 1 (Fig. 2
    /// deletes 1 of 3 facts).
    public func deletionCount(factCount count: Int) -> Int {
        min(count - 1, max(1, Int((deleteRatio * Double(count)).rounded(.down))))
    }

    /// The record's generator for one disturbance: a pure function of (seed, record, disturbance), so the result
    /// does not depend on which rank builds the record or in which order.
    public func random(record: Int, _ disturbance: Disturbance) -> SplitMix64 {
        let salt: UInt64 = disturbance == .incomplete ? 0x1111 : disturbance == .nonfactual ? 0x2222 : 0x3333
        return SplitMix64(seed: SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(record) &+ 0x9E37_79B9)) ^ salt)
    }

    public func compare(_ record: SourceRecord) throws -> ComparisonOutcome {
        var outcome = ComparisonOutcome(index: record.index, facts: [], chosen: nil, pairs: [], skipped: [:])
        let question = record.question
        do {
            outcome.facts = try teacher.extractFacts(question: question, answer: record.output)
            guard !outcome.facts.isEmpty else {
                outcome.skipped["record"] = "no_facts"
                return outcome
            }
            outcome.chosen = try teacher.rephrase(question: question, answer: record.output)
        } catch let KnowTuneError.malformedReply(message) {
            outcome.skipped["record"] = "teacher_reply"
            outcome.detail = message
            return outcome
        }
        let facts = outcome.facts
        let chosen = outcome.chosen ?? record.output
        let normalizedChosen = Self.normalized(chosen)
        for disturbance in Disturbance.allCases {
            var random = self.random(record: record.index, disturbance)
            var pair: ComparisonPair
            switch disturbance {
            case .incomplete:
                guard facts.count >= 2 else {
                    outcome.skipped[disturbance.rawValue] = "too_few_facts"
                    continue
                }
                let deleted = Self.sample(deletionCount(factCount: facts.count), of: facts.count, random: &random)
                let kept = facts.indices.filter { !deleted.contains($0) }.map { facts[$0] }
                pair = ComparisonPair(disturbance: .incomplete, rejected: kept.joined(separator: " "), deletedIndices: deleted)
            case .nonfactual:
                let revised: [String]
                do {
                    revised = try teacher.falsify(question: question, facts: facts, recordIndex: record.index, random: &random)
                } catch let KnowTuneError.malformedReply(message) {
                    outcome.skipped[disturbance.rawValue] = "teacher_reply"
                    outcome.detail = message
                    continue
                }
                guard revised.count == facts.count, revised != facts else {
                    outcome.skipped[disturbance.rawValue] = revised.count == facts.count ? "unchanged" : "teacher_reply"
                    continue
                }
                pair = ComparisonPair(disturbance: .nonfactual, rejected: revised.joined(separator: " "), revisedFacts: revised)
            case .illogical:
                guard facts.count >= 2 else {
                    outcome.skipped[disturbance.rawValue] = "too_few_facts"
                    continue
                }
                let order = Self.derangedShuffle(facts.count, random: &random)
                pair = ComparisonPair(disturbance: .illogical, rejected: order.map { facts[$0] }.joined(separator: " "), order: order)
                if pair.rejected == facts.joined(separator: " ") {
                    outcome.skipped[disturbance.rawValue] = "unchanged"
                    continue
                }
            }
            guard Self.normalized(pair.rejected) != normalizedChosen else {
                outcome.skipped[disturbance.rawValue] = "equals_chosen"
                continue
            }
            outcome.pairs.append(pair)
        }
        return outcome
    }

    /// Whitespace-collapsed text, for the "chosen never equals rejected" check.
    static func normalized(_ text: String) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// `count` distinct indices of 0..<n, ascending (a partial Fisher–Yates shuffle).
    static func sample(_ count: Int, of n: Int, random: inout SplitMix64) -> [Int] {
        var indices = Array(0..<n)
        for i in 0..<count {
            let j = i + Int(random.next() % UInt64(n - i))
            indices.swapAt(i, j)
        }
        return indices.prefix(count).sorted()
    }

    /// A uniformly drawn permutation of 0..<n (n ≥ 2) other than the identity.
    static func derangedShuffle(_ n: Int, random: inout SplitMix64) -> [Int] {
        let identity = Array(0..<n)
        var order = identity
        while order == identity {
            for i in stride(from: n - 1, to: 0, by: -1) {
                order.swapAt(i, Int(random.next() % UInt64(i + 1)))
            }
        }
        return order
    }

    /// The KC dataset: per record in order, one `[chosen, rejected]` record per pair (incomplete, nonfactual,
    /// illogical), with the record's instruction and input.
    public static func dataset(records: [SourceRecord], outcomes: [ComparisonOutcome]) -> [RankingPair] {
        let byIndex = Dictionary(outcomes.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        return records.flatMap { record -> [RankingPair] in
            guard let outcome = byIndex[record.index], let chosen = outcome.chosen else { return [] }
            return outcome.pairs.map { RankingPair(instruction: record.instruction, input: record.input, chosen: chosen, rejected: $0.rejected) }
        }
    }
}

/// A pairwise record: LLaMA-Factory's ranking format `{"instruction", "input", "output": [chosen, rejected]}`.
public struct RankingPair: Equatable, Sendable {
    public var instruction: String
    public var input: String
    public var chosen: String
    public var rejected: String
}
