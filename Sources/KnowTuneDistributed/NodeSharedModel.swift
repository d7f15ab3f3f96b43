// Implements loading the frozen base once per node: local rank 0 streams the model, tensor by tensor, into a flat file
// of the base precision (fp32, 16-bit or quantized blocks: LlamaStorageLayout) in a cache folder keyed by the model's identity
// (path, sizes, modification times, configuration), every rank of the node maps that file copy-on-write, so the
// base is resident once per node however many ranks share it; entries of replaced model files are removed when the
// new one is written. Does not decide what the ranks compute.
import Foundation
import KnowTuneModel
import KnowTuneTensor

public enum NodeSharedModel {
    /// Part of every entry's key: raised when a precision's layout changes (2: q4_k keeps a file's Q4_0/Q4_1 rows
    /// that Q4_K cannot hold), so that no entry written by an earlier version is mapped with another layout.
    static let formatVersion = "knowtune-flat-2"

    /// `$KNOWTUNE_CACHE/weights`, default `~/.cache/knowtune/weights`.
    public static var cacheDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        let root = environment["KNOWTUNE_CACHE"]
            ?? ((environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")) as NSString)
                .appendingPathComponent("knowtune")
        return (root as NSString).appendingPathComponent("weights")
    }

    /// A stable key for the model's weights as they are on disk now.
    static func key(of description: ModelDescription) throws -> String {
        var hash = FNV1a64()
        func mix(_ text: String) { for byte in text.utf8 { hash.combine(byte: byte) } }
        mix(formatVersion)
        for file in description.weightFiles {
            // The file behind a symlink: relinking the same file (launch/fetch-model.sh does) keeps the entry.
            let resolved = (file as NSString).resolvingSymlinksInPath
            let attributes = try FileManager.default.attributesOfItem(atPath: resolved)
            mix(resolved)
            mix("\(attributes[.size] ?? 0)|\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        mix(String(decoding: try encoder.encode(description.configuration), as: UTF8.self))
        return String(format: "%016llx", hash.value)
    }

    /// The extension of an entry's flat file in `precision` (`<key>.f32`, `.bf16`, `.f16`).
    static func fileExtension(_ precision: BasePrecision) -> String { precision == .fp32 ? "f32" : precision.rawValue }

    /// What an entry's `<key>.source` sidecar holds: the model's weight files, so that the entries of earlier
    /// versions of the same files can be found.
    static func sourceText(of description: ModelDescription) -> String {
        description.weightFiles.map { ($0 as NSString).resolvingSymlinksInPath }.joined(separator: "\n") + "\n"
    }

    /// Removes every precision of the entries whose sidecar names the same files as `source` under a key other than
    /// `key` (the files were replaced since). Jobs still using them keep their mappings: unlinked files stay
    /// readable until unmapped.
    static func pruneReplacedEntries(in folder: String, keeping key: String, source: String) {
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".source") {
            let other = String(name.dropLast(".source".count))
            guard other != key, manager.contents(atPath: (folder as NSString).appendingPathComponent(name)) == Data(source.utf8) else {
                continue
            }
            for suffix in BasePrecision.allCases.map(fileExtension) + ["source"] {
                try? manager.removeItem(atPath: (folder as NSString).appendingPathComponent(other + "." + suffix))
            }
        }
    }

    /// Loads `path` for this rank with its frozen weights in `precision`. With `KNOWTUNE_SHARED_WEIGHTS=0` every rank
    /// dequantises (and converts) its own copy.
    public static func load(_ path: String, precision: BasePrecision = .fp32, communicator: any Communicator,
                            logger: RankLogger, cacheDirectory: String = cacheDirectory) throws -> LoadedModel {
        if ProcessInfo.processInfo.environment["KNOWTUNE_SHARED_WEIGHTS"] == "0" {
            return try Consensus.runAgreed(communicator: communicator, operation: "load model") {
                try ModelLoader.load(path, precision: precision)
            }
        }
        let description = try Consensus.runAgreed(communicator: communicator, operation: "describe model") { try ModelLoader.describe(path) }
        let flatPath = try Consensus.runAgreed(communicator: communicator, operation: "flat weights") { () -> String in
            let folder = cacheDirectory
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let entry = try key(of: description)
            let stem = (folder as NSString).appendingPathComponent(entry)
            let file = stem + "." + fileExtension(precision)
            if communicator.localRank == 0, !FileManager.default.fileExists(atPath: file) {
                let started = Date()
                let source = sourceText(of: description)
                var scratch = 0
                try LlamaWeights.publishFile(at: file) { write in
                    scratch = try WeightStreamer.stream(path, configuration: description.configuration,
                                                        layout: description.storageLayout(precision), write: write)
                }
                try source.write(toFile: stem + ".source", atomically: true, encoding: .utf8)
                pruneReplacedEntries(in: folder, keeping: entry, source: source)
                logger.info(String(format: "cached the %@ base of %@ at %@ (%.1fs, %.0f MiB of scratch)", precision.rawValue,
                                   path, file, Date().timeIntervalSince(started), Double(scratch) / 1_048_576))
            }
            return file
        }
        // Every rank waits for its node's local rank 0 (the agreement above is that barrier), then maps the file.
        let weights = try Consensus.runAgreed(communicator: communicator, operation: "map weights") {
            try LlamaWeights(configuration: description.configuration, flatFile: flatPath,
                             storageLayout: description.storageLayout(precision))
        }
        return LoadedModel(configuration: description.configuration, weights: weights, tokenizer: description.tokenizer,
                           source: description.source, format: description.format + ", node-shared " + weights.storageLayout.formatNote)
    }
}
