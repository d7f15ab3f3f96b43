// Implements the interface every KnowTuning teacher offers (extract atomic facts, rewrite kept facts into a QA
// pair, rephrase a gold answer, revise facts to be false), the `--teacher` choice and the teacher errors; does not
// implement a teacher (RuleTeacher and PromptedTeacher do).
import Foundation
import KnowTuneTensor

/// One question–answer pair in Alpaca form (`input` is empty for generated pairs).
public struct QAPair: Codable, Equatable, Sendable {
    public var instruction: String
    public var input: String
    public var output: String

    public init(instruction: String, input: String = "", output: String) {
        self.instruction = instruction
        self.input = input
        self.output = output
    }
}

/// The model (or rule set) that turns gold answers into KnowTuning training data (paper Fig. 2: "Extract",
/// "Rewrite", "Rephrase", "Revise").
///
/// Every method is called once per record and must be deterministic for the same inputs and random state, so
/// that a build gives the same output whatever the number of ranks. A reply that cannot be used throws
/// ``KnowTuneError/malformedReply(_:)``: the builder skips that item and counts it. Any other error stops the build
/// (results already computed stay in the cache).
public protocol Teacher: AnyObject {
    /// What the outputs depend on besides the inputs (teacher kind, model, prompt version); part of the cache key.
    var identity: String { get }

    /// The answer's atomic facts: short, self-contained declarative sentences, in answer order. Empty when the
    /// answer holds none.
    func extractFacts(question: String, answer: String) throws -> [String]

    /// One new, fine-grained QA pair whose answer states the kept facts `facts[kept]` (the difficult facts of the
    /// KA stage, `kept` ascending); the other facts are context only.
    func rewrite(question: String, facts: [String], kept: [Int]) throws -> QAPair

    /// The gold answer in other words, with the same facts (the chosen side of every KC pair).
    func rephrase(question: String, answer: String) throws -> String

    /// `facts` revised to be false, one output per input fact and in the same order (a fact the teacher cannot
    /// falsify comes back unchanged). `recordIndex` is the fact's record, so entities can be swapped across
    /// records; `random` is the record's own generator.
    func falsify(question: String, facts: [String], recordIndex: Int, random: inout SplitMix64) throws -> [String]
}

/// The `--teacher` choice.
public enum TeacherKind: String, CaseIterable, Codable, Sendable {
    /// Deterministic rules, no model (RuleTeacher).
    case rules
    /// A model KnowTune loads, prompted through its chat template (PromptedTeacher + LocalChatBackend).
    case local
    /// An OpenAI-compatible `/v1/chat/completions` endpoint (PromptedTeacher + OpenAIChatBackend).
    case openai

    public static func named(_ name: String) throws -> TeacherKind {
        guard let kind = TeacherKind(rawValue: name) else {
            throw KnowTuneError.unsupported(what: "teacher '\(name)'", supported: allCases.map(\.rawValue).joined(separator: ", "))
        }
        return kind
    }
}
