// Implements the tests of atomic, verified checkpoints: round trip of every value kind, corruption and truncation
// caught by the whole-file sidecar before libhdf5 opens the file and, behind it, by the dataset checksums and HDF5, validation, leftover temporary files, and the newest intact checkpoint; does not
// crash a writer (CheckpointCrashTests does).
@testable import KnowTuneCheckpoint
import KnowTuneTensor
import XCTest

final class CheckpointStoreTests: XCTestCase {
    var folder: TestFolder!
    let store = CheckpointStore()

    override func setUpWithError() throws { folder = try TestFolder() }
    override func tearDown() { folder.remove() }

    /// A checkpoint with every kind of value; `marker` makes tensor bytes easy to find in the file.
    func sample(step: Int64 = 10, marker: Float = 0.123_456_78) -> CheckpointContents {
        CheckpointContents(
            tensors: [
                "adapter/layers.0.q_proj.lora_A.weight": CheckpointTensor(shape: [4, 16], values: (0..<64).map { marker + Float($0) }),
                "adapter/layers.0.q_proj.lora_B.weight": CheckpointTensor(shape: [16, 4], values: (0..<64).map { -Float($0) / 7 }),
                "optimizer/m/base_model.model.layers.0.q_proj.lora_A.weight": CheckpointTensor([0, 1e-30, -.infinity, .greatestFiniteMagnitude]),
                "scalar": CheckpointTensor(shape: [], values: [42]),
                "empty": CheckpointTensor(shape: [0], values: []),
            ],
            doubles: ["metrics/eval_loss": [2.5, 2.25, 2.0], "lr": []],
            integers: ["step": [step], "rng/rank_0": [Int64.min, -1, 0, Int64.max], "data/permutation": Array(0..<100)],
            attributes: ["config": "{\"lora_rank\": 8}", "world_size": "2", "format": "knowtune-sft-1", "note": ""])
    }

    func testRoundTripOfEveryValueKind() throws {
        let contents = sample()
        let checkpoint = folder.appending("checkpoint-10")
        let path = try store.write(contents, to: checkpoint)
        XCTAssertEqual(path, (checkpoint as NSString).appendingPathComponent("state.h5"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: checkpoint).sorted(), ["state.h5", "state.h5.fnv1a64"],
                       "no temporary file left")
        XCTAssertEqual(try store.read(from: checkpoint), contents)
        // Writing again replaces the file atomically.
        let newer = sample(step: 11)
        try store.write(newer, to: checkpoint)
        XCTAssertEqual(try store.read(from: checkpoint), newer)
    }

    func testFlippedByteInATensorNamesTheTensor() throws {
        let checkpoint = folder.appending("checkpoint-1")
        let path = try store.write(sample(), to: checkpoint)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let tensorBytes = (0..<64).map { Float(0.123_456_78) + Float($0) }.withUnsafeBytes { Array($0) }
        guard let offset = find(tensorBytes, in: bytes) else { return XCTFail("tensor bytes not found in \(path)") }
        bytes[offset + 100] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try store.read(from: checkpoint)) { error in
            guard case let .badFormat(errorPath, reason)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.contains("whole-file checksum"), reason)
            XCTAssertTrue(reason.hasSuffix("(damaged file); not opened"), reason)
        }
        XCTAssertNil(store.latestComplete(in: folder.path))
        // Behind the sidecar (damage before it was computed), the dataset checksum names the tensor.
        try rewriteSidecar(of: path)
        XCTAssertThrowsError(try store.read(from: checkpoint)) { error in
            guard case let .badFormat(_, reason)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.hasPrefix("dataset 'adapter/layers.0.q_proj.lora_A.weight' is corrupt: checksum 0x"), reason)
        }
    }

    func testTruncatedFileIsReportedClearly() throws {
        let checkpoint = folder.appending("checkpoint-1")
        let path = try store.write(sample(), to: checkpoint)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        XCTAssertEqual(truncate(path, off_t(size / 2)), 0)
        XCTAssertThrowsError(try store.read(from: checkpoint)) { error in
            guard case let .badFormat(errorPath, reason)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
            XCTAssertEqual(reason, "is \(size / 2) bytes, but was written with \(size) (truncated or modified); not opened")
        }
        try rewriteSidecar(of: path)
        XCTAssertThrowsError(try store.read(from: checkpoint)) { error in
            guard case let .badFormat(_, reason)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.hasPrefix("not a readable HDF5 file (truncated or corrupt?): "), reason)
            XCTAssertTrue(reason.contains("truncated"), reason)
        }
    }

    func testMissingOrMalformedSidecarIsRefusedBeforeOpening() throws {
        let checkpoint = folder.appending("checkpoint-1")
        let path = try store.write(sample(), to: checkpoint)
        let sidecar = path + ".fnv1a64"
        XCTAssertEqual(try String(contentsOfFile: sidecar, encoding: .utf8),
                       CheckpointStore.sidecarText(try CheckpointStore.digest(of: path)))
        for (text, expected) in [("fnv1a64 0xzz bytes 10\n", "not a checksum sidecar"), ("", "not a checksum sidecar"),
                                 ("fnv1a64 0x1 bytes 12 extra\n", "not a checksum sidecar")] {
            try text.write(toFile: sidecar, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try store.read(from: checkpoint)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        try FileManager.default.removeItem(atPath: sidecar)
        XCTAssertThrowsError(try store.read(from: checkpoint)) { error in
            XCTAssertTrue("\(error)".contains("no readable checksum sidecar state.h5.fnv1a64"), "\(error)")
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        // Any bytes with a matching sidecar still reach only HDF5's own checks: an error, never a crash.
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: URL(fileURLWithPath: path))
        try rewriteSidecar(of: path)
        XCTAssertThrowsError(try store.read(from: checkpoint))
    }

    private func rewriteSidecar(of path: String) throws {
        try CheckpointStore.sidecarText(try CheckpointStore.digest(of: path)).write(toFile: path + ".fnv1a64", atomically: true, encoding: .utf8)
    }

    func testLatestCompleteSkipsTemporaryFilesAndBrokenCheckpoints() throws {
        XCTAssertNil(store.latestComplete(in: folder.appending("does-not-exist")))
        try store.write(sample(step: 100), to: folder.appending("checkpoint-100"))
        try store.write(sample(step: 20), to: folder.appending("checkpoint-20"))
        // checkpoint-300: only a leftover temporary file, as after a crash mid-write.
        let interrupted = folder.appending("checkpoint-300")
        try FileManager.default.createDirectory(atPath: interrupted, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: (interrupted as NSString).appendingPathComponent(".state.h5.tmp-4242")))
        // checkpoint-200: a file that is not a checkpoint.
        let foreign = folder.appending("checkpoint-200")
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        let other = try HDF5File.create((foreign as NSString).appendingPathComponent("state.h5"))
        try other.close()
        // Names that are not checkpoint folders.
        for name in ["checkpoint-latest", "checkpoint-", "notes-900"] {
            try FileManager.default.createDirectory(atPath: folder.appending(name), withIntermediateDirectories: true)
        }
        var skipped: [String] = []
        XCTAssertEqual(store.latestComplete(in: folder.path) { folder, _ in skipped.append((folder as NSString).lastPathComponent) },
                       folder.appending("checkpoint-100"))
        XCTAssertEqual(skipped, ["checkpoint-300", "checkpoint-200"])
        // The next write into the interrupted folder removes the stale temporary file.
        try store.write(sample(step: 300), to: interrupted)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: interrupted).sorted(), ["state.h5", "state.h5.fnv1a64"])
        XCTAssertEqual(store.latestComplete(in: folder.path), interrupted)
    }

    func testInvalidContentsAreRejectedBeforeWriting() throws {
        var contents = sample()
        contents.tensors["bad"] = CheckpointTensor(shape: [3, 3], values: [1, 2])
        contents.doubles["step"] = [1]
        contents.attributes["knowtune.store.version"] = "9"
        contents.integers["adapter"] = [1]
        let checkpoint = folder.appending("checkpoint-5")
        XCTAssertThrowsError(try store.write(contents, to: checkpoint)) { error in
            guard case let .invalidInput(message)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("'step' is both a doubles and a integers dataset"), message)
            XCTAssertTrue(message.contains("tensor 'bad' has shape [3, 3] but 2 values"), message)
            XCTAssertTrue(message.contains("attribute 'knowtune.store.version' uses the reserved prefix"), message)
            XCTAssertTrue(message.contains("'adapter' is a dataset and also the group of 'adapter/layers.0.q_proj.lora_A.weight'"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoint))
    }

    func testFolderNames() {
        XCTAssertEqual(CheckpointStore.folderName(step: 40), "checkpoint-40")
        XCTAssertEqual(CheckpointStore.step(ofFolderName: "checkpoint-40"), 40)
        XCTAssertNil(CheckpointStore.step(ofFolderName: "checkpoint-4a"))
        XCTAssertNil(CheckpointStore.step(ofFolderName: "checkpoint--1"))
        XCTAssertNil(CheckpointStore.step(ofFolderName: "ckpt-40"))
    }

    func testFaultInjectionSetting() throws {
        XCTAssertEqual(try CheckpointFaultInjection(environment: [:]), CheckpointFaultInjection.none)
        XCTAssertEqual(try CheckpointFaultInjection(environment: ["KNOWTUNE_FAULT_CHECKPOINT_WRITE": "kill"]), .killAfterHalfTheTensors)
        XCTAssertThrowsError(try CheckpointFaultInjection(environment: ["KNOWTUNE_FAULT_CHECKPOINT_WRITE": "maybe"]))
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }
}
