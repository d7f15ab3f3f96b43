// Implements the `checkpoint-crash` mode: write a checkpoint with the store configured from the environment, so
// that KNOWTUNE_FAULT_CHECKPOINT_WRITE=kill kills this process half-way; does not check anything (the test does).
import Foundation
import KnowTuneCheckpoint

enum CheckpointCrash {
    /// The contents written by the crash run: four tensors, so the writer dies after two.
    static func contents() -> CheckpointContents {
        var contents = CheckpointContents(attributes: ["writer": "checkpoint-crash"])
        for index in 0..<4 {
            contents.tensors["tensor.\(index)"] = CheckpointTensor(shape: [64, 64], values: (0..<4096).map { Float($0 + index) })
        }
        contents.integers["step"] = [2]
        return contents
    }

    static func run(folder: String) -> Never {
        do {
            let store = try CheckpointStore.fromEnvironment()
            let path = try store.write(contents(), to: folder)
            print("checkpoint-crash: wrote \(path) (no fault injected)")
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("checkpoint-crash: \(error)\n".utf8))
            exit(1)
        }
    }
}
