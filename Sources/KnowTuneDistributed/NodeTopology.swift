// Implements the placement report of a job: this rank's CPU affinity (sched_getaffinity), every rank's placement
// gathered to all ranks, the one-line summary and oversubscription warnings; does not bind, pin or set thread
// counts (mpirun/srun and the BLAS settings do).
import CKnowTuneMPIShims
import Foundation
import KnowTuneTensor

/// Where each rank runs: host, local rank, allowed CPUs and compute threads.
///
/// Binding is the classic CPU trap: Open MPI binds to core for np <= 2, so two ranks with 8 BLAS threads each
/// share two cores. Print ``summary`` and ``warnings`` at startup.
public struct NodeTopology: Equatable, Sendable {
    /// One rank's placement.
    public struct Placement: Codable, Equatable, Sendable {
        public var rank: Int
        public var hostname: String
        public var localRank: Int
        /// CPU ids this rank may run on, ascending.
        public var cpus: [Int]
        /// Compute threads this rank uses (BLAS/OpenMP).
        public var threads: Int

        public init(rank: Int, hostname: String, localRank: Int, cpus: [Int], threads: Int) {
            self.rank = rank
            self.hostname = hostname
            self.localRank = localRank
            self.cpus = cpus
            self.threads = threads
        }
    }

    /// Every rank's placement, in rank order.
    public let placements: [Placement]

    public init(placements: [Placement]) {
        self.placements = placements.sorted { $0.rank < $1.rank }
    }

    /// The CPUs the calling thread may run on (its affinity mask), ascending.
    public static func currentAffinity() throws -> [Int] {
        var capacity = 256
        while true {
            var cpus = [Int32](repeating: 0, count: capacity)
            let count = Int(kt_cpu_affinity(&cpus, Int32(capacity)))
            guard count >= 0 else {
                let reason = String(cString: strerror(errno))
                throw KnowTuneError.unsupported(what: "reading the CPU affinity (sched_getaffinity: \(reason))", supported: "Linux")
            }
            if count <= capacity { return cpus.prefix(count).map(Int.init) }
            capacity = count
        }
    }

    /// Compute threads per rank as the environment sets them: `OPENBLAS_NUM_THREADS`, else `OMP_NUM_THREADS`, else 1
    /// when neither is set (the trainer sets one of them before OpenBLAS starts).
    public static func configuredThreads(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for name in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"] {
            if let text = environment[name], let value = Int(text.split(separator: ",").first ?? ""), value > 0 {
                return value
            }
        }
        return 1
    }

    /// Gathers every rank's placement onto every rank (one `allGather`).
    public static func gather(communicator: any Communicator, threads: Int) throws -> NodeTopology {
        let local = Placement(rank: communicator.rank, hostname: communicator.hostname,
                              localRank: communicator.localRank, cpus: try currentAffinity(), threads: threads)
        let encoded: [UInt8]
        do {
            encoded = Array(try JSONEncoder().encode(local))
        } catch {
            throw KnowTuneError.invalidInput("cannot encode this rank's placement: \(error)")
        }
        let gathered = try communicator.allGather(encoded, operation: "node topology")
        var placements: [Placement] = []
        for (rank, bytes) in gathered.enumerated() {
            do {
                placements.append(try JSONDecoder().decode(Placement.self, from: Data(bytes)))
            } catch {
                throw KnowTuneError.invalidInput("rank \(rank) sent an unreadable placement: \(error)")
            }
        }
        return NodeTopology(placements: placements)
    }

    /// Host names in order of their lowest rank.
    public var hosts: [String] {
        var seen = Set<String>()
        return placements.compactMap { seen.insert($0.hostname).inserted ? $0.hostname : nil }
    }

    /// `world_size=2 nodes=1 ranks_per_node=2 threads_per_rank=1 cpus=[0],[1]` (cpus per rank, in rank order).
    public var summary: String {
        let perNode = hosts.map { host in placements.filter { $0.hostname == host }.count }
        let threads = placements.map(\.threads)
        let cpus = placements.map { "[\(Self.ranges($0.cpus))]" }.joined(separator: ",")
        return "world_size=\(placements.count) nodes=\(hosts.count) ranks_per_node=\(Self.uniformOrList(perNode)) "
            + "threads_per_rank=\(Self.uniformOrList(threads)) cpus=\(cpus)"
    }

    /// Placement problems worth a warning: more threads on a node than the CPUs its ranks may use, and a rank
    /// with more threads than CPUs in its own mask (bound to too few cores).
    public var warnings: [String] {
        var warnings: [String] = []
        for host in hosts {
            let ranks = placements.filter { $0.hostname == host }
            let allowed = Set(ranks.flatMap(\.cpus))
            let threads = ranks.reduce(0) { $0 + $1.threads }
            if threads > allowed.count {
                warnings.append("\(host): \(ranks.count) rank(s) × threads = \(threads) threads on \(allowed.count) "
                    + "allowed CPU(s); "
                    + "lower OPENBLAS_NUM_THREADS or launch with `mpirun --bind-to none` (or `--map-by slot:PE=<threads>`)")
            }
            for placement in ranks where placement.threads > placement.cpus.count {
                warnings.append("rank \(placement.rank) (\(host)) runs \(placement.threads) threads but may use only "
                    + "CPU(s) [\(Self.ranges(placement.cpus))]; mpirun binds to core for np <= 2 — use --bind-to none")
            }
        }
        return warnings
    }

    /// "0-3,8,10-11".
    static func ranges(_ cpus: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        let sorted = cpus.sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    private static func uniformOrList(_ values: [Int]) -> String {
        guard let first = values.first else { return "0" }
        return values.allSatisfy { $0 == first } ? "\(first)" : values.map(String.init).joined(separator: ",")
    }
}
