// Implements the vocabulary's token byte strings as a trie, so that one walk from a JSON prefix state finds every
// token that can follow (a shared prefix is tried once, and a dead branch ends the walk there), and the set of tokens
// that are plain string content (no quote, backslash or control byte, whole UTF-8), which any open string takes
// without a walk. Built once per tokenizer and shared by every constrained sequence. Does not hold a prefix state.
import KnowTuneModel

public final class TokenByteTrie: @unchecked Sendable {
    /// A trie in flat arrays: node 0 is the root; children are linked through `nextSibling`.
    struct Trie {
        var byte: [UInt8] = [0]
        var firstChild: [Int32] = [-1]
        var nextSibling: [Int32] = [-1]
        /// First token ending at the node; more are linked through `nextToken` (by token id).
        var firstToken: [Int32] = [-1]

        mutating func insert(_ bytes: [UInt8], token: Int32, nextToken: inout [Int32]) {
            var node = 0
            for value in bytes {
                var child = firstChild[node]
                while child >= 0, byte[Int(child)] != value { child = nextSibling[Int(child)] }
                if child < 0 {
                    child = Int32(byte.count)
                    byte.append(value)
                    firstChild.append(-1)
                    nextSibling.append(firstChild[node])
                    firstToken.append(-1)
                    firstChild[node] = child
                }
                node = Int(child)
            }
            nextToken[Int(token)] = firstToken[node]
            firstToken[node] = token
        }
    }

    public let vocabularySize: Int
    /// Every token with bytes.
    let all: Trie
    /// Tokens that are not plain string content.
    let nonPlain: Trie
    let nextToken: [Int32]
    let nextNonPlainToken: [Int32]
    /// Whether each token is plain string content.
    let isPlain: [Bool]
    public let plainCount: Int
    private let bytesOfToken: [[UInt8]?]

    public init(tokenizer: any Tokenizer, vocabularySize: Int) {
        self.vocabularySize = vocabularySize
        var all = Trie(), nonPlain = Trie()
        var nextToken = [Int32](repeating: -1, count: vocabularySize)
        var nextNonPlainToken = [Int32](repeating: -1, count: vocabularySize)
        var isPlain = [Bool](repeating: false, count: vocabularySize)
        var bytesOfToken = [[UInt8]?](repeating: nil, count: vocabularySize)
        for id in 0..<min(vocabularySize, tokenizer.vocabularySize) {
            guard let bytes = tokenizer.tokenBytes(Int32(id)), !bytes.isEmpty else { continue }
            bytesOfToken[id] = bytes
            all.insert(bytes, token: Int32(id), nextToken: &nextToken)
            if Self.isPlainStringContent(bytes) {
                isPlain[id] = true
            } else {
                nonPlain.insert(bytes, token: Int32(id), nextToken: &nextNonPlainToken)
            }
        }
        self.all = all
        self.nonPlain = nonPlain
        self.nextToken = nextToken
        self.nextNonPlainToken = nextNonPlainToken
        self.isPlain = isPlain
        self.bytesOfToken = bytesOfToken
        plainCount = isPlain.lazy.filter { $0 }.count
    }

    /// The bytes of `token`, or nil for a special token.
    public func bytes(of token: Int32) -> [UInt8]? {
        token >= 0 && Int(token) < bytesOfToken.count ? bytesOfToken[Int(token)] : nil
    }

    /// Bytes an open JSON string takes as they are, leaving it open with nothing pending.
    static func isPlainStringContent(_ bytes: [UInt8]) -> Bool {
        guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
        return String(validating: bytes, as: UTF8.self) != nil
    }

    /// Marks in `allowed` every token of the trie (`nonPlainOnly`: of the non-plain trie) that `state` can take
    /// and still finish within `budget` bytes (`remainingBytes` after the token).
    func markFollowers(of state: JSONPrefixState, budget: Int, nonPlainOnly: Bool, into allowed: inout [Bool]) {
        if nonPlainOnly {
            walk(nonPlain, links: nextNonPlainToken, node: 0, state: state, budget: budget, allowed: &allowed)
        } else {
            walk(all, links: nextToken, node: 0, state: state, budget: budget, allowed: &allowed)
        }
    }

    private func walk(_ trie: Trie, links: [Int32], node: Int, state: JSONPrefixState, budget: Int, allowed: inout [Bool]) {
        var child = trie.firstChild[node]
        while child >= 0 {
            let index = Int(child)
            var next = state
            if next.consume(trie.byte[index]) {
                var token = trie.firstToken[index]
                if token >= 0, next.remainingBytes <= budget {
                    while token >= 0 {
                        allowed[Int(token)] = true
                        token = links[Int(token)]
                    }
                }
                walk(trie, links: links, node: index, state: next, budget: budget, allowed: &allowed)
            }
            child = trie.nextSibling[index]
        }
    }
}
