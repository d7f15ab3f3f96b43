// Implements FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/), the one hash KnowTune uses where a value must
// be the same in every process, on every rank and across runs (checkpoint checksums, collective fingerprints, the
// build cache's keys; Swift's `Hasher` is seeded per process): byte-serial, about 1 GB/s. Not a MAC.
public struct FNV1a64: Equatable, Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    public mutating func combine(bytes buffer: UnsafeRawBufferPointer) {
        var hash = value
        for byte in buffer { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        value = hash
    }

    /// The hash of `bytes` alone.
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hasher = FNV1a64()
        for byte in bytes { hasher.combine(byte: byte) }
        return hasher.value
    }
}
