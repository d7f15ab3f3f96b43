// Implements the per-dataset checksum stored beside each checkpoint dataset (FNV-1a 64 over type, shape and the
// little-endian value bytes) and over the string attributes; does not detect tampering (it is not a MAC), only
// corruption and truncation.
import Foundation

/// FNV-1a, 64-bit (http://www.isthe.com/chongo/tech/comp/fnv/): byte-serial, about 1 GB/s, no dependencies.
public struct TensorChecksum: Equatable, Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(bytes buffer: UnsafeRawBufferPointer) {
        var hash = value
        for byte in buffer {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        value = hash
    }

    public mutating func combine(_ word: UInt64) {
        withUnsafeBytes(of: word.littleEndian) { combine(bytes: $0) }
    }

    public mutating func combine(_ text: String) {
        let bytes = Array(text.utf8)
        combine(UInt64(bytes.count))
        bytes.withUnsafeBytes { combine(bytes: $0) }
    }

    /// The checksum of one dataset: its element type, its shape and its values (host order is little-endian on
    /// every platform KnowTune supports, which the HDF5 native types match).
    public static func of<Element: HDF5Element>(_ values: [Element], shape: [Int]) -> UInt64 {
        var checksum = TensorChecksum()
        checksum.combine(Element.hdf5Type.rawValue)
        checksum.combine(UInt64(shape.count))
        for dimension in shape { checksum.combine(UInt64(bitPattern: Int64(dimension))) }
        values.withUnsafeBytes { checksum.combine(bytes: $0) }
        return checksum.value
    }

    /// The checksum of a set of string attributes, in name order.
    public static func of(attributes: [String: String]) -> UInt64 {
        var checksum = TensorChecksum()
        checksum.combine(UInt64(attributes.count))
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            checksum.combine(name)
            checksum.combine(value)
        }
        return checksum.value
    }
}
