// Implements the real multi-rank tests: `mpirun -np 2` on `knowtune-testkit mpi-selftest` for collectives, failure
// agreement, a local failure, the collective-mismatch check and the watchdog, plus the same selftest without
// mpirun (one rank, no MPI); does not skip when mpirun is missing (it fails).
import KnowTuneTestSupport
import XCTest

final class MPIJobTests: XCTestCase {
    /// Failure scenarios must end the whole job this fast (the brief: "within seconds", no hang).
    let failureDeadline: TimeInterval = 10

    func testCollectivesOnTwoRanks() throws {
        let result = try Testkit.runUnderMPI(ranks: 2, ["mpi-selftest", "collectives"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.occurrences(of: "selftest-ok collectives world_size=2"), 1, result.output)
        XCTAssertTrue(result.output.contains("topology: world_size=2 nodes=1 ranks_per_node=2 threads_per_rank="), result.output)
        XCTAssertLessThan(result.seconds, failureDeadline)
    }

    func testCollectivesOnTwoRanksWithMismatchCheckOn() throws {
        let result = try Testkit.runUnderMPI(ranks: 2, ["mpi-selftest", "collectives"],
                                             environment: ["KNOWTUNE_CHECK_COLLECTIVES": "1"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.occurrences(of: "selftest-ok collectives world_size=2"), 1, result.output)
    }

    /// Without mpirun the same executable is a one-rank job and never initialises MPI.
    func testCollectivesWithoutMPIRunAreOneRank() throws {
        let result = try Testkit.run(try Testkit.executable(), ["mpi-selftest", "collectives"], timeout: 10)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.occurrences(of: "selftest-ok collectives world_size=1"), 1, result.output)
    }

    /// Rank 1 fails validation: one message, from rank 0, naming rank 1; every rank exits 1; no hang.
    func testFailureOnOneRankIsReportedOnceAndEndsEveryRank() throws {
        let result = try Testkit.runUnderMPI(ranks: 2, ["mpi-selftest", "consensus"], timeout: 20)
        XCTAssertFalse(result.timedOut, "job hung: \(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(result.seconds, failureDeadline, result.output)
        let message = "selftest: record 7 of train.jsonl has no \"output\" field"
        XCTAssertEqual(result.occurrences(of: message), 1, result.output)
        XCTAssertTrue(result.standardError.contains("error: rank 1 ("), result.output)
        XCTAssertFalse(result.standardError.contains("[rank 1"), "rank 1 must stay silent: \(result.output)")
        XCTAssertEqual(result.occurrences(of: "selftest: rank 0 exiting with status 1"), 1, result.output)
        XCTAssertEqual(result.occurrences(of: "selftest: rank 1 exiting with status 1"), 1, result.output)
        XCTAssertFalse(result.output.contains("consensus did not fail"), result.output)
    }

    /// A failure only one rank knows about aborts the job instead of leaving the others in a barrier.
    func testLocalFailureAbortsTheJob() throws {
        let result = try Testkit.runUnderMPI(ranks: 2, ["mpi-selftest", "local-error"], timeout: 20)
        XCTAssertFalse(result.timedOut, "job hung: \(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(result.seconds, failureDeadline, result.output)
        XCTAssertTrue(result.output.contains("] error: invalid input: selftest: local failure on the last rank"), result.output)
        XCTAssertTrue(result.output.contains("[rank 1 "), result.output)
        XCTAssertFalse(result.output.contains("barrier returned"), result.output)
    }

    /// With KNOWTUNE_CHECK_COLLECTIVES=1, allReduceSum on rank 0 against barrier on rank 1 is an error, not a hang.
    func testMismatchedCollectivesAreReported() throws {
        let result = try Testkit.runUnderMPI(ranks: 2, ["mpi-selftest", "mismatch"],
                                             environment: ["KNOWTUNE_CHECK_COLLECTIVES": "1", "KNOWTUNE_COLLECTIVE_TIMEOUT": "8"],
                                             timeout: 20)
        XCTAssertFalse(result.timedOut, "job hung: \(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(result.seconds, failureDeadline, result.output)
        let expected = "collective mismatch: rank 0 calls 'gradients' (allReduceSum of 4 doubles) at step 3 but "
            + "rank 1 calls 'eval-sync' (barrier) at step 3"
        XCTAssertEqual(result.occurrences(of: expected), 1, result.output)
        XCTAssertFalse(result.output.contains("did not complete within"), "the check, not the watchdog, must catch it: \(result.output)")
        XCTAssertFalse(result.output.contains("mismatched collectives completed"), result.output)
    }

    /// A collective that never completes is reported with rank, step and operation, and the job ends.
    func testWatchdogEndsAStuckCollective() throws {
        let result = try Testkit.runUnderMPI(ranks: 2, ["mpi-selftest", "watchdog"],
                                             environment: ["KNOWTUNE_COLLECTIVE_TIMEOUT": "2"], timeout: 20)
        XCTAssertFalse(result.timedOut, "job hung: \(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(result.seconds, failureDeadline, result.output)
        XCTAssertTrue(result.output.contains("[rank 0 "), result.output)
        XCTAssertTrue(result.output.contains("error: collective 'stuck-barrier' (barrier) at step 7 did not complete within 2.0 s"),
                      result.output)
        XCTAssertFalse(result.output.contains("watchdog did not fire"), result.output)
    }
}
