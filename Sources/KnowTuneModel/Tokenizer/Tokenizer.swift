// Implements the one interface every KnowTune tokenizer offers (text ↔ token ids); does not choose or load a
// tokenizer (ByteLevelBPETokenizer, SentencePieceBPETokenizer; the loaders choose) and never adds BOS/EOS by itself.

/// Converts text to token ids and back, as Hugging Face does with `add_special_tokens=False`.
///
/// `encode` adds no BOS or EOS: prompt templates and training sequences add them explicitly, because the
/// reference (HF with `add_special_tokens=False`) tokenises prompt and response separately and appends EOS by
/// hand. The text of special tokens inside the input (for example `<|im_end|>`) does map to their ids, as it does
/// in HF.
public protocol Tokenizer: Sendable {
    /// The token ids of `text`, without BOS or EOS.
    func encode(_ text: String) -> [Int32]
    /// The text of `ids`, special tokens included verbatim; ids outside the vocabulary are skipped.
    func decode(_ ids: [Int32]) -> String
    /// The number of ids, including added and special tokens (HF `len(tokenizer)`).
    var vocabularySize: Int { get }
    var eosTokenId: Int32 { get }
    var bosTokenId: Int32? { get }
    var padTokenId: Int32? { get }
    /// The vocabulary entry of `id` as stored (byte-level BPE: `Ġworld` for " world"), or nil if there is none.
    func tokenText(_ id: Int32) -> String?
    /// The bytes `id` adds to decoded text (one byte for a byte-fallback piece, part of a character for some
    /// byte-level pieces), or nil for a special token and an id without text. Constrained decoding reads these.
    func tokenBytes(_ id: Int32) -> [UInt8]?
}
