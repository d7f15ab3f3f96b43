// Implements the tests of the placement report: this process's affinity, the summary line and the
// oversubscription warnings; does not bind anything.
import KnowTuneDistributed
import XCTest

final class NodeTopologyTests: XCTestCase {
    func testCurrentAffinityIsTheProcessMask() throws {
        let cpus = try NodeTopology.currentAffinity()
        XCTAssertFalse(cpus.isEmpty)
        XCTAssertEqual(cpus, cpus.sorted())
        XCTAssertLessThanOrEqual(cpus.count, ProcessInfo.processInfo.processorCount)
    }

    func testSummaryLine() {
        let topology = NodeTopology(placements: [
            .init(rank: 1, hostname: "n0", localRank: 1, cpus: [1], threads: 1),
            .init(rank: 0, hostname: "n0", localRank: 0, cpus: [0], threads: 1),
        ])
        XCTAssertEqual(topology.summary, "world_size=2 nodes=1 ranks_per_node=2 threads_per_rank=1 cpus=[0],[1]")
        XCTAssertEqual(topology.warnings, [])
        let mixed = NodeTopology(placements: [
            .init(rank: 0, hostname: "a", localRank: 0, cpus: [0, 1, 2, 3, 8], threads: 4),
            .init(rank: 1, hostname: "a", localRank: 1, cpus: [4, 5, 6, 7], threads: 4),
            .init(rank: 2, hostname: "b", localRank: 0, cpus: [0, 1], threads: 2),
        ])
        XCTAssertEqual(mixed.summary, "world_size=3 nodes=2 ranks_per_node=2,1 threads_per_rank=4,4,2 cpus=[0-3,8],[4-7],[0-1]")
    }

    func testWarnsAboutOversubscription() {
        // Open MPI's default for np <= 2: each rank bound to one core, but 4 BLAS threads each.
        let topology = NodeTopology(placements: [
            .init(rank: 0, hostname: "n0", localRank: 0, cpus: [0], threads: 4),
            .init(rank: 1, hostname: "n0", localRank: 1, cpus: [1], threads: 4),
        ])
        XCTAssertEqual(topology.warnings.count, 3, "\(topology.warnings)")
        XCTAssertTrue(topology.warnings[0].hasPrefix("n0: 2 rank(s) × threads = 8 threads on 2 allowed CPU(s)"))
        XCTAssertTrue(topology.warnings[1].hasPrefix("rank 0 (n0) runs 4 threads but may use only CPU(s) [0]"))
    }

    func testConfiguredThreads() {
        XCTAssertEqual(NodeTopology.configuredThreads([:]), 1)
        XCTAssertEqual(NodeTopology.configuredThreads(["OMP_NUM_THREADS": "6"]), 6)
        XCTAssertEqual(NodeTopology.configuredThreads(["OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "6"]), 2)
    }
}
