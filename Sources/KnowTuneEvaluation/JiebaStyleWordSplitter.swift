// Implements jieba 0.42.1 `jieba.cut(text)` (accurate mode, HMM on) as LLaMA-Factory 0.5.3's
// ROUGE uses it: block splitting, the dictionary DAG and best route, and `finalseg.cut`'s regex
// splitting of unknown non-CJK runs; does not implement the HMM (Viterbi) that `finalseg` runs on
// unknown runs of CJK ideographs — those are split one ideograph per token here — and with the
// built-in dictionary knows no CJK words. Output is exact for text without U+4E00–U+9FD5.

import Foundation

/// Splits text into words the way jieba 0.42.1 `cut(text, cut_all=False, HMM=True)` does.
///
/// Rules, in jieba's order (`Tokenizer.cut`):
/// 1. The text is cut into *han blocks*, maximal runs of `[\u4E00-\u9FD5a-zA-Z0-9+#&._%-]`, and
///    the runs between them.
/// 2. Outside han blocks, `\r\n` and each whitespace character is a token, and every other
///    character is a token by itself.
/// 3. Inside a han block, dictionary words are found with a DAG and the route of highest summed
///    `log(count) - log(total)`. Runs of single-character steps are buffered; a buffer that is not
///    a dictionary word goes to `finalseg.cut`, which keeps `[a-zA-Z0-9]+(\.\d+)?%?` matches whole
///    and yields each stretch between matches as one token (`e.g.` → `e . g .`, `a--b` → `a -- b`).
///
/// Every token is a run of the input, and the tokens concatenate back to it.
public struct JiebaStyleWordSplitter: Sendable {
    public var dictionary: JiebaDictionary

    /// A splitter over `dictionary` (by default jieba's pure-ASCII entries, exact for non-CJK text).
    public init(dictionary: JiebaDictionary = .builtInASCII) {
        self.dictionary = dictionary
    }

    /// The tokens of `text`, as `list(jieba.cut(text))` gives them.
    public func split(_ text: String) -> [String] {
        tokens(of: PythonText.codePoints(text)).map { PythonText.string($0) }
    }

    /// The tokens of `text` as code-point arrays (no Unicode normalisation anywhere).
    func tokens(of text: CodePoints) -> [CodePoints] {
        var tokens: [CodePoints] = []
        var start = 0
        while start < text.count {
            let inHanBlock = Self.isHanBlockCharacter(text[start])
            var end = start + 1
            while end < text.count, Self.isHanBlockCharacter(text[end]) == inHanBlock { end += 1 }
            if inHanBlock {
                cutHanBlock(text[start..<end], into: &tokens)
            } else {
                Self.cutOtherBlock(text[start..<end], into: &tokens)
            }
            start = end
        }
        return tokens
    }

    /// jieba's `re_han_default`: `[\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]`.
    static func isHanBlockCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FD5, 0x61...0x7A, 0x41...0x5A, 0x30...0x39:
            return true
        case 0x2B, 0x23, 0x26, 0x2E, 0x5F, 0x25, 0x2D:  // + # & . _ % -
            return true
        default:
            return false
        }
    }

    static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        (0x4E00...0x9FD5).contains(scalar.value)
    }

    static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x61...0x7A, 0x41...0x5A, 0x30...0x39: return true
        default: return false
        }
    }

    static func isASCIIDigit(_ scalar: Unicode.Scalar) -> Bool {
        (0x30...0x39).contains(scalar.value)
    }

    /// Outside han blocks jieba splits on `(\r\n|\s)` and yields the other characters one by one,
    /// so every code point is its own token except a `\r\n` pair.
    private static func cutOtherBlock(_ block: ArraySlice<Unicode.Scalar>, into tokens: inout [CodePoints]) {
        var index = block.startIndex
        while index < block.endIndex {
            if block[index] == "\r", index + 1 < block.endIndex, block[index + 1] == "\n" {
                tokens.append(["\r", "\n"])
                index += 2
            } else {
                tokens.append([block[index]])
                index += 1
            }
        }
    }

    /// jieba 0.42.1 `__cut_DAG`: best route through the dictionary DAG, single-character steps
    /// buffered and flushed through `flushBuffer`.
    private func cutHanBlock(_ block: ArraySlice<Unicode.Scalar>, into tokens: inout [CodePoints]) {
        let route = bestRoute(block)
        var buffer: CodePoints = []
        var position = block.startIndex
        while position < block.endIndex {
            let end = route[position - block.startIndex] + 1
            if end - position == 1 {
                buffer.append(block[position])
            } else {
                flushBuffer(&buffer, into: &tokens)
                tokens.append(Array(block[position..<end]))
            }
            position = end
        }
        flushBuffer(&buffer, into: &tokens)
    }

    /// A one-character buffer is a token; a longer one that is a dictionary word is split into
    /// characters (jieba trusts the route there); otherwise it goes to `finalseg.cut`.
    private func flushBuffer(_ buffer: inout CodePoints, into tokens: inout [CodePoints]) {
        defer { buffer.removeAll(keepingCapacity: true) }
        if buffer.isEmpty { return }
        if buffer.count == 1 {
            tokens.append(buffer)
        } else if dictionary.frequency(of: buffer[...]) == 0 {
            Self.cutUnknownRun(buffer[...], into: &tokens)
        } else {
            for scalar in buffer { tokens.append([scalar]) }
        }
    }

    /// jieba 0.42.1 `calc`: for each start position, the word end maximising
    /// `log(count or 1) - log(total) + score(after the word)`, ties going to the later end (Python
    /// compares the `(score, end)` tuples). Returned ends are absolute indices into `block`.
    private func bestRoute(_ block: ArraySlice<Unicode.Scalar>) -> [Int] {
        let count = block.count
        var scores = [Double](repeating: 0, count: count + 1)
        var ends = [Int](repeating: 0, count: count + 1)
        var offset = count - 1
        while offset >= 0 {
            let start = block.startIndex + offset
            var bestScore = -Double.infinity
            var bestEnd = start
            var first = true
            for end in dictionary.wordEnds(in: block, from: start) {
                let frequency = dictionary.frequency(of: block[start...end])
                // Same operation order as jieba: (log(freq) - logtotal) + route[x + 1][0].
                let score = (Foundation.log(Double(frequency == 0 ? 1 : frequency)) - dictionary.logTotal)
                    + scores[end + 1 - block.startIndex]
                if first || score > bestScore || (score == bestScore && end > bestEnd) {
                    bestScore = score
                    bestEnd = end
                    first = false
                }
            }
            scores[offset] = bestScore
            ends[offset] = bestEnd
            offset -= 1
        }
        return Array(ends[0..<count])
    }

    /// jieba 0.42.1 `finalseg.cut` on a buffered run that is not a dictionary word. Runs of CJK
    /// ideographs would go to the HMM; here each ideograph is a token (the approximation). Other
    /// runs are split by `([a-zA-Z0-9]+(?:\.\d+)?%?)`: each match is a token and so is each
    /// non-empty stretch between matches.
    static func cutUnknownRun(_ run: ArraySlice<Unicode.Scalar>, into tokens: inout [CodePoints]) {
        var index = run.startIndex
        var gapStart = index
        func flushGap(upTo end: Int) {
            if end > gapStart { tokens.append(Array(run[gapStart..<end])) }
        }
        while index < run.endIndex {
            let scalar = run[index]
            if isCJKIdeograph(scalar) {
                flushGap(upTo: index)
                tokens.append([scalar])
                index += 1
                gapStart = index
            } else if isASCIIAlphanumeric(scalar) {
                flushGap(upTo: index)
                var end = index
                while end < run.endIndex, isASCIIAlphanumeric(run[end]) { end += 1 }
                // `\d` can only meet ASCII digits here: han blocks hold no other digits.
                if end + 1 < run.endIndex, run[end] == ".", isASCIIDigit(run[end + 1]) {
                    end += 1
                    while end < run.endIndex, isASCIIDigit(run[end]) { end += 1 }
                }
                if end < run.endIndex, run[end] == "%" { end += 1 }
                tokens.append(Array(run[index..<end]))
                index = end
                gapStart = index
            } else {
                index += 1
            }
        }
        flushGap(upTo: index)
    }
}
