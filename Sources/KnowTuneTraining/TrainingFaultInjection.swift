// Implements the test-only crash points of a training run, read from the environment: SIGKILL at the start of a
// given step (KNOWTUNE_FAULT_KILL_AT_STEP=N) and the checkpoint writer's half-written-file crash at a given step's
// checkpoint (KNOWTUNE_FAULT_CHECKPOINT_WRITE=kill with KNOWTUNE_FAULT_CHECKPOINT_AT_STEP=N); does nothing unless set.
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

    /// The store for `step`'s checkpoint: the fault-injecting one only at the chosen step (any step if none chosen).
    func checkpointStore(step: Int) throws -> CheckpointStore {
        if let checkpointFaultAtStep, checkpointFaultAtStep != step { return CheckpointStore() }
        return try CheckpointStore.fromEnvironment()
    }
}
