// Implements schema-constrained decoding of one sequence: before each token, every logit whose token would break
// the JSON prefix (or leave too few tokens to close the document within the budget) is set to −∞; after it, the
// token's bytes advance the prefix. Stop tokens are allowed only once the document is whole, and then nothing else.
// The budget check counts bytes, and the byte-level and byte-fallback vocabularies hold a token for every byte, so a
// document that fits in bytes fits in tokens. Does not sample (Sampler does) or run the model.
import KnowTuneModel

public final class JSONConstraint {
    public let grammar: JSONGrammar
    public let trie: TokenByteTrie
    public let stopTokenIds: [Int32]
    public private(set) var state: JSONPrefixState
    private var allowed: [Bool]
    /// The allowed token with the largest logit at the last `mask` (what replaces a sampled token the mask forbade,
    /// which the sampler's handling of −∞ could in principle return).
    private var bestAllowed: Int32 = -1

    public init(grammar: JSONGrammar, trie: TokenByteTrie, stopTokenIds: [Int32]) {
        self.grammar = grammar
        self.trie = trie
        self.stopTokenIds = stopTokenIds
        state = JSONPrefixState(grammar: grammar)
        allowed = [Bool](repeating: false, count: trie.vocabularySize)
    }

    /// Tokens the shortest document needs at most: one per byte.
    public var minimumTokens: Int { grammar.minimumLength[grammar.root] }

    /// Sets the logit of every token that cannot come next to −∞, given that `remainingTokens` (≥ 1) may still be
    /// generated, this one included.
    public func mask(_ logits: UnsafeMutablePointer<Float>, remainingTokens: Int) {
        let count = trie.vocabularySize
        for i in 0..<count { allowed[i] = false }
        if !state.isDone {
            let budget = remainingTokens - 1
            if state.readsPlainStringContent {
                if state.remainingBytes <= budget {
                    for i in 0..<count where trie.isPlain[i] { allowed[i] = true }
                }
                trie.markFollowers(of: state, budget: budget, nonPlainOnly: true, into: &allowed)
            } else {
                trie.markFollowers(of: state, budget: budget, nonPlainOnly: false, into: &allowed)
            }
        }
        // Stop once whole; if nothing fits (a budget below the shortest document), stop rather than break the JSON.
        if state.isComplete || !allowed.contains(true) {
            for id in stopTokenIds where Int(id) < count { allowed[Int(id)] = true }
        }
        bestAllowed = -1
        for i in 0..<count {
            if allowed[i] {
                if bestAllowed < 0 || logits[i] > logits[Int(bestAllowed)] { bestAllowed = Int32(i) }
            } else {
                logits[i] = -.infinity
            }
        }
    }

    /// Advances the prefix by `token` (a token the last mask forbade is replaced by the best allowed one); returns
    /// the token to use.
    public func accept(_ token: Int32) -> Int32 {
        var chosen = token
        if Int(token) >= allowed.count || !allowed[Int(token)], bestAllowed >= 0 { chosen = bestAllowed }
        if !stopTokenIds.contains(chosen), let bytes = trie.bytes(of: chosen) {
            let accepted = state.consume(bytes)
            precondition(accepted, "a token the mask allowed broke the JSON prefix")
        }
        return chosen
    }
}
