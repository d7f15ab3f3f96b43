// Implements the paper's knowledge-aware pairwise evaluation: a chat model compares two answers to the same
// question on completeness, factuality and logicality, asked in both answer orders so that a preference for a
// position cancels out; does not read prediction files (the CLI does) or talk to a model itself (ChatBackend).
import Foundation
import KnowTuneGeneration
import KnowTuneTensor

public final class PairwiseJudge {
    /// The aspects of the paper's GPT-4 evaluation, with the definition the prompt gives the judge.
    public enum Aspect: String, CaseIterable, Codable, Sendable {
        case completeness, factuality, logicality

        public var definition: String {
            switch self {
            case .completeness: return "Completeness: which answer covers more of the knowledge needed to answer the question?"
            case .factuality: return "Factuality: which answer states its knowledge more correctly, with fewer false statements?"
            case .logicality: return "Logicality: which answer presents its knowledge in a more logical, well-structured order?"
            }
        }
    }

    /// The first answer's result against the second.
    public enum Outcome: String, Codable, Sendable { case win, tie, lose }

    /// Win/tie/lose counts per aspect, from the first file's point of view, plus comparisons that failed.
    public struct Tally: Codable, Equatable, Sendable {
        public var counts: [String: [String: Int]] = [:]
        public var unusableReplies = 0

        public init() {}

        mutating func add(_ outcome: Outcome, for aspect: Aspect) {
            counts[aspect.rawValue, default: ["win": 0, "tie": 0, "lose": 0]][outcome.rawValue, default: 0] += 1
        }
    }

    public let backend: any ChatBackend
    public let system: String
    public let template: String

    static let placeholders = ["{aspect}", "{aspect_definition}", "{question}", "{reference}", "{answer_a}", "{answer_b}"]

    public init(backend: any ChatBackend, promptsDirectory: String) throws {
        self.backend = backend
        template = try TeacherPrompts.single("judge_pairwise.txt", in: promptsDirectory, placeholders: Self.placeholders)
        system = try TeacherPrompts.single("system.txt", in: promptsDirectory)
    }

    /// Compares `first` with `second` on `aspect`: each order votes +1 (first better), 0 or −1; the sum decides,
    /// so a judge that always prefers answer A gives a tie.
    public func compare(question: String, reference: String, first: String, second: String, aspect: Aspect) throws -> Outcome {
        let vote = try winner(question: question, reference: reference, a: first, b: second, aspect: aspect).vote
            - winner(question: question, reference: reference, a: second, b: first, aspect: aspect).vote
        return vote > 0 ? .win : vote < 0 ? .lose : .tie
    }

    enum Winner: String {
        case a = "A", b = "B", tie
        var vote: Int { self == .a ? 1 : self == .b ? -1 : 0 }
    }

    func winner(question: String, reference: String, a: String, b: String, aspect: Aspect) throws -> Winner {
        let prompt = TeacherPrompts.fill(template, ["aspect": aspect.rawValue, "aspect_definition": aspect.definition, "question": question,
                                                    "reference": reference, "answer_a": a, "answer_b": b])
        var last = KnowTuneError.malformedReply("no attempt made")
        for attempt in 0..<backend.attempts {
            if attempt > 0 { Thread.sleep(forTimeInterval: backend.backoff * pow(2, Double(attempt - 1))) }
            do {
                let reply = try backend.complete(system: system, user: prompt, schema: Self.verdictSchema)
                if let winner = Self.parse(reply) { return winner }
                last = .malformedReply("expected {\"winner\": \"A\" | \"B\" | \"tie\"}, got: \(reply.prefix(200))")
            } catch let error as KnowTuneError where error.isRetryable {
                last = error
            }
        }
        throw last
    }

    /// `{"winner": "A" | "B" | "tie"}`: what the prompt asks for, enforced by backends that decode under a schema.
    static let verdictSchema = ResponseSchema.object(
        properties: [.init(name: "winner", schema: .literals(["\"A\"", "\"B\"", "\"tie\""]))], required: ["winner"])

    static func parse(_ reply: String) -> Winner? {
        guard let text = try? PromptedTeacher.jsonText(in: reply, open: "{", close: "}"),
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let value = (object["winner"] as? String)?.trimmingCharacters(in: .whitespaces) else { return nil }
        switch value.lowercased() {
        case "a": return .a
        case "b": return .b
        case "tie": return .tie
        default: return nil
        }
    }

    /// Judges every pair on every aspect. A comparison whose replies stay unusable is counted, not fatal; a
    /// request that fails after the retries stops the run.
    public func judge(_ items: [(question: String, reference: String, first: String, second: String)],
                      progress: ((Int) -> Void)? = nil) throws -> Tally {
        var tally = Tally()
        for (index, item) in items.enumerated() {
            for aspect in Aspect.allCases {
                do {
                    tally.add(try compare(question: item.question, reference: item.reference, first: item.first, second: item.second,
                                          aspect: aspect), for: aspect)
                } catch KnowTuneError.malformedReply {
                    tally.unusableReplies += 1
                }
            }
            progress?(index + 1)
        }
        return tally
    }
}
