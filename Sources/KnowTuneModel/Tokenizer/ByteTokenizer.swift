// Implements a tokenizer with no vocabulary file: one id per UTF-8 byte (byte + 3), EOS 2. Tests use it because its
// lengths are easy to count, the fuzz targets because it feeds the template encoder without loading anything.

public struct ByteTokenizer: Tokenizer {
    public init() {}
    public func encode(_ text: String) -> [Int32] { text.utf8.map { Int32($0) + 3 } }
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: ids.filter { (3..<259).contains($0) }.map { UInt8($0 - 3) }, as: UTF8.self)
    }
    public var vocabularySize: Int { 259 }
    public var eosTokenId: Int32 { 2 }
    public var bosTokenId: Int32? { nil }
    public var padTokenId: Int32? { nil }
    public func tokenText(_ id: Int32) -> String? { (3..<259).contains(id) ? decode([id]) : nil }
    public func tokenBytes(_ id: Int32) -> [UInt8]? { (3..<259).contains(id) ? [UInt8(id - 3)] : nil }
}
