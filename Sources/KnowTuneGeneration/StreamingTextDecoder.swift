// Implements turning a stream of generated ids into printable text pieces for `chat`, holding back a piece while it
// ends inside a multi-byte character (byte-level BPE can split one UTF-8 character over several tokens); does not
// generate or strip special tokens other than the stop ids it is given.
import KnowTuneModel

public struct StreamingTextDecoder {
    public let tokenizer: any Tokenizer
    public let stopTokenIds: Set<Int32>
    private var ids: [Int32] = []
    private var emitted = ""

    public init(tokenizer: any Tokenizer, stopTokenIds: Set<Int32>) {
        self.tokenizer = tokenizer
        self.stopTokenIds = stopTokenIds
    }

    /// Adds one id and returns the text that became final with it ("" while a character is incomplete or for a
    /// stop id). Decoding the whole reply each time keeps merges across token boundaries right.
    public mutating func append(_ id: Int32) -> String {
        guard !stopTokenIds.contains(id) else { return "" }
        ids.append(id)
        let text = tokenizer.decode(ids)
        // U+FFFD at the end means the last bytes do not form a character yet.
        guard !text.hasSuffix("\u{FFFD}"), text.hasPrefix(emitted) else { return "" }
        let piece = String(text.dropFirst(emitted.count))
        emitted = text
        return piece
    }

    /// Whatever is still held back (at the end of a reply).
    public mutating func flush() -> String {
        let text = tokenizer.decode(ids)
        guard text.hasPrefix(emitted) else { return "" }
        let piece = String(text.dropFirst(emitted.count))
        emitted = text
        return piece
    }
}
