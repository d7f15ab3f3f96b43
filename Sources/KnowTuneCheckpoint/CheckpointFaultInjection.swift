// Implements the test-only fault injection of the checkpoint writer (KNOWTUNE_FAULT_CHECKPOINT_WRITE=kill: the
// writer SIGKILLs itself after writing half the tensors to its temporary file; after-adapter, after-state,
// after-trainer-state: after that file of a checkpoint folder, before the next file or the folder's publication);
// does not run unless that variable is set.
import Foundation
import KnowTuneTensor

/// A deliberate crash point, so a test can prove that an interrupted write never replaces the last good file.
public enum CheckpointFaultInjection: Equatable, Sendable {
    case none
    /// `kill(getpid(), SIGKILL)` after half of the tensors are in the temporary file.
    case killAfterHalfTheTensors
    /// `kill(getpid(), SIGKILL)` once the named part of a checkpoint folder is complete.
    case killAfterFile(CheckpointPart)

    /// The files of a checkpoint folder, in the order they are written.
    public enum CheckpointPart: String, CaseIterable, Sendable {
        case adapter, state
        case trainerState = "trainer-state"
    }

    /// Reads `KNOWTUNE_FAULT_CHECKPOINT_WRITE` (`kill`, or unset/empty).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        switch environment["KNOWTUNE_FAULT_CHECKPOINT_WRITE"] {
        case nil, "": self = .none
        case "kill": self = .killAfterHalfTheTensors
        case let other?:
            if other.hasPrefix("after-"), let part = CheckpointPart(rawValue: String(other.dropFirst("after-".count))) {
                self = .killAfterFile(part)
                return
            }
            throw KnowTuneError.invalidConfiguration("KNOWTUNE_FAULT_CHECKPOINT_WRITE=\(other) (expected kill, "
                + CheckpointPart.allCases.map { "after-\($0.rawValue)" }.joined(separator: ", ") + ", or unset)")
        }
    }

    /// Called by the checkpoint folder's writer after each part.
    public func partWritten(_ part: CheckpointPart) {
        guard self == .killAfterFile(part) else { return }
        kill(getpid(), SIGKILL)
    }

    /// Called by the writer before the first tensor and after each one.
    func tensorsWritten(_ written: Int, of total: Int, file: HDF5File) {
        guard self == .killAfterHalfTheTensors, written >= total / 2 else { return }
        try? file.flush()  // Leave a realistic half-written file behind.
        kill(getpid(), SIGKILL)
    }
}
