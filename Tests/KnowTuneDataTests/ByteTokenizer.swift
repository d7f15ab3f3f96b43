// Implements a tokenizer for data tests whose lengths are easy to count: one id per UTF-8 byte (byte + 3), EOS 2.
import KnowTuneModel

struct ByteTokenizer: Tokenizer {
    func encode(_ text: String) -> [Int32] { text.utf8.map { Int32($0) + 3 } }
    func decode(_ ids: [Int32]) -> String { String(decoding: ids.filter { $0 >= 3 }.map { UInt8($0 - 3) }, as: UTF8.self) }
    var vocabularySize: Int { 259 }
    var eosTokenId: Int32 { 2 }
    var bosTokenId: Int32? { nil }
    var padTokenId: Int32? { nil }
    func tokenText(_ id: Int32) -> String? { id >= 3 ? decode([id]) : nil }
}
