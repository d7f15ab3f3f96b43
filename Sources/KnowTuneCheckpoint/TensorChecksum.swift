// Implements the per-dataset checksum stored beside each checkpoint dataset (FNV-1a 64 over type, shape and the
// little-endian value bytes) and over the string attributes; does not detect tampering (it is not a MAC), only
// corruption and truncation.
import Foundation
import KnowTuneTensor

/// FNV-1a 64 over the values' bytes, with lengths and shapes mixed in.
public struct TensorChecksum: Equatable, Sendable {
    private var hash = FNV1a64()
    public var value: UInt64 { hash.value }

    public init() {}

    public mutating func combine(bytes buffer: UnsafeRawBufferPointer) { hash.combine(bytes: buffer) }

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
