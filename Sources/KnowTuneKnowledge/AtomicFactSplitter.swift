// Implements the rule-based atomic-fact extractor of the `rules` teacher (and of `knowtune judge`): lines and list
// items, then sentences, then clauses on ";" and ", and <clause>", then "A, B and C" lists, each fact keeping its
// clause's subject; deterministic, English rules only where the text is English. Does not resolve pronouns or tag
// parts of speech, so it splits less finely than an LLM extractor (paper Fig. 2: 2 sentences → 3 facts).
import Foundation

/// Splits an answer into short, self-contained declarative facts.
///
/// The steps, in order:
/// 1. **Lines.** Each non-empty line is its own unit; list markers ("- ", "* ", "• ", "1. ", "2) ") are removed.
/// 2. **Sentences.** A unit is cut after ".", "!" or "?" (plus closing quotes or brackets) when whitespace and
///    an uppercase letter, digit, quote or bracket follow, unless the word before is an abbreviation ("Dr.",
///    "e.g.", "U.S.", an initial "J."); and after "。", "！", "？" always.
/// 3. **Clauses** (English only). A sentence is cut on ";", and on ", and" / ", but" / ", while" / ", so" /
///    ", whereas" when an independent clause follows (it opens with a subject pronoun, or has an auxiliary verb
///    among its first four words). A clause that starts with an auxiliary verb ("…, and is grown worldwide")
///    gets the sentence's subject in front.
/// 4. **Lists** (English only). "PREFIX A, B, and C" (three items or more, each at most five words with no
///    auxiliary or "-ed" verb; at most three words without the Oxford comma) becomes "PREFIX A.", "PREFIX B.",
///    "PREFIX C."; item A starts after the last auxiliary, preposition or list verb ("include", "such as") of its
///    segment. Only the last list of a clause is expanded.
/// 5. **Clean-up.** Whitespace is collapsed, the first letter capitalised, a final "." added when there is no
///    final punctuation, facts without letters or digits dropped and repeated facts dropped (first kept).
///
/// A clause's subject is its opening before the first auxiliary verb (or before an "-ly" adverb: "Sleep
/// training typically refers …"), 1–8 words, without commas or subordinating words.
public struct AtomicFactSplitter: Sendable {
    /// The most words a subject may have (longer openings are not treated as subjects).
    public var maximumSubjectWords = 8
    /// The most words a list item may have.
    public var maximumListItemWords = 5

    public init() {}

    /// The facts of `text`, in order.
    public func facts(in text: String) -> [String] {
        var facts: [String] = []
        var seen: Set<String> = []
        for unit in lines(of: text) {
            for sentence in sentences(in: unit) {
                for piece in splitSentence(sentence) {
                    let fact = Self.normalize(piece)
                    guard !fact.isEmpty, fact.unicodeScalars.contains(where: { CharacterSet.alphanumerics.contains($0) }) else {
                        continue
                    }
                    if seen.insert(fact).inserted { facts.append(fact) }
                }
            }
        }
        return facts
    }

    // MARK: - Step 1: lines

    func lines(of text: String) -> [String] {
        text.split(whereSeparator: { $0.isNewline }).compactMap { line in
            var unit = line.trimmingCharacters(in: .whitespaces)
            unit = Self.strippingListMarker(unit)
            return unit.isEmpty ? nil : unit
        }
    }

    static func strippingListMarker(_ line: String) -> String {
        var rest = Substring(line)
        if let first = rest.first, "-*•·–".contains(first), rest.dropFirst().first == " " {
            rest = rest.dropFirst(2)
        } else {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            if (1...3).contains(digits.count) {
                let after = rest.dropFirst(digits.count)
                if let mark = after.first, mark == "." || mark == ")", after.dropFirst().first == " " {
                    rest = after.dropFirst(2)
                }
            }
        }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    // MARK: - Step 2: sentences

    static let abbreviations: Set<String> = [
        "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "mt.", "sr.", "jr.", "vs.", "no.", "e.g.", "i.e.", "fig.",
        "approx.", "ca.", "cf.", "u.s.", "u.k.", "u.n.", "e.u.", "jan.", "feb.", "mar.", "apr.", "jun.", "jul.",
        "aug.", "sep.", "sept.", "oct.", "nov.", "dec.", "inc.", "ltd.", "co.", "corp.", "gen.", "gov.", "lt.",
        "col.", "sgt.", "capt.", "rev.", "ft.", "vol.", "op.", "pp.",
    ]

    func sentences(in unit: String) -> [String] {
        let characters = Array(unit)
        var result: [String] = []
        var start = 0
        var index = 0
        let closers: Set<Character> = ["\"", "'", "”", "’", ")", "]", "»"]
        while index < characters.count {
            let character = characters[index]
            if "。！？".contains(character) {
                var end = index + 1
                while end < characters.count, closers.contains(characters[end]) { end += 1 }
                result.append(String(characters[start..<end]))
                start = end
                index = end
                continue
            }
            if ".!?".contains(character) {
                var end = index + 1
                while end < characters.count, closers.contains(characters[end]) || ".!?".contains(characters[end]) { end += 1 }
                var next = end
                while next < characters.count, characters[next].isWhitespace { next += 1 }
                if next > end, next < characters.count, Self.startsSentence(characters[next]),
                   !(character == "." && isAbbreviation(endingAt: index, in: characters)) {
                    result.append(String(characters[start..<end]))
                    start = next
                    index = next
                    continue
                }
            }
            index += 1
        }
        if start < characters.count { result.append(String(characters[start...])) }
        return result.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func startsSentence(_ character: Character) -> Bool {
        character.isUppercase || character.isNumber || "\"'“‘([".contains(character)
            || (!character.isASCII && character.isLetter && !character.isLowercase)
    }

    /// The word ending with the "." at `index` is an abbreviation or an initial.
    func isAbbreviation(endingAt index: Int, in characters: [Character]) -> Bool {
        var start = index
        while start > 0, !characters[start - 1].isWhitespace { start -= 1 }
        var word = String(characters[start...index]).lowercased()
        word = String(word.drop(while: { "(\"'“‘[".contains($0) }))
        if Self.abbreviations.contains(word) { return true }
        let letters = word.filter { $0 != "." }
        // An initial ("J.") or dotted letters ("U.S.A.", "a.k.a.").
        if letters.count == 1, letters.first?.isLetter == true { return true }
        if word.count >= 4, word.enumerated().allSatisfy({ $0.offset % 2 == 1 ? $0.element == "." : $0.element.isLetter }) {
            return true
        }
        return false
    }

    // MARK: - Steps 3 and 4: clauses and lists

    func splitSentence(_ sentence: String) -> [String] {
        guard EnglishWords.isMostlyASCII(sentence) else { return [sentence] }
        let (body, terminator) = Self.splittingTerminator(sentence)
        var clauses: [String] = []
        var subject: String?
        for part in body.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            for clause in coordinatedClauses(part) {
                let words = clause.split(separator: " ")
                var text = clause
                if let first = words.first, EnglishWords.isAuxiliary(first), let subject {
                    text = subject + " " + clause
                } else if let found = self.subject(ofWords: words) {
                    subject = found
                }
                clauses.append(text)
            }
        }
        return clauses.flatMap(expandList).map { $0 + terminator }
    }

    /// `sentence` without its final punctuation, and that punctuation ("." when there was none). A quotation or
    /// bracket that closes after the punctuation stays in the body (`It is "red."` has no terminator to add);
    /// a final ",", ";" or ":" is dropped ("Benefits:" → "Benefits").
    static func splittingTerminator(_ sentence: String) -> (String, String) {
        let closers: Set<Character> = ["\"", "'", "”", "’", ")", "]", "»"]
        let beforeClosers = sentence.reversed().drop(while: { closers.contains($0) })
        if beforeClosers.count < sentence.count, let last = beforeClosers.first, ".!?".contains(last) {
            return (sentence, "")
        }
        var body = Substring(sentence)
        var terminator = ""
        while let last = body.last, ".!?".contains(last) {
            terminator = String(last) + terminator
            body = body.dropLast()
        }
        if terminator.count > 1 { terminator = String(terminator.prefix(1)) }
        while let last = body.last, ",;:".contains(last) || last == " " { body = body.dropLast() }
        return (body.trimmingCharacters(in: .whitespaces), terminator.isEmpty ? "." : terminator)
    }

    /// Words that cannot be part of a simple subject (they open a subordinate clause).
    static let subordinators: Set<String> = ["that", "which", "who", "whom", "whose", "if", "when", "because", "while", "although", "since"]

    /// The words before the predicate, when they open the clause and are 1…`maximumSubjectWords` long and not
    /// only stop words. The predicate starts at the first auxiliary verb, or at an adverb in "-ly" directly
    /// before a verb ("Sleep training typically refers …"), whichever comes first.
    public func subject(ofWords words: [Substring]) -> String? {
        let limit = min(words.count - 1, maximumSubjectWords)
        guard limit >= 1 else { return nil }
        var predicate: Int?
        for index in 1...limit {
            let bare = EnglishWords.bare(words[index])
            if EnglishWords.auxiliaries.contains(bare) || (bare.count >= 5 && bare.hasSuffix("ly") && index + 1 < words.count) {
                predicate = index
                break
            }
        }
        guard let predicate else { return nil }
        let candidate = words[..<predicate]
        // A comma inside the opening means an introductory phrase, not a subject ("In 1990, it was …").
        guard !candidate.contains(where: { $0.contains(",") || !$0.contains(where: { $0.isLetter || $0.isNumber }) }),
              !candidate.contains(where: { Self.subordinators.contains(EnglishWords.bare($0)) }),
              candidate.contains(where: { !EnglishWords.stopWords.contains(EnglishWords.bare($0)) || EnglishWords.pronouns.contains(EnglishWords.bare($0)) })
        else { return nil }
        return candidate.joined(separator: " ")
    }

    /// The subject of a fact (see ``subject(ofWords:)``).
    public func subject(of fact: String) -> String? {
        subject(ofWords: fact.split(separator: " "))
    }

    static let clauseCoordinators = [", and ", ", but ", ", while ", ", whereas ", ", so ", ", yet "]
    static let subjectPronouns: Set<String> = ["it", "they", "he", "she", "we", "i", "you", "this", "these", "those", "there"]

    /// Cuts `text` at ", and <independent clause>" (and the other coordinators).
    func coordinatedClauses(_ text: String) -> [String] {
        var result: [String] = []
        var rest = Substring(text)
        var searchStart = rest.startIndex
        while true {
            let found = Self.clauseCoordinators.compactMap { rest.range(of: $0, range: searchStart..<rest.endIndex) }
            guard let cut = found.min(by: { $0.lowerBound < $1.lowerBound }) else { break }
            let following = rest[cut.upperBound...].split(separator: " ").prefix(4)
            let opensWithSubjectPronoun = following.first.map { Self.subjectPronouns.contains(EnglishWords.bare($0)) } ?? false
            let isClause = following.count >= 2 && (opensWithSubjectPronoun || following.contains(where: { EnglishWords.isAuxiliary($0) }))
            let left = rest[..<cut.lowerBound].trimmingCharacters(in: .whitespaces)
            if isClause, !left.isEmpty {
                result.append(left)
                rest = rest[cut.upperBound...]
                searchStart = rest.startIndex
            } else {
                searchStart = cut.upperBound
            }
        }
        let last = rest.trimmingCharacters(in: .whitespaces)
        if !last.isEmpty { result.append(last) }
        return result
    }

    /// "PREFIX A, B, and C" → ["PREFIX A", "PREFIX B", "PREFIX C"]; any other clause is returned alone.
    ///
    /// The items are read from the end: the last segment gives "C" (or "B and C"), earlier segments that are
    /// short items are prepended, and the segment holding a list-introducing word ends the list: its words after
    /// the last such word are item A, everything before is the prefix ("…, including Germany, Austria, and
    /// Hungary" → prefix "…, including").
    func expandList(_ clause: String) -> [String] {
        let segments = clause.components(separatedBy: ", ").map { $0.trimmingCharacters(in: .whitespaces) }
        guard segments.count >= 2, let last = segments.last else { return [clause] }
        // Without a middle item ("PREFIX A, B and C") the items must be short, or an introductory phrase
        // ("In 1990, the company grew and …") would pass for a list.
        let itemLimit = segments.count == 2 ? 3 : maximumListItemWords
        var items: [String]
        if last.hasPrefix("and ") || last.hasPrefix("or ") {
            items = [String(last.drop(while: { $0 != " " }).dropFirst())]
        } else if let range = last.range(of: " and ") ?? last.range(of: " or ") {
            items = [String(last[..<range.lowerBound]), String(last[range.upperBound...])]
        } else {
            return [clause]
        }
        guard items.allSatisfy({ isListItem($0, limit: itemLimit) }) else { return [clause] }
        var position = segments.count - 2
        while position >= 0 {
            let words = segments[position].split(separator: " ")
            if let introducer = words.lastIndex(where: { EnglishWords.listIntroducers.contains(EnglishWords.bare($0)) }),
               introducer + 1 < words.count {
                let firstItem = words[(introducer + 1)...].joined(separator: " ")
                let prefix = (segments[..<position] + [words[...introducer].joined(separator: " ")]).joined(separator: ", ")
                guard isListItem(firstItem, limit: itemLimit), items.count >= 2, prefix.split(separator: " ").count >= 2 else {
                    return [clause]
                }
                return ([firstItem] + items).map { prefix + " " + $0 }
            }
            guard position >= 1, isListItem(segments[position], limit: itemLimit) else { return [clause] }
            items.insert(segments[position], at: 0)
            position -= 1
        }
        return [clause]
    }

    /// 1…`limit` words, no comma, no auxiliary and no past-tense-looking verb ("raised", "expanded").
    func isListItem(_ item: String, limit: Int) -> Bool {
        let words = item.split(separator: " ")
        return (1...max(1, limit)).contains(words.count) && !item.contains(",")
            && !words.contains(where: { word in
                let bare = EnglishWords.bare(word)
                return EnglishWords.auxiliaries.contains(bare) || (bare.count >= 5 && bare.hasSuffix("ed"))
            })
    }

    // MARK: - Step 5: clean-up

    static func normalize(_ piece: String) -> String {
        var text = piece.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        text = String(text.drop(while: { ",;:-–—".contains($0) || $0 == " " }))
        // A heading's colon (or a stray comma) is not an ending: "Benefits:" → "Benefits."
        while let last = text.last, ",;:".contains(last) { text.removeLast() }
        guard let first = text.first else { return "" }
        if first.isLowercase, first.isLetter, !(text.dropFirst().first?.isUppercase ?? false) {
            text = first.uppercased() + text.dropFirst()
        }
        let final: Set<Character> = [".", "!", "?", "。", "！", "？"]
        let closers: Set<Character> = ["\"", "'", "”", "’", ")", "]", "»"]
        let core = text.reversed().drop(while: { closers.contains($0) })
        if let last = core.first, !final.contains(last) {
            text += EnglishWords.isMostlyASCII(text) || !text.unicodeScalars.contains(where: { $0.value >= 0x3000 }) ? "." : "。"
        }
        return text
    }
}
