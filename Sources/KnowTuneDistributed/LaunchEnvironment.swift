// Implements the decision whether this process was started by an MPI launcher (mpirun, mpiexec, srun), and
// the host name; does not initialise MPI (MPICommunicator.start does).
import Foundation
import KnowTuneTensor

/// What the process environment says about how the job was launched.
public enum LaunchEnvironment {
    /// The launcher that started this process, if any, judged from the variables launchers export.
    public enum Launcher: Equatable, Sendable {
        /// Open MPI's `mpirun`/`mpiexec` (`OMPI_COMM_WORLD_SIZE`).
        case openMPI
        /// A PMIx launcher: Open MPI 5 / PRRTE, or `srun --mpi=pmix` (`PMIX_RANK`).
        case pmix
        /// A PMI-1/2 launcher: MPICH/Hydra, Intel MPI, or `srun --mpi=pmi2` (`PMI_RANK`/`PMI_SIZE`).
        case pmi
        /// A Slurm job step with more than one task (`SLURM_PROCID` with `SLURM_STEP_NUM_TASKS`/`SLURM_NTASKS` > 1).
        case slurm
        /// Not launched by an MPI launcher: a one-rank job.
        case none
    }

    /// Detects the launcher. `KNOWTUNE_MPI=always` or `never` overrides the detection (`always` is reported as
    /// `.openMPI` when nothing else is found, so MPI is initialised as a singleton).
    public static func launcher(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Launcher {
        let detected = detect(environment)
        switch environment["KNOWTUNE_MPI"]?.lowercased() {
        case nil, "", "auto": return detected
        case "never", "0", "off": return .none
        case "always", "1", "on": return detected == .none ? .openMPI : detected
        case let other?:
            throw KnowTuneError.invalidConfiguration("KNOWTUNE_MPI=\(other) (expected auto, always or never)")
        }
    }

    static func detect(_ environment: [String: String]) -> Launcher {
        if environment["OMPI_COMM_WORLD_SIZE"] != nil { return .openMPI }
        if environment["PMIX_RANK"] != nil { return .pmix }
        if environment["PMI_RANK"] != nil || environment["PMI_SIZE"] != nil { return .pmi }
        if environment["SLURM_PROCID"] != nil {
            // Inside an sbatch script SLURM_NTASKS describes the allocation, not this process: prefer the step's count.
            let tasks = environment["SLURM_STEP_NUM_TASKS"] ?? environment["SLURM_NTASKS"]
            if let tasks, let count = Int(tasks), count > 1 { return .slurm }
        }
        return .none
    }

    /// The number of ranks the launcher says it started, when it says (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`, or
    /// Slurm's step task count). MPI must report the same world size; if it reports 1 instead, the launcher and
    /// the MPI library do not match (for example `srun` without `--mpi=pmix`, or another MPI's `mpiexec`).
    public static func expectedWorldSize(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let text = environment[name], let size = Int(text), size > 0 { return size }
        }
        if detect(environment) == .slurm, let text = environment["SLURM_STEP_NUM_TASKS"] ?? environment["SLURM_NTASKS"] {
            return Int(text)
        }
        return nil
    }

    /// This machine's host name (`gethostname`, no DNS lookup).
    public static func currentHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        return String(cString: buffer)
    }
}
