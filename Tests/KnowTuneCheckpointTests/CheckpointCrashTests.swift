// Implements the crash test of the checkpoint writer: a child process (`knowtune-testkit checkpoint-crash`) with
// KNOWTUNE_FAULT_CHECKPOINT_WRITE=kill dies half-way through its temporary file, and the previous checkpoint stays
// intact and is still the newest complete one; does not inject faults in-process.
import KnowTuneCheckpoint
import KnowTuneTestSupport
import XCTest

final class CheckpointCrashTests: XCTestCase {
    func testKilledWriterLeavesThePreviousCheckpointIntact() throws {
        let folder = try TestFolder()
        defer { folder.remove() }
        let store = CheckpointStore()
        let previous = CheckpointContents(tensors: ["tensor.0": CheckpointTensor([1, 2, 3])], integers: ["step": [1]],
                                          attributes: ["writer": "test"])
        let first = folder.appending("checkpoint-1")
        try store.write(previous, to: first)

        // A new checkpoint folder, and an overwrite of the existing one: both writers are killed mid-write.
        for target in [folder.appending("checkpoint-2"), first] {
            let result = try Testkit.run(try Testkit.executable(), ["checkpoint-crash", target],
                                         environment: ["KNOWTUNE_FAULT_CHECKPOINT_WRITE": "kill"], timeout: 20)
            XCTAssertEqual(result.reason, .uncaughtSignal, result.output)
            XCTAssertEqual(result.status, SIGKILL, result.output)
            let entries = try FileManager.default.contentsOfDirectory(atPath: target)
            XCTAssertTrue(entries.contains { $0.hasPrefix(".state.h5.tmp-") }, "the half-written temporary file stays: \(entries)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: (folder.appending("checkpoint-2") as NSString).appendingPathComponent("state.h5")))
        XCTAssertEqual(try store.read(from: first), previous)
        XCTAssertEqual(store.latestComplete(in: folder.path), first)

        // Without the fault the same writer completes, and its checkpoint becomes the newest.
        let result = try Testkit.run(try Testkit.executable(), ["checkpoint-crash", folder.appending("checkpoint-2")], timeout: 20)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(store.latestComplete(in: folder.path), folder.appending("checkpoint-2"))
        XCTAssertEqual(try store.read(from: folder.appending("checkpoint-2")).tensors.count, 4)
    }
}
