// Implements the word-frequency prefix dictionary that jieba 0.42.1's accurate mode walks
// (`Tokenizer.gen_pfdict`, `get_DAG`, `calc`): words with counts, every prefix of a word, and the
// total count; does not ship jieba's 349,046-entry `dict.txt` (only its five pure-ASCII entries) and
// has no HMM tables. A full `dict.txt` can be loaded at run time with `init(contentsOf:)`.

import Foundation
import KnowTuneTensor

/// Word counts for jieba-style segmentation, stored as a trie over code points.
///
/// jieba keeps one hash map from every word *and every prefix of a word* to a count (0 for pure
/// prefixes). A trie answers the same two questions — "is this a prefix?" (a node exists) and "what
/// is its count?" — while walking forward one code point at a time, as `get_DAG` does.
public struct JiebaDictionary: Sendable {
    struct Node: Sendable {
        var children: [Unicode.Scalar: Int] = [:]
        var frequency = 0
    }

    let nodes: [Node]
    /// Sum of the counts of every dictionary line, duplicates included, as `gen_pfdict` adds them.
    public let total: Int
    /// `log(total)`, computed once as `calc` does.
    let logTotal: Double

    /// The pure-ASCII entries of jieba 0.42.1's default `dict.txt` (each with count 3) and that
    /// dictionary's total count, 60,101,967.
    ///
    /// Text without CJK ideographs only ever meets these entries: a han block without ideographs
    /// holds only `[a-zA-Z0-9+#&._%-]`, and no other dictionary word is made of those characters
    /// alone. So for such text this dictionary segments exactly like the full one.
    public static let builtInASCII = JiebaDictionary(
        entries: [("AT&T", 3), ("c#", 3), ("C#", 3), ("c++", 3), ("C++", 3)],
        total: 60_101_967)

    /// A dictionary of the given words and counts.
    ///
    /// - Parameters:
    ///   - entries: words and counts; a later entry for the same word replaces its count.
    ///   - total: the total count used in the route scores; when `nil`, the sum of the counts.
    public init(entries: [(word: String, frequency: Int)], total: Int? = nil) {
        var trie = [Node()]
        var sum = 0
        for entry in entries {
            Self.insert(PythonText.codePoints(entry.word), frequency: entry.frequency, into: &trie)
            sum += entry.frequency
        }
        self.nodes = trie
        self.total = total ?? sum
        self.logTotal = Foundation.log(Double(self.total))
    }

    /// Loads a jieba-format dictionary: one `word count [tag]` per line, UTF-8.
    ///
    /// - Throws: `KnowTuneError` naming the first bad line.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw KnowTuneError.fileUnreadable(path: url.path, reason: "jieba dictionary: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KnowTuneError.badFormat(path: url.path, reason: "jieba dictionary is not UTF-8")
        }
        var entries: [(word: String, frequency: Int)] = []
        var lineNumber = 0
        // Split on U+000A code points as Python's binary line iteration does; splitting the String
        // by Character would keep "\r\n" (one grapheme) inside a line.
        for line in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            // Matches gen_pfdict: strip the line, then take the first two space-separated fields.
            let stripped = String(String.UnicodeScalarView(line)).trimmingCharacters(in: .whitespacesAndNewlines)
            if stripped.isEmpty { continue }
            let fields = stripped.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count >= 2, let frequency = Int(fields[1]) else {
                throw KnowTuneError.badFormat(path: url.path, reason: "jieba dictionary line \(lineNumber): expected `word count [tag]`")
            }
            entries.append((String(fields[0]), frequency))
        }
        self.init(entries: entries)
    }

    private static func insert(_ word: CodePoints, frequency: Int, into nodes: inout [Node]) {
        var node = 0
        for scalar in word {
            if let next = nodes[node].children[scalar] {
                node = next
            } else {
                nodes.append(Node())
                nodes[node].children[scalar] = nodes.count - 1
                node = nodes.count - 1
            }
        }
        nodes[node].frequency = frequency
    }

    /// The count of `word`, or 0 when it is only a prefix or absent (jieba's `FREQ.get(w)` falsy).
    func frequency(of word: ArraySlice<Unicode.Scalar>) -> Int {
        var node = 0
        for scalar in word {
            guard let next = nodes[node].children[scalar] else { return 0 }
            node = next
        }
        return nodes[node].frequency
    }

    /// The end indices `i` (inclusive) of the dictionary words `text[start...i]` with a non-zero
    /// count, walking forward while `text[start...i]` is still a prefix; `[start]` when there are
    /// none. Matches jieba 0.42.1 `get_DAG` for one start position.
    func wordEnds(in text: ArraySlice<Unicode.Scalar>, from start: Int) -> [Int] {
        var ends: [Int] = []
        var node = 0
        var index = start
        while index < text.endIndex, let next = nodes[node].children[text[index]] {
            node = next
            if nodes[node].frequency != 0 { ends.append(index) }
            index += 1
        }
        return ends.isEmpty ? [start] : ends
    }
}
