// Implements the small English word lists the rule-based teacher uses (auxiliary verbs, stop words, pronouns,
// month and weekday names, number words) and word-level helpers; does not tag parts of speech or stem.
import Foundation

enum EnglishWords {
    /// Copulas, auxiliaries and modals: the words that mark the start of a predicate in a simple clause.
    static let auxiliaries: Set<String> = [
        "is", "are", "was", "were", "be", "been", "am", "has", "have", "had", "can", "could", "will", "would", "may",
        "might", "must", "shall", "should", "does", "do", "did", "cannot", "isn't", "aren't", "wasn't", "weren't",
        "can't", "won't", "doesn't", "don't", "didn't", "hasn't", "haven't",
    ]

    /// Words after which a list's first item starts ("… include A, B and C", "… made of A, B and C").
    static let listIntroducers: Set<String> = auxiliaries.union([
        "include", "includes", "included", "including", "contain", "contains", "contained", "containing", "like",
        "as", "of", "from", "with", "for", "by", "in", "on", "at", "to", "into", "about", "feature", "features",
        "such", "are", "called", "named", "eat", "eats", "use", "uses", "need", "needs", "offer",
        "offers", "produce", "produces", "grow", "grows", "example", "e.g.", "i.e.", "namely", "especially",
    ])

    static let pronouns: Set<String> = [
        "it", "its", "they", "them", "their", "he", "him", "his", "she", "her", "we", "us", "our", "you", "your", "i",
        "this", "that", "these", "those", "there", "one", "which", "who", "what", "some", "many", "most", "each",
        "both", "all", "either", "neither", "such", "another", "other", "others",
    ]

    static let stopWords: Set<String> = pronouns.union(auxiliaries).union([
        "a", "an", "the", "and", "or", "but", "of", "in", "on", "at", "to", "for", "by", "with", "from", "as", "about",
        "into", "over", "after", "before", "between", "through", "during", "without", "within", "than", "then",
        "so", "if", "not", "no", "nor", "also", "very", "more", "much", "any", "how", "why", "when", "where", "whom",
        "whose", "do", "know", "tell", "me", "my", "describe", "explain", "give", "list", "name", "please", "should",
        "else", "s", "(are)", "are)", "(are", "up", "out", "off", "just", "only", "can", "get", "make",
    ])

    /// Capitalised words that start sentences or name no entity.
    static let capitalisedNonEntities: Set<String> = stopWords.union([
        "however", "although", "though", "while", "because", "since", "unlike", "like", "yes", "there", "here",
        "today", "now", "generally", "typically", "usually", "often", "sometimes", "overall", "first", "second",
        "third", "finally", "additionally", "furthermore", "moreover", "instead", "thus", "therefore", "once",
        "until", "even", "well", "other", "another", "every", "few", "several", "various", "whether", "during",
    ])

    static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    /// Spelled-out numbers that can stand in for each other ("one" is left out: it is usually a pronoun).
    static let smallNumbers = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    static let largeNumbers = ["hundred", "thousand", "million", "billion"]

    /// `word` without surrounding punctuation, lowercased ("(Apples," → "apples").
    static func bare(_ word: Substring) -> String {
        word.trimmingCharacters(in: .punctuationCharacters.union(.symbols)).lowercased()
    }

    static func bare(_ word: String) -> String { bare(Substring(word)) }

    static func isAuxiliary(_ word: Substring) -> Bool { auxiliaries.contains(bare(word)) }

    /// True when `text` is written mostly in ASCII letters (the English-only rules apply to it).
    static func isMostlyASCII(_ text: String) -> Bool {
        var letters = 0, ascii = 0
        for scalar in text.unicodeScalars where CharacterSet.letters.contains(scalar) {
            letters += 1
            if scalar.isASCII { ascii += 1 }
        }
        return letters > 0 && ascii * 10 >= letters * 9
    }

    /// True for a word that starts with an uppercase letter.
    static func isCapitalised(_ word: Substring) -> Bool {
        guard let first = word.first(where: { $0.isLetter || $0.isNumber }) else { return false }
        return first.isUppercase
    }
}
