// Implements the `rules` teacher's non-factual revision of one fact: change its numbers, dates and number words,
// swap a named entity for one from another record, or negate its copula (one kind of edit per fact, chosen by the
// record's generator); plus the cross-record entity pool. Does not check that the result is actually false
// (a rule edit can produce a true statement by chance) and does not edit non-English text except for digits.
import Foundation
import KnowTuneTensor

/// Named entities (capitalised word runs) of a dataset, in first-occurrence order, each with the record it came
/// from, so that a fact's entity can be replaced by one from a different record.
public struct EntityPool: Sendable {
    public struct Entry: Equatable, Sendable {
        public let text: String
        public let wordCount: Int
        public let record: Int
    }

    public let entries: [Entry]
    private let byWordCount: [Int: [Int]]

    /// An empty pool: entity swaps are never possible.
    public init() {
        entries = []
        byWordCount = [:]
    }

    /// The pool of `answers` (record index, answer text), deduplicated by text (first record kept).
    public init(answers: [(record: Int, text: String)]) {
        var entries: [Entry] = []
        var seen: Set<String> = []
        for (record, text) in answers {
            for occurrence in FactFalsifier.entities(in: text) where seen.insert(occurrence.text).inserted {
                entries.append(Entry(text: occurrence.text, wordCount: occurrence.text.split(separator: " ").count, record: record))
            }
        }
        self.entries = entries
        var groups: [Int: [Int]] = [:]
        for (index, entry) in entries.enumerated() { groups[entry.wordCount, default: []].append(index) }
        byWordCount = groups
    }

    /// A stable hash of the pool (part of the KC cache key: the revisions depend on it).
    public var fingerprint: String {
        var hash = StableHash()
        for entry in entries {
            hash.combine(entry.text)
            hash.combine(String(entry.record))
        }
        return hash.hex
    }

    /// A different entity from another record, not occurring in `avoiding`, preferring the same word count.
    func replacement(for entity: String, excludingRecord record: Int, avoiding text: String, random: inout SplitMix64) -> String? {
        let wordCount = entity.split(separator: " ").count
        let sameLength = byWordCount[wordCount] ?? []
        for candidates in [sameLength, Array(entries.indices)] where !candidates.isEmpty {
            for _ in 0..<32 {
                let entry = entries[candidates[Int(random.next() % UInt64(candidates.count))]]
                if entry.record != record, entry.text != entity, !text.contains(entry.text) { return entry.text }
            }
        }
        return nil
    }
}

/// Rule-based "revise facts to be false" (paper Fig. 2, nonfactual knowledge: "edible" → "inedible", "apple
/// tree" → "banana tree").
///
/// Each fact gets one kind of edit, drawn with the record's generator among the kinds that apply to it:
/// - **numbers and dates**: every number changes (a year by ±1…25, an integer n by ±1…max(1, n/2), a decimal
///   in its last digit), every month and weekday name becomes another, every number word ("three") another;
/// - **entity swap**: one capitalised entity (not the first word of the fact unless it is a multi-word name or an
///   acronym) becomes an entity from another record of the dataset;
/// - **negation**: the first copula, auxiliary or modal after the first word is negated ("is" → "is not",
///   "can" → "cannot", "has" → "does not have"), or an existing negation is removed ("is not" → "is").
/// A fact with none of these (for example "Yes." or text without digits in a non-Latin script) is unchanged.
public struct FactFalsifier: Sendable {
    public let pool: EntityPool

    public init(pool: EntityPool) { self.pool = pool }

    enum Edit: CaseIterable { case numbers, entity, negation }

    /// `fact` revised to be false, or `fact` itself when no rule applies.
    public func falsify(_ fact: String, question: String, context: String, recordIndex: Int, random: inout SplitMix64) -> String {
        var edits = Edit.allCases
        while !edits.isEmpty {
            let edit = edits.remove(at: Int(random.next() % UInt64(edits.count)))
            let revised: String?
            switch edit {
            case .numbers: revised = Self.changingNumbers(fact, random: &random)
            case .entity: revised = swappingEntity(fact, question: question, context: context, recordIndex: recordIndex, random: &random)
            case .negation: revised = Self.negating(fact)
            }
            if let revised, revised != fact { return revised }
        }
        return fact
    }

    // MARK: - Numbers, dates and number words

    /// Every number, month, weekday and number word of `fact` changed; nil when it has none.
    static func changingNumbers(_ fact: String, random: inout SplitMix64) -> String? {
        let characters = Array(fact)
        var output = ""
        var changed = false
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let previous: Character? = index > 0 ? characters[index - 1] : nil
            if character.isASCII, character.isNumber, !(previous?.isLetter ?? false), !(previous?.isNumber ?? false) {
                var end = index + 1
                while end < characters.count,
                      characters[end].isASCII && characters[end].isNumber
                          || ((characters[end] == "." || characters[end] == ",") && end + 1 < characters.count
                              && characters[end + 1].isASCII && characters[end + 1].isNumber) {
                    end += 1
                }
                let token = String(characters[index..<end])
                let followedByLetter = end < characters.count && characters[end].isLetter
                if !followedByLetter, let revised = revisedNumber(token, random: &random) {
                    output += revised
                    changed = true
                } else {
                    output += token
                }
                index = end
                continue
            }
            if character.isLetter, !(previous?.isLetter ?? false) {
                var end = index + 1
                while end < characters.count, characters[end].isLetter { end += 1 }
                let word = String(characters[index..<end])
                if let revised = revisedWord(word, random: &random) {
                    output += revised
                    changed = true
                } else {
                    output += word
                }
                index = end
                continue
            }
            output.append(character)
            index += 1
        }
        return changed ? output : nil
    }

    static func revisedNumber(_ token: String, random: inout SplitMix64) -> String? {
        if token.contains("."), let digit = token.last?.wholeNumberValue {
            // A decimal: its last digit becomes another digit.
            return String(token.dropLast()) + String((digit + 1 + Int(random.next() % 9)) % 10)
        }
        let digits = token.filter { $0 != "," }
        guard let value = Int(digits), digits.count <= 15 else { return nil }
        var revised: Int
        if digits.count == 4, (1000...2100).contains(value), !token.contains(",") {
            let delta = 1 + Int(random.next() % 25)
            revised = random.next() % 2 == 0 && value - delta >= 1000 ? value - delta : value + delta
        } else if value == 0 {
            revised = 1 + Int(random.next() % 9)
        } else {
            let delta = 1 + Int(random.next() % UInt64(max(1, value / 2)))
            revised = random.next() % 2 == 0 && value - delta >= 1 ? value - delta : value + delta
        }
        if revised == value { revised = value + 1 }
        var text = String(revised)
        if token.contains(",") { text = grouped(text) }
        if digits.hasPrefix("0"), digits.count > text.count { text = String(repeating: "0", count: digits.count - text.count) + text }
        return text
    }

    static func grouped(_ digits: String) -> String {
        var result = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0, (digits.count - offset) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return result
    }

    static func revisedWord(_ word: String, random: inout SplitMix64) -> String? {
        for names in [EnglishWords.months, EnglishWords.weekdays] {
            if let position = names.firstIndex(of: word) {
                let offset = 1 + Int(random.next() % UInt64(names.count - 1))
                return names[(position + offset) % names.count]
            }
        }
        let lower = word.lowercased()
        for list in [EnglishWords.smallNumbers, EnglishWords.largeNumbers] {
            guard let position = list.firstIndex(of: lower) else { continue }
            let offset = 1 + Int(random.next() % UInt64(list.count - 1))
            let replacement = list[(position + offset) % list.count]
            return word.first?.isUppercase == true ? replacement.prefix(1).uppercased() + replacement.dropFirst() : replacement
        }
        return nil
    }

    // MARK: - Entities

    struct EntityOccurrence: Equatable {
        let range: Range<String.Index>
        let text: String
    }

    /// Capitalised word runs of `text`: "New York", "Leonardo da Vinci" is not joined ("da" is lowercase), "NASA".
    /// A single capitalised word that starts a sentence is not an entity (it is capitalised by position).
    static func entities(in text: String) -> [EntityOccurrence] {
        struct Word {
            let core: Range<String.Index>
            let bare: String
            let startsSentence: Bool
            /// Punctuation before the word ("(APRA)"): a run cannot continue into it.
            let opensGroup: Bool
            /// Punctuation after the word ("Paris,"): a run cannot continue past it.
            let endsRun: Bool
        }
        var words: [Word] = []
        var sentenceStart = true
        var index = text.startIndex
        while index < text.endIndex {
            guard !text[index].isWhitespace else { index = text.index(after: index); continue }
            var end = index
            while end < text.endIndex, !text[end].isWhitespace { end = text.index(after: end) }
            let raw = text[index..<end]
            var coreStart = raw.startIndex, coreEnd = raw.endIndex
            while coreStart < coreEnd, !raw[coreStart].isLetter && !raw[coreStart].isNumber { coreStart = raw.index(after: coreStart) }
            while coreEnd > coreStart, !raw[raw.index(before: coreEnd)].isLetter && !raw[raw.index(before: coreEnd)].isNumber {
                coreEnd = raw.index(before: coreEnd)
            }
            var core = raw[coreStart..<coreEnd]
            if core.hasSuffix("'s") || core.hasSuffix("’s") { core = core.dropLast(2) }
            let trailing = raw[core.endIndex...]
            words.append(Word(core: core.startIndex..<core.endIndex, bare: String(core), startsSentence: sentenceStart,
                              opensGroup: core.startIndex != raw.startIndex, endsRun: !trailing.isEmpty))
            sentenceStart = trailing.contains(where: { ".!?:".contains($0) })
            index = end
        }
        func isCapitalisedName(_ word: Word) -> Bool {
            guard let first = word.bare.first, first.isUppercase, word.bare.count >= 2 else { return false }
            let lower = word.bare.lowercased()
            return !EnglishWords.capitalisedNonEntities.contains(lower) && !EnglishWords.months.contains(word.bare)
                && !EnglishWords.weekdays.contains(word.bare) && word.bare.allSatisfy { $0.isLetter || $0 == "-" || $0 == "'" || $0.isNumber }
        }
        var result: [EntityOccurrence] = []
        var position = 0
        while position < words.count {
            guard isCapitalisedName(words[position]) else { position += 1; continue }
            var last = position
            while !words[last].endsRun, last + 1 < words.count, !words[last + 1].opensGroup, isCapitalisedName(words[last + 1]),
                  !words[last + 1].startsSentence {
                last += 1
            }
            let first = words[position]
            let isAcronym = first.bare.count >= 2 && first.bare.allSatisfy { $0.isUppercase || $0.isNumber }
            if !first.startsSentence || last > position || isAcronym {
                let range = first.core.lowerBound..<words[last].core.upperBound
                result.append(EntityOccurrence(range: range, text: String(text[range])))
            }
            position = last + 1
        }
        return result
    }

    func swappingEntity(_ fact: String, question: String, context: String, recordIndex: Int, random: inout SplitMix64) -> String? {
        let occurrences = Self.entities(in: fact)
        guard !occurrences.isEmpty else { return nil }
        // Prefer an entity the question does not name, so the answer stays about the asked topic but is wrong.
        let preferred = occurrences.filter { !question.contains($0.text) }
        let candidates = preferred.isEmpty ? occurrences : preferred
        let chosen = candidates[Int(random.next() % UInt64(candidates.count))]
        guard let replacement = pool.replacement(for: chosen.text, excludingRecord: recordIndex, avoiding: context, random: &random) else {
            return nil
        }
        return fact.replacingCharacters(in: chosen.range, with: replacement)
    }

    // MARK: - Negation

    static let simpleNegations: [String: String] = [
        "is": "is not", "are": "are not", "was": "was not", "were": "were not", "can": "cannot", "will": "will not",
        "would": "would not", "could": "could not", "should": "should not", "must": "must not", "may": "may not",
        "might": "might not", "does": "does not", "do": "do not", "did": "did not",
    ]
    static let removedNegations: [String: String] = [
        "cannot": "can", "can't": "can", "won't": "will", "isn't": "is", "aren't": "are", "wasn't": "was",
        "weren't": "were", "doesn't": "does", "don't": "do", "didn't": "did",
    ]

    /// The first auxiliary after the first word negated (or its negation removed); nil when there is none.
    static func negating(_ fact: String) -> String? {
        var words = fact.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard words.count >= 2 else { return nil }
        for index in 1..<words.count {
            let word = words[index]
            guard word == word.lowercased() else { continue }
            let next = index + 1 < words.count ? EnglishWords.bare(words[index + 1]) : ""
            if let positive = removedNegations[word] {
                words[index] = positive
            } else if simpleNegations[word] != nil, next == "not" || next == "never" {
                words.remove(at: index + 1)
            } else if let negative = simpleNegations[word] {
                words[index] = negative
            } else if ["has", "have", "had"].contains(word) {
                if next == "not" || next == "no" || next == "never" {
                    words.remove(at: index + 1)
                } else if next == "been" || (next.count >= 4 && (next.hasSuffix("ed") || next.hasSuffix("en"))) {
                    words[index] = word + " not"
                } else {
                    words[index] = ["has": "does not have", "have": "do not have", "had": "did not have"][word] ?? word
                }
            } else {
                continue
            }
            return words.joined(separator: " ")
        }
        return nil
    }
}
