// Implements the debug check for mismatched collectives (KNOWTUNE_CHECK_COLLECTIVES=1): a fixed-size record of
// (step, kind, count, root, operation label) that every rank gathers before each collective, and the comparison
// that names the first rank whose record differs; does not gather (MPICommunicator does).
import Foundation
import KnowTuneTensor

/// The kinds of collective a Communicator performs.
public enum CollectiveKind: UInt8, Sendable, CaseIterable {
    case allReduceSumFloat = 1
    case allReduceSumDouble = 2
    case allReduceMaxDouble = 3
    case broadcast = 4
    case allGather = 5
    case barrier = 6

    /// "allReduceSum of 1024 floats", "broadcast from rank 0", "barrier".
    public func describe(count: Int, root: Int) -> String {
        switch self {
        case .allReduceSumFloat: return "allReduceSum of \(count) float\(count == 1 ? "" : "s")"
        case .allReduceSumDouble: return "allReduceSum of \(count) double\(count == 1 ? "" : "s")"
        case .allReduceMaxDouble: return "allReduceMax of \(count) double\(count == 1 ? "" : "s")"
        case .broadcast: return "broadcast from rank \(root)"
        case .allGather: return "allGather"
        case .barrier: return "barrier"
        }
    }
}

/// One rank's description of the collective it is about to enter.
///
/// Ranks that disagree on any field would otherwise hang, or (for sums with different counts) silently mix
/// buffers. Broadcast and gather sizes are not compared: they legitimately differ by rank.
public struct CollectiveFingerprint: Equatable, Sendable {
    public var step: Int64
    public var kind: CollectiveKind
    public var count: Int64
    public var root: Int64
    /// FNV-1a 64 of the full operation label.
    public var labelHash: UInt64
    /// The label, cut to ``labelCapacity`` bytes, for the message.
    public var label: String

    /// Label bytes kept in the record; the hash covers the whole label.
    public static let labelCapacity = 64
    /// Bytes of one encoded record: step, kind, count, root, hash, label length, label.
    public static let encodedSize = 8 + 8 + 8 + 8 + 8 + 8 + labelCapacity

    public init(step: Int, kind: CollectiveKind, count: Int, root: Int, operation: String) {
        self.step = Int64(step)
        self.kind = kind
        self.count = kind == .broadcast || kind == .allGather || kind == .barrier ? 0 : Int64(count)
        self.root = kind == .broadcast ? Int64(root) : 0
        self.labelHash = FNV1a64.hash(operation.utf8)
        self.label = String(decoding: Array(operation.utf8.prefix(Self.labelCapacity)), as: UTF8.self)
    }

    /// The fixed-size little-endian record.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.encodedSize)
        for word in [UInt64(bitPattern: step), UInt64(kind.rawValue), UInt64(bitPattern: count),
                     UInt64(bitPattern: root), labelHash] {
            withUnsafeBytes(of: word.littleEndian) { bytes.append(contentsOf: $0) }
        }
        let labelBytes = Array(label.utf8.prefix(Self.labelCapacity))
        withUnsafeBytes(of: UInt64(labelBytes.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: labelBytes)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: Self.labelCapacity - labelBytes.count))
        return bytes
    }

    /// Decodes a record; `nil` when the bytes are not one.
    public init?(encoded bytes: ArraySlice<UInt8>) {
        guard bytes.count == Self.encodedSize else { return nil }
        func word(_ index: Int) -> UInt64 {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[bytes.startIndex + index * 8 + byte]) << (8 * UInt64(byte)) }
            return value
        }
        guard let kind = CollectiveKind(rawValue: UInt8(truncatingIfNeeded: word(1))) else { return nil }
        let labelLength = Int(min(word(5), UInt64(Self.labelCapacity)))
        let labelStart = bytes.startIndex + 48
        self.step = Int64(bitPattern: word(0))
        self.kind = kind
        self.count = Int64(bitPattern: word(2))
        self.root = Int64(bitPattern: word(3))
        self.labelHash = word(4)
        self.label = String(decoding: bytes[labelStart..<(labelStart + labelLength)], as: UTF8.self)
    }

    /// "'gradients' (allReduceSum of 1024 floats) at step 3".
    public var summary: String {
        "'\(label)' (\(kind.describe(count: Int(count), root: Int(root)))) at step \(step)"
    }

    /// The first rank whose record differs from rank 0's, with a message naming both; `nil` when all agree.
    public static func firstMismatch(_ fingerprints: [CollectiveFingerprint]) -> (rank: Int, message: String)? {
        guard let reference = fingerprints.first else { return nil }
        for (rank, fingerprint) in fingerprints.enumerated().dropFirst() where fingerprint != reference {
            let message = "collective mismatch: rank 0 calls \(reference.summary) but rank \(rank) calls "
                + "\(fingerprint.summary); every rank must issue the same collectives in the same order"
            return (rank, message)
        }
        return nil
    }
}
