// Implements GPT-2's reversible table between the 256 byte values and 256 printable Unicode characters; does not
// split text or apply merges (GPT2PreTokenizer and ByteLevelBPETokenizer do).

/// GPT-2's `bytes_to_unicode` table: every byte value gets a printable character so BPE vocabularies can be stored
/// as text.
///
/// The printable Latin-1 bytes `!`…`~`, `¡`…`¬` and `®`…`ÿ` map to themselves; the other 68 bytes (controls, space,
/// DEL, NBSP, soft hyphen) map, in byte order, to U+0100, U+0101, …, U+0143. So a space becomes `Ġ` (U+0120), `\n`
/// becomes `Ċ` (U+010A), a tab `ĉ` (U+0109) and `\r` `č` (U+010D), which is what vocabulary entries such as
/// `Ġworld` mean. Follows openai/gpt-2 `encoder.py` and HF tokenizers `byte_level.rs`.
public enum ByteUnicodeMap {
    /// The character of each byte value, indexed by the byte.
    public static let scalarOfByte: [Unicode.Scalar] = makeScalarOfByte()

    /// The byte of each character value below `byteOfScalar.count`, or -1 for characters outside the table.
    static let byteOfScalar: [Int16] = makeByteOfScalar()

    /// The character that stands for `byte`.
    public static func scalar(for byte: UInt8) -> Unicode.Scalar {
        scalarOfByte[Int(byte)]
    }

    /// The byte that `scalar` stands for, or nil if `scalar` is not one of the 256 table characters.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = Int(scalar.value)
        guard value < byteOfScalar.count else { return nil }
        let byte = byteOfScalar[value]
        return byte < 0 ? nil : UInt8(byte)
    }

    /// The table characters of `bytes`, one per byte (for example `[0x20, 0x61]` → `"Ġa"`).
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var result = String.UnicodeScalarView()
        for byte in bytes {
            result.append(scalarOfByte[Int(byte)])
        }
        return String(result)
    }

    /// The bytes that the characters of `text` stand for, or nil if any character is outside the table.
    public static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Whether GPT-2 keeps `byte` as its own (printable) character.
    private static func isKeptAsItself(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    private static func makeScalarOfByte() -> [Unicode.Scalar] {
        var values = [UInt32](repeating: 0, count: 256)
        var nextShifted: UInt32 = 256
        for byte in 0..<256 {
            if isKeptAsItself(byte) {
                values[byte] = UInt32(byte)
            } else {
                // Bytes that are not printable are moved, in byte order, to the first free code points after 255.
                values[byte] = nextShifted
                nextShifted += 1
            }
        }
        // Every value is below 0x144, so each is a valid scalar; the fallback is never taken.
        return values.map { Unicode.Scalar($0) ?? "\u{FFFD}" }
    }

    private static func makeByteOfScalar() -> [Int16] {
        let scalars = makeScalarOfByte()
        let size = Int(scalars.map(\.value).max() ?? 0) + 1
        var table = [Int16](repeating: -1, count: size)
        for (byte, scalar) in scalars.enumerated() {
            table[Int(scalar.value)] = Int16(byte)
        }
        return table
    }
}
