// Implements the deterministic `rules` teacher: facts from AtomicFactSplitter, the KA question "What else should
// one know about X?" built from the first kept fact's subject in the original question's words, the gold answer
// as its own rephrasing, and FactFalsifier's revisions; does not call any model.
import Foundation
import KnowTuneTensor

/// The teacher that needs no model: fully deterministic, offline, free.
public final class RuleTeacher: Teacher {
    public let splitter: AtomicFactSplitter
    public let falsifier: FactFalsifier

    /// Bump when a rule changes, so cached results made with the old rules are not reused.
    public static let version = "rules-v1"

    public var identity: String { "\(Self.version) entities=\(falsifier.pool.fingerprint)" }

    /// A rules teacher whose entity swaps draw on `entityPool` (empty: no swaps).
    public init(entityPool: EntityPool = EntityPool(), splitter: AtomicFactSplitter = AtomicFactSplitter()) {
        self.splitter = splitter
        self.falsifier = FactFalsifier(pool: entityPool)
    }

    /// A rules teacher whose entity pool holds the named entities of `records`' answers.
    public convenience init(records: [SourceRecord]) {
        self.init(entityPool: EntityPool(answers: records.map { ($0.index, $0.output) }))
    }

    public func extractFacts(question: String, answer: String) throws -> [String] {
        splitter.facts(in: answer)
    }

    /// The question asks about the first kept fact's subject in the original question's terms ("What else should
    /// one know about X?"); the answer is the kept facts joined with spaces, in answer order.
    public func rewrite(question: String, facts: [String], kept: [Int]) throws -> QAPair {
        guard let first = kept.first, kept.allSatisfy({ facts.indices.contains($0) }) else {
            throw KnowTuneError.malformedReply("no kept facts to rewrite")
        }
        let answer = kept.map { facts[$0] }.joined(separator: " ")
        if let topic = topic(facts: facts, firstKept: first, question: question) {
            return QAPair(instruction: "What else should one know about \(topic)?", output: answer)
        }
        let asked = question.trimmingCharacters(in: .whitespacesAndNewlines)
        return QAPair(instruction: "Regarding \"\(asked)\": what else should one know?", output: answer)
    }

    /// The gold answer itself (a rule cannot rephrase without changing meaning).
    public func rephrase(question: String, answer: String) throws -> String { answer }

    public func falsify(question: String, facts: [String], recordIndex: Int, random: inout SplitMix64) throws -> [String] {
        let context = facts.joined(separator: " ")
        return facts.map { falsifier.falsify($0, question: question, context: context, recordIndex: recordIndex, random: &random) }
    }

    // MARK: - The KA question's topic

    /// What the new question asks about, or nil when no clean topic is found:
    /// 1. the subject of the first kept fact; when it is a pronoun or missing ("It is …", "To help, you …"), the
    ///    subject of the nearest earlier fact that has a non-pronoun one (a one-step coreference guess);
    /// 2. written as the longest word run it shares with the question (with a content word), spelled as in the
    ///    question ("Sleep training …" + "What is sleep training?" → "sleep training"), else as the subject with a
    ///    leading stop word lowercased ("The flag" → "the flag");
    /// 3. without a subject, the question's own topic when a known opening strips it to a short phrase
    ///    (``questionTopic(_:)``).
    public func topic(facts: [String], firstKept: Int, question: String) -> String? {
        let questionWords = question.split(whereSeparator: { $0.isWhitespace })
        for index in stride(from: firstKept, through: 0, by: -1) {
            guard let subject = splitter.subject(of: facts[index]) else { continue }
            let words = subject.split(separator: " ")
            if words.allSatisfy({ EnglishWords.stopWords.contains(EnglishWords.bare($0)) }) { continue }
            if let shared = Self.longestSharedRun(words, questionWords) { return shared }
            if let first = words.first, EnglishWords.stopWords.contains(EnglishWords.bare(first)) {
                return ([first.lowercased()] + words.dropFirst().map(String.init)).joined(separator: " ")
            }
            return subject
        }
        return Self.questionTopic(question)
    }

    /// The longest run of consecutive words (compared without case and punctuation) that `words` and `question`
    /// share and that contains a non-stop word, as written in the question.
    static func longestSharedRun(_ words: [Substring], _ question: [Substring]) -> String? {
        let a = words.map { EnglishWords.bare($0) }, b = question.map { EnglishWords.bare($0) }
        var best: (start: Int, length: Int)?
        for i in a.indices {
            for j in b.indices {
                var length = 0
                while i + length < a.count, j + length < b.count, !a[i + length].isEmpty, a[i + length] == b[j + length] { length += 1 }
                guard length > 0, b[j..<(j + length)].contains(where: { !EnglishWords.stopWords.contains($0) }) else { continue }
                if length > (best?.length ?? 0) { best = (j, length) }
            }
        }
        guard let best else { return nil }
        // Trim stop words at both ends ("is sleep training" → "sleep training") and the punctuation of the ends.
        var run = Array(question[best.start..<(best.start + best.length)])
        while let first = run.first, EnglishWords.stopWords.contains(EnglishWords.bare(first)) { run.removeFirst() }
        while let last = run.last, EnglishWords.stopWords.contains(EnglishWords.bare(last)) { run.removeLast() }
        let text = run.joined(separator: " ").trimmingCharacters(in: CharacterSet(charactersIn: "?.!,;:\"'()"))
        return text.isEmpty ? nil : text
    }

    /// Openings followed by a noun phrase (not "why do …" or "how does …", which are followed by a clause).
    static let questionOpenings = [
        "what can you tell me about", "what do you know about", "can you tell me about", "tell me about",
        "give me a summary of", "what is (are)", "what are the", "what is the", "what was the", "what were the",
        "what is", "what are", "what was", "what were", "who is", "who are", "who was", "who were", "where is",
        "where are", "where was", "do you have information about", "describe", "explain", "summarize",
    ]

    /// The question's topic when a known opening leaves a short phrase ("What is (are) Gilbert syndrome ?" →
    /// "Gilbert syndrome"; "What was the US civil war about?" → "US civil war"); nil otherwise.
    public static func questionTopic(_ question: String) -> String? {
        let trimmed = question.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = trimmed.lowercased()
        guard !trimmed.contains("\n"), let opening = questionOpenings.first(where: { lower.hasPrefix($0 + " ") }) else { return nil }
        var words = trimmed.dropFirst(opening.count + 1).split(whereSeparator: { $0.isWhitespace })
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "?.!,;:")) }.filter { !$0.isEmpty }
        while let last = words.last, EnglishWords.stopWords.contains(last.lowercased()) { words.removeLast() }
        guard (1...6).contains(words.count),
              !words.contains(where: { EnglishWords.auxiliaries.contains($0.lowercased()) || ["i", "my", "you", "your", "me"].contains($0.lowercased()) })
        else { return nil }
        return words.joined(separator: " ")
    }
}
