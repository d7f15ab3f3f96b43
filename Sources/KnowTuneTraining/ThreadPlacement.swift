// Implements choosing each rank's OpenBLAS thread count from the CPUs it may run on (its affinity mask) divided
// among the ranks that share them, unless the user set OPENBLAS_NUM_THREADS/OMP_NUM_THREADS, and the one-line
// placement summary rank 0 prints; does not bind processes (the launcher does).
import Foundation
import KnowTuneDistributed
import KnowTuneTensor

public enum ThreadPlacement {
    /// Sets this rank's BLAS threads and returns the job's summary line (with warnings for oversubscription).
    public static func apply(communicator: any Communicator,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let affinity = try NodeTopology.currentAffinity()
        let threads: Int
        if environment["OPENBLAS_NUM_THREADS"] != nil || environment["OMP_NUM_THREADS"] != nil {
            threads = NodeTopology.configuredThreads(environment)
        } else if affinity.count >= ProcessInfo.processInfo.activeProcessorCount {
            // Unbound: the node's CPUs are shared by its ranks.
            threads = max(1, affinity.count / max(communicator.localSize, 1))
        } else {
            threads = max(1, affinity.count)
        }
        BLAS.setThreadCount(threads)
        let topology = try NodeTopology.gather(communicator: communicator, threads: threads)
        return ([topology.summary] + topology.warnings.map { "warning: \($0)" }).joined(separator: "\n")
    }
}
