// Implements finding the checkpoint to resume from: every `checkpoint-<step>` folder checked as a whole (the adapter
// files, `state.h5` against its sidecar and checksums, `trainer_state.json`), newest first, with the reason for each
// one passed over; and the check that an output folder can be written before anything heavy loads. Does not restore
// (TrainerCheckpoint) or write checkpoints (Trainer).
import Foundation
import KnowTuneCheckpoint
import KnowTuneModel
import KnowTuneTensor

public enum CheckpointLocator {
    /// The files of a published checkpoint folder.
    static let requiredFiles = [PEFTAdapter.configFile, PEFTAdapter.weightsFile, CheckpointStore.defaultFileName,
                                CheckpointStore.sidecarName(CheckpointStore.defaultFileName), "trainer_state.json"]

    /// Why `folder` cannot be resumed from, or nil when every file is there and reads back intact.
    public static func damage(in folder: String) -> String? {
        let missing = requiredFiles.filter { !FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0)) }
        if !missing.isEmpty { return "missing \(missing.joined(separator: ", "))" }
        do {
            _ = try CheckpointStore().read(from: folder)
            _ = try PEFTAdapter.configuration(folder: folder)
            _ = try SafeTensorsFile(path: (folder as NSString).appendingPathComponent(PEFTAdapter.weightsFile))
            let state = try Data(contentsOf: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("trainer_state.json")))
            guard (try? JSONSerialization.jsonObject(with: state)) is [String: Any] else {
                return "trainer_state.json is not a JSON object"
            }
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// The newest intact `checkpoint-<step>` in `directory`, and every newer one passed over with its reason.
    public static func latestComplete(in directory: String) -> (folder: String?, skipped: [(folder: String, reason: String)]) {
        var skipped: [(folder: String, reason: String)] = []
        for folder in CheckpointStore.checkpointFolders(in: directory) {
            guard let damage = damage(in: folder) else { return (folder, skipped) }
            skipped.append((folder, damage))
        }
        return (nil, skipped)
    }

    static let writeProbePrefix = ".knowtune-write-probe-"

    /// Creates `directory` if needed and proves it writable with a probe file, so that a read-only or unreachable
    /// output folder is an error before the model loads, not at the first checkpoint.
    static func checkWritable(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw KnowTuneError.fileUnreadable(path: directory, reason: "cannot create the output folder: \(error.localizedDescription)")
        }
        let probe = (directory as NSString).appendingPathComponent(writeProbePrefix + "\(getpid())")
        // A plain create (FileManager writes through a temporary name, which other ranks would see as a previous run).
        let descriptor = open(probe, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        guard descriptor >= 0 else {
            throw KnowTuneError.fileUnreadable(path: directory, reason: "cannot write into the output folder (\(String(cString: strerror(errno))))")
        }
        close(descriptor)
        unlink(probe)
    }
}
