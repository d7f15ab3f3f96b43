// Implements the test-only crash points of a training run, read from the environment: SIGKILL at the start of a
// given step (KNOWTUNE_FAULT_KILL_AT_STEP=N) and the checkpoint writer's crashes at a given step's checkpoint
// (KNOWTUNE_FAULT_CHECKPOINT_WRITE=kill|after-<part> with KNOWTUNE_FAULT_CHECKPOINT_AT_STEP=N); does nothing unless set.
import Foundation
import KnowTuneCheckpoint
import KnowTuneTensor

struct TrainingFaultInjection {
    var killAtStep: Int?
    var checkpointFaultAtStep: Int?
    var rank: Int?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        killAtStep = environment["KNOWTUNE_FAULT_KILL_AT_STEP"].flatMap { Int($0) }
        checkpointFaultAtStep = environment["KNOWTUNE_FAULT_CHECKPOINT_AT_STEP"].flatMap { Int($0) }
        rank = environment["KNOWTUNE_FAULT_RANK"].flatMap { Int($0) }
    }

    func beforeStep(_ step: Int, rank currentRank: Int) {
        guard step == killAtStep, rank == nil || rank == currentRank else { return }
        kill(getpid(), SIGKILL)
    }

    /// The checkpoint writer's fault for `step`: the configured one only at the chosen step (any step if none chosen).
    func checkpointFault(step: Int) throws -> CheckpointFaultInjection {
        if let checkpointFaultAtStep, checkpointFaultAtStep != step { return .none }
        return try CheckpointFaultInjection()
    }
}
