// Implements publishing a built dataset: the JSON array file beside the source dataset's file and its entry in
// `<dataset_dir>/dataset_info.json` (every other entry kept, in order and byte for byte), each written to a
// temporary file and renamed into place, the registry edit under an exclusive lock. Does not build the records.
import Foundation
import KnowTuneData
import KnowTuneTensor

public enum DatasetRegistration {
    /// The registry-relative file of the built dataset `name`: the source's folder + "`name`.json" (for
    /// `dolly_train` at `dolly/dolly_train.json`, KA is `dolly/dolly_train_KA.json`, as in the paper's tree).
    public static func outputFileName(source: DatasetEntry, name: String) -> String {
        let folder = (source.fileName as NSString).deletingLastPathComponent
        return folder.isEmpty ? name + ".json" : (folder as NSString).appendingPathComponent(name + ".json")
    }

    /// An Alpaca record `{"instruction", "input", "output"}` in that key order.
    public static func record(_ pair: QAPair) -> OrderedJSON {
        .object([.init("instruction", .string(pair.instruction)), .init("input", .string(pair.input)),
                 .init("output", .string(pair.output))])
    }

    /// A ranking record `{"instruction", "input", "output": [chosen, rejected]}`.
    public static func record(_ pair: RankingPair) -> OrderedJSON {
        .object([.init("instruction", .string(pair.instruction)), .init("input", .string(pair.input)),
                 .init("output", .array([.string(pair.chosen), .string(pair.rejected)]))])
    }

    /// Writes `records` as a JSON array (indent 2, UTF-8, trailing newline) to `path`, atomically.
    public static func writeRecords(_ records: [OrderedJSON], to path: String) throws {
        try writeAtomically(Data((OrderedJSON.array(records).serialized() + "\n").utf8), to: path)
    }

    /// Adds or replaces the entry `name` → `fileName` in `<directory>/dataset_info.json` with the KnowTuning
    /// columns (`prompt: instruction, query: input, response: output`) and, for pairwise data, `"ranking": true`.
    /// The other entries keep their order and text; the file is replaced atomically under an exclusive lock, so
    /// two builds registering at once both land.
    public static func register(name: String, fileName: String, ranking: Bool, in directory: String) throws {
        let path = DatasetRegistry.registryPath(in: directory)
        try withExclusiveLock(onFolder: directory) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KnowTuneError.fileUnreadable(path: path, reason: "no dataset_info.json in --dataset_dir \(directory)")
            }
            var registry = try OrderedJSON.parse(data, path: path)
            guard case .object = registry else { throw KnowTuneError.badFormat(path: path, reason: "not a JSON object") }
            var entry: [OrderedJSON.Member] = [
                .init("file_name", .string(fileName)),
                .init("columns", .object([.init("prompt", .string("instruction")), .init("query", .string("input")),
                                          .init("response", .string("output"))])),
            ]
            if ranking { entry.append(.init("ranking", .bool(true))) }
            registry.set(name, .object(entry))
            try writeAtomically(Data((registry.serialized() + "\n").utf8), to: path)
        }
    }

    /// Writes `data` to a temporary file beside `path`, flushes it and renames it over `path`.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw KnowTuneError.fileUnreadable(path: temporary, reason: "cannot create (is the folder writable?)")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, path) == 0 else {
                throw KnowTuneError.fileUnreadable(path: path, reason: "rename failed: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Runs `body` holding an exclusive `flock` on the folder itself (Linux and macOS lock directories too, so
    /// no lock file is left behind).
    static func withExclusiveLock<T>(onFolder lockPath: String, _ body: () throws -> T) throws -> T {
        let descriptor = open(lockPath.isEmpty ? "." : lockPath, O_RDONLY)
        guard descriptor >= 0 else {
            throw KnowTuneError.fileUnreadable(path: lockPath, reason: "cannot open for locking: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw KnowTuneError.fileUnreadable(path: lockPath, reason: "cannot lock: \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
