// Implements how rouge-chinese 1.0.3 `Rouge.get_scores` turns one space-joined text into its word
// list: `cut_sent` (the four sentence-break substitutions), `rstrip`, the split on "\n", the
// whitespace collapse per sentence, and `_split_into_words`; does not score anything (see
// `ROUGEScore`).

enum ROUGESentenceSplitter {
    private static let closingQuotes: Set<Unicode.Scalar> = ["\u{201D}", "\u{2019}"]  // ” ’
    private static let sentenceEnds: Set<Unicode.Scalar> = ["\u{3002}", "\u{FF01}", "\u{FF1F}", "?"]  // 。！？?
    private static let clauseMarks: Set<Unicode.Scalar> = ["\u{FF0C}", "\u{3002}", "\u{FF01}", "\u{FF1F}", "?"]  // ，。！？?

    /// The flattened word list rouge-chinese scores for `text`.
    ///
    /// Sentences are cut only to be re-joined: `_split_into_words` flattens them, so n-grams and
    /// the LCS run across sentence breaks. A sentence that holds only whitespace (for example the
    /// piece between two newline tokens) collapses to "" and still contributes one empty word,
    /// which then counts towards the lengths and can match an empty word on the other side.
    static func words(_ text: CodePoints) -> [CodePoints] {
        let sentences = splitLines(PythonText.trimmingTrailingWhitespace(cutSentences(text)))
        var words: [CodePoints] = []
        for sentence in sentences where !sentence.isEmpty {
            let pieces = PythonText.splitOnWhitespace(sentence)
            // `" ".join(s.split()).split(" ")` is [""] for an all-whitespace sentence.
            if pieces.isEmpty {
                words.append([])
            } else {
                words.append(contentsOf: pieces)
            }
        }
        return words
    }

    /// rouge-chinese `cut_sent` before its `rstrip`: four `re.sub` passes, each scanning left to
    /// right without overlaps, inserting "\n" after a sentence end unless a closing quote follows.
    static func cutSentences(_ text: CodePoints) -> CodePoints {
        // ([。！？\?])([^”’]) → \1\n\2
        var result = substitute(text, length: 2) { t, i in
            sentenceEnds.contains(t[i]) && !closingQuotes.contains(t[i + 1])
        }
        // (\.{6})([^”’]) → \1\n\2
        result = substitute(result, length: 7) { t, i in
            t[i..<i + 6].allSatisfy { $0 == "." } && !closingQuotes.contains(t[i + 6])
        }
        // (\…{2})([^”’]) → \1\n\2
        result = substitute(result, length: 3) { t, i in
            t[i] == "\u{2026}" && t[i + 1] == "\u{2026}" && !closingQuotes.contains(t[i + 2])
        }
        // ([。！？\?][”’])([^，。！？\?]) → \1\n\2
        result = substitute(result, length: 3) { t, i in
            sentenceEnds.contains(t[i]) && closingQuotes.contains(t[i + 1]) && !clauseMarks.contains(t[i + 2])
        }
        return result
    }

    /// One `re.sub` of a fixed-length pattern whose replacement puts "\n" before its last
    /// character: where `matches(text, i)` holds for the `length` characters from `i`, emit them
    /// with the break and resume after them; otherwise emit one character and move on.
    private static func substitute(
        _ text: CodePoints, length: Int, matches: (CodePoints, Int) -> Bool
    ) -> CodePoints {
        var output: CodePoints = []
        output.reserveCapacity(text.count + 8)
        var index = 0
        while index < text.count {
            if index + length <= text.count, matches(text, index) {
                output.append(contentsOf: text[index..<index + length - 1])
                output.append("\n")
                output.append(text[index + length - 1])
                index += length
                continue
            }
            output.append(text[index])
            index += 1
        }
        return output
    }

    /// `str.split("\n")`: splits on U+000A only, keeping empty pieces.
    private static func splitLines(_ text: CodePoints) -> [CodePoints] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map(Array.init)
    }
}
