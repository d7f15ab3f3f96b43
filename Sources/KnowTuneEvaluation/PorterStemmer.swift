// Implements the Porter stemmer in NLTK 3.7's default mode (`PorterStemmer()`, NLTK_EXTENSIONS),
// the stemmer NLTK's METEOR uses for its stem stage; does not implement the ORIGINAL_ALGORITHM or
// MARTIN_EXTENSIONS modes. Written from Porter (1980) plus NLTK's documented departures, each
// marked "NLTK:" below.

/// Porter (1980) with NLTK 3.7's extensions.
///
/// Works on code points. Only a, e, i, o, u (and y after a consonant) are vowels; every other code
/// point, including digits and non-ASCII letters, is a consonant, as in NLTK.
public struct PorterStemmer: Sendable {
    public init() {}

    /// NLTK: a table of irregular forms checked before any rule.
    private static let irregularForms: [String: String] = [
        "sky": "sky", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie", "news": "news",
        "innings": "inning", "inning": "inning", "outings": "outing", "outing": "outing",
        "cannings": "canning", "canning": "canning", "howe": "howe", "proceed": "proceed",
        "exceed": "exceed", "succeed": "succeed",
    ]

    /// The stem of `word`, lowercased first, as NLTK 3.7 `PorterStemmer().stem(word)`.
    public func stem(_ word: String) -> String {
        PythonText.string(stem(codePoints: PythonText.codePoints(word)))
    }

    func stem(codePoints original: CodePoints) -> CodePoints {
        // NLTK looks the word up before lowercasing it; the table's keys are lowercase ASCII, so
        // only an exact ASCII hit counts (Swift's String keys would also match canonical
        // equivalents).
        if original.allSatisfy(\.isASCII), let irregular = Self.irregularForms[PythonText.string(original)] {
            return PythonText.codePoints(irregular)
        }
        let lowered = PythonText.codePoints(PythonText.lowercased(PythonText.string(original)))
        // NLTK: words of one or two characters are returned (lowercased) unchanged.
        if original.count <= 2 { return lowered }
        var word = lowered
        word = step1a(word)
        word = step1b(word)
        word = step1c(word)
        word = step2(word)
        word = step3(word)
        word = step4(word)
        word = step5a(word)
        word = step5b(word)
        return word
    }

    // MARK: - Measures

    private static let vowels: Set<Unicode.Scalar> = ["a", "e", "i", "o", "u"]

    func isConsonant(_ word: CodePoints, _ index: Int) -> Bool {
        var index = index
        var consonant = true
        // y is a consonant at the start or after a vowel, a vowel after a consonant; resolve the
        // chain of y's leftwards.
        var flips = 0
        while true {
            let scalar = word[index]
            if Self.vowels.contains(scalar) {
                consonant = false
                break
            }
            if scalar != "y" || index == 0 {
                consonant = true
                break
            }
            flips += 1
            index -= 1
        }
        return flips % 2 == 0 ? consonant : !consonant
    }

    /// m in [C](VC)^m[V]: the number of vowel→consonant transitions.
    func measure(_ stem: ArraySlice<Unicode.Scalar>) -> Int {
        let word = Array(stem)
        var count = 0
        var previousIsVowel = false
        for index in word.indices {
            let consonant = isConsonant(word, index)
            if consonant && previousIsVowel { count += 1 }
            previousIsVowel = !consonant
        }
        return count
    }

    func containsVowel(_ stem: ArraySlice<Unicode.Scalar>) -> Bool {
        let word = Array(stem)
        return word.indices.contains { !isConsonant(word, $0) }
    }

    func endsWithDoubleConsonant(_ word: CodePoints) -> Bool {
        word.count >= 2 && word[word.count - 1] == word[word.count - 2] && isConsonant(word, word.count - 1)
    }

    /// *o: consonant-vowel-consonant with the last not w, x or y. NLTK: also a two-letter
    /// vowel-consonant word.
    func endsWithCVC(_ word: CodePoints) -> Bool {
        let n = word.count
        if n >= 3, isConsonant(word, n - 3), !isConsonant(word, n - 2), isConsonant(word, n - 1),
           !["w", "x", "y"].contains(word[n - 1]) {
            return true
        }
        return n == 2 && !isConsonant(word, 0) && isConsonant(word, 1)
    }

    // MARK: - Rules

    private enum Condition {
        case always
        case measureAbove(Int)
        case custom((CodePoints) -> Bool)

        func holds(for stem: CodePoints, _ stemmer: PorterStemmer) -> Bool {
            switch self {
            case .always: return true
            case .measureAbove(let limit): return stemmer.measure(stem[...]) > limit
            case .custom(let test): return test(stem)
            }
        }
    }

    private struct Rule {
        var suffix: String
        var replacement: String
        var condition: Condition
        /// The `*d` pseudo-suffix: a double consonant, of which one letter is the replacement.
        var isDoubleConsonantRule = false
    }

    /// Applies the first rule whose suffix matches; if its condition fails the word is returned
    /// unchanged without trying later rules (Porter's "longest matching suffix" convention, as
    /// NLTK's `_apply_rule_list` orders it).
    private func applyFirstMatchingRule(_ word: CodePoints, _ rules: [Rule]) -> CodePoints {
        for rule in rules {
            if rule.isDoubleConsonantRule, endsWithDoubleConsonant(word) {
                let stem = Array(word.dropLast(2))
                return rule.condition.holds(for: stem, self) ? stem + rule.replacement.unicodeScalars : word
            }
            // NLTK also tests the literal text "*d" as a suffix; kept for fidelity.
            let suffix = Array(rule.suffix.unicodeScalars)
            if word.count >= suffix.count, Array(word.suffix(suffix.count)) == suffix {
                let stem = Array(word.dropLast(suffix.count))
                return rule.condition.holds(for: stem, self) ? stem + rule.replacement.unicodeScalars : word
            }
        }
        return word
    }

    private func hasSuffix(_ word: CodePoints, _ suffix: String) -> Bool {
        let tail = Array(suffix.unicodeScalars)
        return word.count >= tail.count && Array(word.suffix(tail.count)) == tail
    }

    private func replacingSuffix(_ word: CodePoints, _ suffix: String, with replacement: String) -> CodePoints {
        Array(word.dropLast(suffix.unicodeScalars.count)) + replacement.unicodeScalars
    }

    /// Step 1a: plurals. NLTK: a four-letter word in -ies keeps -ie ("dies" → "die").
    private func step1a(_ word: CodePoints) -> CodePoints {
        if hasSuffix(word, "ies"), word.count == 4 { return replacingSuffix(word, "ies", with: "ie") }
        return applyFirstMatchingRule(word, [
            Rule(suffix: "sses", replacement: "ss", condition: .always),
            Rule(suffix: "ies", replacement: "i", condition: .always),
            Rule(suffix: "ss", replacement: "ss", condition: .always),
            Rule(suffix: "s", replacement: "", condition: .always),
        ])
    }

    /// Step 1b: -eed, -ed, -ing. NLTK: -ied becomes -ie in four-letter words, else -i.
    private func step1b(_ word: CodePoints) -> CodePoints {
        if hasSuffix(word, "ied") {
            return replacingSuffix(word, "ied", with: word.count == 4 ? "ie" : "i")
        }
        if hasSuffix(word, "eed") {
            let stem = Array(word.dropLast(3))
            return measure(stem[...]) > 0 ? stem + ["e", "e"] : word
        }
        var intermediate: CodePoints?
        for suffix in ["ed", "ing"] where hasSuffix(word, suffix) {
            let stem = Array(word.dropLast(suffix.count))
            if containsVowel(stem[...]) {
                intermediate = stem
                break
            }
        }
        guard let stem = intermediate, let last = stem.last else { return word }
        return applyFirstMatchingRule(stem, [
            Rule(suffix: "at", replacement: "ate", condition: .always),
            Rule(suffix: "bl", replacement: "ble", condition: .always),
            Rule(suffix: "iz", replacement: "ize", condition: .always),
            Rule(suffix: "*d", replacement: String(Character(last)),
                 condition: .custom { _ in !["l", "s", "z"].contains(last) }, isDoubleConsonantRule: true),
            Rule(suffix: "", replacement: "e",
                 condition: .custom { self.measure($0[...]) == 1 && self.endsWithCVC($0) }),
        ])
    }

    /// Step 1c: y → i. NLTK: only after a consonant that is not the first letter.
    private func step1c(_ word: CodePoints) -> CodePoints {
        applyFirstMatchingRule(word, [
            Rule(suffix: "y", replacement: "i",
                 condition: .custom { $0.count > 1 && self.isConsonant($0, $0.count - 1) }),
        ])
    }

    private func step2(_ word: CodePoints) -> CodePoints {
        // NLTK: -alli → -al is tried first and, if it applies, step 2 runs again on the result.
        if hasSuffix(word, "alli"), measure(word.dropLast(4)) > 0 {
            return step2(replacingSuffix(word, "alli", with: "al"))
        }
        let positive = Condition.measureAbove(0)
        return applyFirstMatchingRule(word, [
            Rule(suffix: "ational", replacement: "ate", condition: positive),
            Rule(suffix: "tional", replacement: "tion", condition: positive),
            Rule(suffix: "enci", replacement: "ence", condition: positive),
            Rule(suffix: "anci", replacement: "ance", condition: positive),
            Rule(suffix: "izer", replacement: "ize", condition: positive),
            // NLTK: -bli → -ble, where the paper has -abli → -able.
            Rule(suffix: "bli", replacement: "ble", condition: positive),
            Rule(suffix: "alli", replacement: "al", condition: positive),
            Rule(suffix: "entli", replacement: "ent", condition: positive),
            Rule(suffix: "eli", replacement: "e", condition: positive),
            Rule(suffix: "ousli", replacement: "ous", condition: positive),
            Rule(suffix: "ization", replacement: "ize", condition: positive),
            Rule(suffix: "ation", replacement: "ate", condition: positive),
            Rule(suffix: "ator", replacement: "ate", condition: positive),
            Rule(suffix: "alism", replacement: "al", condition: positive),
            Rule(suffix: "iveness", replacement: "ive", condition: positive),
            Rule(suffix: "fulness", replacement: "ful", condition: positive),
            Rule(suffix: "ousness", replacement: "ous", condition: positive),
            Rule(suffix: "aliti", replacement: "al", condition: positive),
            Rule(suffix: "iviti", replacement: "ive", condition: positive),
            Rule(suffix: "biliti", replacement: "ble", condition: positive),
            // NLTK additions: -fulli → -ful, and -logi → -log judged on the stem with its "l".
            Rule(suffix: "fulli", replacement: "ful", condition: positive),
            Rule(suffix: "logi", replacement: "log",
                 condition: .custom { _ in self.measure(word.dropLast(3)) > 0 }),
        ])
    }

    private func step3(_ word: CodePoints) -> CodePoints {
        let positive = Condition.measureAbove(0)
        return applyFirstMatchingRule(word, [
            Rule(suffix: "icate", replacement: "ic", condition: positive),
            Rule(suffix: "ative", replacement: "", condition: positive),
            Rule(suffix: "alize", replacement: "al", condition: positive),
            Rule(suffix: "iciti", replacement: "ic", condition: positive),
            Rule(suffix: "ical", replacement: "ic", condition: positive),
            Rule(suffix: "ful", replacement: "", condition: positive),
            Rule(suffix: "ness", replacement: "", condition: positive),
        ])
    }

    private func step4(_ word: CodePoints) -> CodePoints {
        let aboveOne = Condition.measureAbove(1)
        let suffixes = ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent"]
        var rules = suffixes.map { Rule(suffix: $0, replacement: "", condition: aboveOne) }
        rules.append(Rule(suffix: "ion", replacement: "", condition: .custom { stem in
            self.measure(stem[...]) > 1 && (stem.last == "s" || stem.last == "t")
        }))
        rules += ["ou", "ism", "ate", "iti", "ous", "ive", "ize"].map {
            Rule(suffix: $0, replacement: "", condition: aboveOne)
        }
        return applyFirstMatchingRule(word, rules)
    }

    /// Step 5a: both -e rules are tried (m > 1, or m = 1 and not *o), as NLTK does.
    private func step5a(_ word: CodePoints) -> CodePoints {
        guard word.last == "e" else { return word }
        let stem = Array(word.dropLast())
        let m = measure(stem[...])
        if m > 1 || (m == 1 && !endsWithCVC(stem)) { return stem }
        return word
    }

    /// Step 5b: -ll → -l when m > 1, measured on the word less one "l".
    private func step5b(_ word: CodePoints) -> CodePoints {
        applyFirstMatchingRule(word, [
            Rule(suffix: "ll", replacement: "l", condition: .custom { _ in self.measure(word.dropLast()) > 1 }),
        ])
    }
}
