// Implements the editable prompt files of the LLM teachers (`data/prompts/*.txt`): loading, placeholder checks
// and filling; does not send them anywhere (OpenAITeacher does).
import Foundation
import KnowTuneTensor

public struct TeacherPrompts: Equatable, Sendable {
    public var system: String
    public var extractFacts: String
    public var rewriteFacts: String
    public var rephraseAnswer: String
    public var falsifyFacts: String

    /// The file of each prompt and the placeholders it must contain.
    static let files: [(name: String, placeholders: [String])] = [
        ("system.txt", []),
        ("extract_facts.txt", ["{question}", "{answer}"]),
        ("rewrite_facts.txt", ["{question}", "{facts}"]),
        ("rephrase_answer.txt", ["{question}", "{answer}"]),
        ("falsify_facts.txt", ["{question}", "{facts}", "{count}"]),
    ]

    public init(system: String, extractFacts: String, rewriteFacts: String, rephraseAnswer: String, falsifyFacts: String) {
        self.system = system
        self.extractFacts = extractFacts
        self.rewriteFacts = rewriteFacts
        self.rephraseAnswer = rephraseAnswer
        self.falsifyFacts = falsifyFacts
    }

    /// Reads the five prompt files of `directory`, reporting every missing file or placeholder at once.
    public init(directory: String) throws {
        var texts: [String] = []
        var problems: [String] = []
        for (name, placeholders) in Self.files {
            switch Self.read(name, in: directory, placeholders: placeholders) {
            case let .success(text): texts.append(text)
            case let .failure(problem): problems.append(problem.text); texts.append("")
            }
        }
        guard problems.isEmpty else {
            throw KnowTuneError.invalidConfiguration("teacher prompts in \(directory): " + problems.joined(separator: "; "))
        }
        self.init(system: texts[0], extractFacts: texts[1], rewriteFacts: texts[2], rephraseAnswer: texts[3], falsifyFacts: texts[4])
    }

    struct Problem: Error { let text: String }

    /// The trimmed text of prompt file `name` in `directory`, or what is wrong with it (missing, or lacking some of
    /// `placeholders`).
    static func read(_ name: String, in directory: String, placeholders: [String]) -> Result<String, Problem> {
        let path = (directory as NSString).appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: path) else { return .failure(Problem(text: "\(path) is missing")) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let missing = placeholders.filter { !text.contains($0) }
        return missing.isEmpty ? .success(text) : .failure(Problem(text: "\(path) lacks \(missing.joined(separator: ", "))"))
    }

    /// One prompt file, for prompts outside the five (the pairwise judge's): its text, or an error saying what is wrong.
    public static func single(_ name: String, in directory: String, placeholders: [String] = []) throws -> String {
        switch read(name, in: directory, placeholders: placeholders) {
        case let .success(text): return text
        case let .failure(problem): throw KnowTuneError.invalidConfiguration("teacher prompts in \(directory): " + problem.text)
        }
    }

    /// A stable hash of every prompt (part of the cache key: a changed prompt rebuilds).
    public var fingerprint: String {
        var hash = StableHash()
        for text in [system, extractFacts, rewriteFacts, rephraseAnswer, falsifyFacts] { hash.combine(text) }
        return hash.hex
    }

    /// `template` with each `{name}` replaced (one pass, so a value containing "{answer}" is not replaced again).
    public static func fill(_ template: String, _ values: [String: String]) -> String {
        var output = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            output += rest[..<open]
            if let close = rest[open...].firstIndex(of: "}"), let value = values[String(rest[rest.index(after: open)..<close])] {
                output += value
                rest = rest[rest.index(after: close)...]
            } else {
                output.append("{")
                rest = rest[rest.index(after: open)...]
            }
        }
        return output + rest
    }

    /// "1. first\n2. second".
    public static func numbered(_ facts: [String]) -> String {
        facts.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: "\n")
    }
}
