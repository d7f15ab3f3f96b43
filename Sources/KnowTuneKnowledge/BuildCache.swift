// Implements the resumable per-record result cache of a KA/KC build: a JSON-lines file beside the output, one
// line per finished record tagged with the build settings' key and the record's text hash, appended and flushed
// by rank 0 after every round; plus the stable (process-independent) hash both use. Does not decide which
// records to build (KnowledgeBuild does).
import Foundation
import KnowTuneTensor

/// FNV-1a 64 over UTF-8 with a separator after each part: the same value in every process and on every
/// rank (Swift's `Hasher` is seeded per process).
public struct StableHash {
    private var hash = FNV1a64()

    public init() {}

    public mutating func combine(_ text: String) {
        for byte in text.utf8 { hash.combine(byte: byte) }
        hash.combine(byte: 0xFF)  // Not a UTF-8 byte: ("ab", "c") and ("a", "bc") differ.
    }

    public var value: UInt64 { hash.value }
    public var hex: String { String(format: "%016llx", hash.value) }
}

/// One cache line.
struct CacheLine<Outcome: Codable>: Codable {
    /// The build settings' key (`BuildCache.settingsKey`).
    var settings: String
    var index: Int
    /// `SourceRecord.fingerprint` of the record the outcome was built from.
    var record: String
    var outcome: Outcome
}

/// Results of finished records, so that a killed build (teacher calls cost money) continues where it stopped.
///
/// A line counts only when its settings key and record hash match the current build, so changing a flag, the
/// teacher, the model or the data recomputes the affected records instead of reusing stale ones. A torn last
/// line (the process was killed mid-write) is ignored, and the next append starts on a new line.
public final class BuildCache<Outcome: Codable> {
    public let path: String
    public let settingsKey: String

    /// `settings` is every setting the outcomes depend on; only its hash is stored.
    public init(path: String, settings: String) {
        self.path = path
        var hash = StableHash()
        hash.combine(settings)
        settingsKey = hash.hex
    }

    /// The cached outcomes that belong to `records` under the current settings, by record index.
    public func load(records: [SourceRecord]) -> [Int: Outcome] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        let fingerprints = Dictionary(records.map { ($0.index, $0.fingerprint) }, uniquingKeysWith: { first, _ in first })
        let decoder = JSONDecoder()
        var outcomes: [Int: Outcome] = [:]
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let entry = try? decoder.decode(CacheLine<Outcome>.self, from: Data(line)),
                  entry.settings == settingsKey, fingerprints[entry.index] == entry.record else { continue }
            outcomes[entry.index] = entry.outcome
        }
        return outcomes
    }

    /// Appends one line per finished record and flushes the file to disk.
    public func append(_ entries: [(record: SourceRecord, outcome: Outcome)]) throws {
        guard !entries.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var bytes = Data()
        for entry in entries {
            bytes += try encoder.encode(CacheLine(settings: settingsKey, index: entry.record.index, record: entry.record.fingerprint,
                                                  outcome: entry.outcome))
            bytes.append(UInt8(ascii: "\n"))
        }
        if !FileManager.default.fileExists(atPath: path) {
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw KnowTuneError.fileUnreadable(path: path, reason: "cannot create the build cache (is the folder writable?)")
            }
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let end = try handle.seekToEnd()
        if end > 0 {
            // A torn last line from a killed run must not swallow the first new line.
            try handle.seek(toOffset: end - 1)
            if handle.readData(ofLength: 1) != Data([UInt8(ascii: "\n")]) {
                try handle.seekToEnd()
                bytes.insert(UInt8(ascii: "\n"), at: 0)
            }
        }
        try handle.seekToEnd()
        try handle.write(contentsOf: bytes)
        try handle.synchronize()
    }

    /// Deletes the cache file (`--overwrite_cache`).
    public func remove() throws {
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    }
}
