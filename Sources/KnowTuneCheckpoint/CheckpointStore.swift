// Implements atomic, verified checkpoint files: write to a temporary file in the same folder with a checksum per
// dataset, close, fsync, record the whole file's size and checksum in a sidecar, rename over the final name, fsync
// the folder; read back verifying the sidecar before libhdf5 sees the file, then every dataset checksum; find the
// newest intact `checkpoint-<step>` folder. Does not decide what goes into a checkpoint, which rank writes
// it, or when old ones are deleted (the trainer does; only rank 0 should write).
import Foundation
import KnowTuneTensor
#if canImport(Glibc)
import Glibc
#endif

/// Reads and writes ``CheckpointContents`` as one HDF5 file, never leaving a half-written file under its name.
///
/// Sequence: `.state.h5.tmp-<pid>` → `H5Fclose` → `fsync` →
/// `rename` → `fsync(folder)`. HDF5 itself does not fsync, and is not crash-safe while open for write, so a
/// file is never updated in place. A reader sees the previous file or the new one, never a mix.
public struct CheckpointStore: Sendable {
    /// The file name inside a checkpoint folder.
    public static let defaultFileName = "state.h5"
    /// Version of the store's container layout (reserved attributes and checksums), not of the trainer's content.
    public static let containerVersion: Int64 = 1

    static let versionAttribute = CheckpointContents.reservedAttributePrefix + "version"
    static let datasetCountAttribute = CheckpointContents.reservedAttributePrefix + "dataset_count"
    static let attributesChecksumAttribute = CheckpointContents.reservedAttributePrefix + "attributes_fnv1a64"
    /// The checksum attribute on every dataset.
    public static let checksumAttribute = "fnv1a64"
    /// Files larger than this are not checkpoints KnowTune wrote (a 70B model's LoRA state is a few GiB).
    static let largestFile = 1 << 40

    /// The sidecar of `fileName`: its byte count and whole-file FNV-1a 64, checked before libhdf5 opens the file
    /// (libhdf5 can crash on a damaged file before any dataset checksum is read).
    public static func sidecarName(_ fileName: String) -> String { fileName + ".fnv1a64" }

    /// The crash point for tests; `.none` in normal runs.
    public var faultInjection: CheckpointFaultInjection

    public init(faultInjection: CheckpointFaultInjection = .none) {
        self.faultInjection = faultInjection
    }

    /// A store whose fault injection comes from `KNOWTUNE_FAULT_CHECKPOINT_WRITE`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> CheckpointStore {
        CheckpointStore(faultInjection: try CheckpointFaultInjection(environment: environment))
    }

    /// "checkpoint-<step>".
    public static func folderName(step: Int) -> String { "checkpoint-\(step)" }

    /// The step of a "checkpoint-<step>" folder name, or nil for anything else.
    public static func step(ofFolderName name: String) -> Int? {
        let prefix = "checkpoint-"
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    // MARK: Writing

    /// Writes `contents` to `folder/fileName` atomically (creating `folder` if needed) and returns the file path.
    @discardableResult
    public func write(_ contents: CheckpointContents, to folder: String, fileName: String = defaultFileName) throws -> String {
        let finalPath = (folder as NSString).appendingPathComponent(fileName)
        try contents.validate(destination: finalPath)
        let createdFolder = try Self.makeFolder(folder)
        try Self.removeStaleTemporaryFiles(in: folder, fileName: fileName)
        let temporaryPath = (folder as NSString).appendingPathComponent(Self.temporaryPrefix(fileName) + "\(getpid())")
        let sidecarPath = (folder as NSString).appendingPathComponent(Self.sidecarName(fileName))
        let temporarySidecar = temporaryPath + ".fnv1a64"
        do {
            try writeFile(contents, to: temporaryPath)
            try Self.synchronize(path: temporaryPath, directory: false)
            let digest = try Self.digest(of: temporaryPath)
            guard FileManager.default.createFile(atPath: temporarySidecar, contents: Data(Self.sidecarText(digest).utf8)) else {
                throw KnowTuneError.fileUnreadable(path: sidecarPath, reason: "cannot write: \(Self.errnoText())")
            }
            try Self.synchronize(path: temporarySidecar, directory: false)
            // The sidecar goes first: a crash between the renames leaves a mismatch, which readers report as damage.
            for (from, to) in [(temporarySidecar, sidecarPath), (temporaryPath, finalPath)] {
                guard rename(from, to) == 0 else {
                    throw KnowTuneError.fileUnreadable(path: to, reason: "cannot write: rename from \(from) failed: \(Self.errnoText())")
                }
            }
        } catch {
            unlink(temporaryPath)
            unlink(temporarySidecar)
            throw error
        }
        try Self.synchronize(path: folder, directory: true)
        if createdFolder { try Self.synchronize(path: (folder as NSString).deletingLastPathComponent, directory: true) }
        return finalPath
    }

    private func writeFile(_ contents: CheckpointContents, to path: String) throws {
        let file = try HDF5File.create(path)
        try file.setAttribute(Self.versionAttribute, Self.containerVersion)
        try file.setAttribute(Self.datasetCountAttribute, Int64(contents.datasetNames.count))
        for (name, value) in contents.attributes.sorted(by: { $0.key < $1.key }) {
            try file.setAttribute(name, string: value)
        }
        try file.setAttribute(Self.attributesChecksumAttribute, TensorChecksum.of(attributes: contents.attributes))

        let tensorNames = contents.tensors.keys.sorted()
        faultInjection.tensorsWritten(0, of: tensorNames.count, file: file)
        for (index, name) in tensorNames.enumerated() {
            guard let tensor = contents.tensors[name] else { continue }
            try write(tensor.values, shape: tensor.shape, name: name, into: file)
            faultInjection.tensorsWritten(index + 1, of: tensorNames.count, file: file)
        }
        for (name, values) in contents.doubles.sorted(by: { $0.key < $1.key }) {
            try write(values, shape: [values.count], name: name, into: file)
        }
        for (name, values) in contents.integers.sorted(by: { $0.key < $1.key }) {
            try write(values, shape: [values.count], name: name, into: file)
        }
        try file.close()
    }

    private func write<Element: HDF5Element>(_ values: [Element], shape: [Int], name: String, into file: HDF5File) throws {
        try file.write(values, shape: shape, to: name)
        try file.setAttribute(Self.checksumAttribute, TensorChecksum.of(values, shape: shape), on: name)
    }

    // MARK: Reading

    /// Reads `folder/fileName`, verifying the whole-file sidecar first, then the container version, the dataset
    /// count and every checksum.
    public func read(from folder: String, fileName: String = defaultFileName) throws -> CheckpointContents {
        let path = (folder as NSString).appendingPathComponent(fileName)
        try Self.verifySidecar(of: path, sidecar: (folder as NSString).appendingPathComponent(Self.sidecarName(fileName)))
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        guard try file.hasAttribute(Self.versionAttribute) else {
            throw KnowTuneError.badFormat(path: path, reason: "not a KnowTune checkpoint (no \(Self.versionAttribute) attribute)")
        }
        let version: Int64 = try file.attribute(Self.versionAttribute)
        guard version <= Self.containerVersion else {
            throw KnowTuneError.unsupported(what: "checkpoint container version \(version) in \(path)",
                                            supported: "versions up to \(Self.containerVersion); update KnowTune")
        }
        var contents = CheckpointContents()
        let names = try file.datasetNames()
        let expectedCount: Int64 = try file.attribute(Self.datasetCountAttribute)
        guard Int64(names.count) == expectedCount else {
            throw KnowTuneError.badFormat(
                path: path, reason: "holds \(names.count) datasets, but was written with \(expectedCount) (incomplete or modified file)")
        }
        for name in names {
            switch try file.elementType(of: name) {
            case .float32?:
                let (shape, values) = try read(name, from: file, as: Float.self)
                contents.tensors[name] = CheckpointTensor(shape: shape, values: values)
            case .float64?:
                contents.doubles[name] = try read(name, from: file, as: Double.self).values
            case .int64?:
                contents.integers[name] = try read(name, from: file, as: Int64.self).values
            case .uint64?, nil:
                throw KnowTuneError.badFormat(path: path, reason: "dataset '\(name)' has a type checkpoints do not use")
            }
        }
        for name in try file.attributeNames() where !name.hasPrefix(CheckpointContents.reservedAttributePrefix) {
            contents.attributes[name] = try file.stringAttribute(name)
        }
        let storedAttributesChecksum: UInt64 = try file.attribute(Self.attributesChecksumAttribute)
        guard storedAttributesChecksum == TensorChecksum.of(attributes: contents.attributes) else {
            throw KnowTuneError.badFormat(path: path, reason: "the attributes are corrupt (checksum mismatch)")
        }
        return contents
    }

    private func read<Element: HDF5Element>(_ name: String, from file: HDF5File, as type: Element.Type) throws
        -> (shape: [Int], values: [Element]) {
        let (shape, values) = try file.read(name, as: type)
        guard try file.hasAttribute(Self.checksumAttribute, on: name) else {
            throw KnowTuneError.badFormat(path: file.path, reason: "dataset '\(name)' has no \(Self.checksumAttribute) checksum")
        }
        let stored: UInt64 = try file.attribute(Self.checksumAttribute, on: name)
        let actual = TensorChecksum.of(values, shape: shape)
        guard stored == actual else {
            throw KnowTuneError.badFormat(path: file.path, reason: "dataset '\(name)' is corrupt: checksum "
                + "\(Self.hex(actual)) does not match the stored \(Self.hex(stored))")
        }
        return (shape, values)
    }

    // MARK: Whole-file checksum

    struct Digest: Equatable {
        var byteCount: Int
        var hash: UInt64
    }

    static func sidecarText(_ digest: Digest) -> String { "fnv1a64 \(hex(digest.hash)) bytes \(digest.byteCount)\n" }

    /// The size and FNV-1a 64 of the file at `path`, read in 1 MiB blocks.
    static func digest(of path: String) throws -> Digest {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot open: \(errnoText())")
        }
        defer { try? handle.close() }
        var hasher = FNV1a64()
        var byteCount = 0
        while true {
            let block: Data
            do { block = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
                throw KnowTuneError.fileUnreadable(path: path, reason: error.localizedDescription)
            }
            if block.isEmpty { break }
            byteCount += block.count
            guard byteCount <= largestFile else {
                throw KnowTuneError.badFormat(path: path, reason: "larger than \(largestFile) bytes: not a KnowTune checkpoint")
            }
            block.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
        return Digest(byteCount: byteCount, hash: hasher.value)
    }

    /// Checks `path` against its sidecar before anything parses it; a missing, malformed or mismatching sidecar is
    /// an error naming the file.
    static func verifySidecar(of path: String, sidecar: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no such file")
        }
        guard let data = FileManager.default.contents(atPath: sidecar), data.count < 256 else {
            throw KnowTuneError.badFormat(path: path, reason: "no readable checksum sidecar \((sidecar as NSString).lastPathComponent) "
                + "(an incomplete checkpoint, or one written before KnowTune recorded whole-file checksums); not opened")
        }
        let fields = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 4, fields[0] == "fnv1a64", fields[2] == "bytes", fields[1].hasPrefix("0x"),
              let hash = UInt64(fields[1].dropFirst(2), radix: 16), let byteCount = Int(fields[3]) else {
            throw KnowTuneError.badFormat(path: sidecar, reason: "not a checksum sidecar (expected `fnv1a64 0x… bytes N`)")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
        guard size == byteCount else {
            throw KnowTuneError.badFormat(path: path, reason: "is \(size) bytes, but was written with \(byteCount) (truncated or modified); not opened")
        }
        let actual = try digest(of: path)
        guard actual.hash == hash else {
            throw KnowTuneError.badFormat(path: path, reason: "whole-file checksum \(hex(actual.hash)) does not match the recorded "
                + "\(hex(hash)) (damaged file); not opened")
        }
    }

    // MARK: Finding the newest intact checkpoint

    /// The newest `checkpoint-<step>` folder in `outputDirectory` whose `fileName` reads back intact, or nil.
    /// Temporary files and folders without a complete file are skipped; `skipped` hears about each skip.
    public func latestComplete(in outputDirectory: String, fileName: String = defaultFileName,
                               skipped: (String, Error) -> Void = { _, _ in }) -> String? {
        for folder in Self.checkpointFolders(in: outputDirectory) {
            do {
                _ = try read(from: folder, fileName: fileName)
                return folder
            } catch {
                skipped(folder, error)
            }
        }
        return nil
    }

    /// The `checkpoint-<step>` folders of `outputDirectory`, newest step first (other names and files are ignored).
    public static func checkpointFolders(in outputDirectory: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: outputDirectory) else { return [] }
        return entries.compactMap { name in step(ofFolderName: name).map { (step: $0, name: name) } }
            .sorted { $0.step > $1.step }
            .map { (outputDirectory as NSString).appendingPathComponent($0.name) }
            .filter { folder in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue
            }
    }

    // MARK: File-system helpers

    static func temporaryPrefix(_ fileName: String) -> String { ".\(fileName).tmp-" }

    /// Creates `folder` if missing; returns whether it did.
    private static func makeFolder(_ folder: String) throws -> Bool {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw KnowTuneError.fileUnreadable(path: folder, reason: "cannot write: exists and is not a folder")
            }
            return false
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw KnowTuneError.fileUnreadable(
                path: folder, reason: "cannot write: cannot create the folder: \(error.localizedDescription)")
        }
        return true
    }

    /// "checkpoint-<step>.tmp": where a checkpoint folder is written before it is published under its name.
    public static func temporaryFolderName(step: Int) -> String { folderName(step: step) + ".tmp" }

    /// Publishes a folder written at `temporary` as `final`, as one unit: every file in it and the folder itself are
    /// fsynced, a previous `final` is removed, `temporary` is renamed to `final` and the parent folder fsynced. A
    /// crash before the rename leaves only `temporary`, which readers ignore (its name is not `checkpoint-<step>`).
    public static func publishFolder(_ temporary: String, as final: String) throws {
        for entry in try FileManager.default.contentsOfDirectory(atPath: temporary) {
            let path = (temporary as NSString).appendingPathComponent(entry)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                try synchronize(path: path, directory: false)
            }
        }
        try synchronize(path: temporary, directory: true)
        if FileManager.default.fileExists(atPath: final) { try FileManager.default.removeItem(atPath: final) }
        guard rename(temporary, final) == 0 else {
            throw KnowTuneError.fileUnreadable(path: final, reason: "cannot publish \(temporary): rename failed: \(errnoText())")
        }
        try synchronize(path: (final as NSString).deletingLastPathComponent, directory: true)
    }

    /// Removes temporary files (and their sidecars) that an interrupted writer left (only rank 0 writes, so none is
    /// in use).
    private static func removeStaleTemporaryFiles(in folder: String, fileName: String) throws {
        let prefix = temporaryPrefix(fileName)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where entry.hasPrefix(prefix) {
            unlink((folder as NSString).appendingPathComponent(entry))
        }
    }

    private static func synchronize(path: String, directory: Bool) throws {
        let descriptor = open(path.isEmpty ? "." : path, O_RDONLY | (directory ? O_DIRECTORY : 0))
        guard descriptor >= 0 else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot write: cannot open for fsync: \(errnoText())")
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot write: fsync failed: \(errnoText())")
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
