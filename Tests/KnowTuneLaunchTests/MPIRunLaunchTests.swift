// Tests launch/knowtune-mpirun: the short SFT with `mpirun -np 2` on hostfiles/localhost gives plain mpirun's adapter
// bit for bit, and its choices (threads per rank, binding, oversubscription, the global batch divided over the
// ranks, --allow-run-as-root only for root) as its --dry-run prints them; plus launch/debug-local.sh's log per rank.
import Foundation
import KnowTuneTestSupport
import XCTest

final class MPIRunLaunchTests: XCTestCase {
    func testWrapperWithLocalhostHostfileMatchesPlainMPIRun() throws {
        let output = LaunchFixtures.outputDirectory("wrapper-localhost")
        let result = try Testkit.run(LaunchFixtures.script("knowtune-mpirun"),
                                     ["-H", LaunchFixtures.repositoryRoot + "/hostfiles/localhost", "--global-batch", "8", "--"]
                                         + (try LaunchFixtures.trainArguments(output: output)),
                                     environment: LaunchFixtures.rankEnvironment(), timeout: 90)
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.standardError.contains("knowtune-mpirun: 2 rank(s), at most 2 per node, 1 thread(s) each"),
                      result.standardError)
        XCTAssertTrue(result.standardError.contains("world_size=2 nodes=1 ranks_per_node=2 threads_per_rank=1"), result.standardError)
        XCTAssertTrue(result.standardError.contains("training: 40 examples, 8 validation, global batch 8, 5 steps"), result.standardError)
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            // Bound one core each, so no placement warning (the data's truncation warning is expected).
            XCTAssertTrue(result.standardError.contains("cpus=[0],[1]"), result.standardError)
            let placementWarnings = result.standardError.split(separator: "\n").filter {
                $0.contains("warning: ") && ($0.contains("CPU(s)") || $0.contains("oversubscribes"))
            }
            XCTAssertEqual(placementWarnings, [], result.standardError)
        }
        try assertSameAdapterAsReference(output, "knowtune-mpirun -H hostfiles/localhost")
    }

    /// The command line knowtune-mpirun builds, without running it.
    private func dryRun(_ options: [String], unsetThreads: Bool = true, knowtuneArguments: [String] = ["train", "--stage", "sft"])
        throws -> ProcessResult {
        var command = ["-u", "GLOBAL_BATCH"] + (unsetThreads ? ["-u", "OPENBLAS_NUM_THREADS"] : [])
        command += [LaunchFixtures.script("knowtune-mpirun"), "--dry-run"] + options + ["--"] + knowtuneArguments
        return try Testkit.run("/usr/bin/env", command, environment: ["KNOWTUNE_BIN": try LaunchFixtures.knowtune()], timeout: 20)
    }

    func testWrapperDividesCoresAndBatchAmongRanks() throws {
        let root = getuid() == 0
        // 2 ranks on nodes of 8 cores: 4 threads each, each rank bound to its 4 cores, global batch 16 → 8 per rank.
        let fits = try dryRun(["-n", "2", "--cores-per-node", "8", "--global-batch", "16"])
        XCTAssertEqual(fits.status, 0, fits.output)
        XCTAssertTrue(fits.standardOutput.contains("--map-by slot:PE=4 --bind-to core"), fits.standardOutput)
        XCTAssertTrue(fits.standardOutput.contains("--per_device_train_batch_size 8"), fits.standardOutput)
        XCTAssertTrue(fits.standardOutput.contains("-x OPENBLAS_NUM_THREADS"), fits.standardOutput)
        XCTAssertEqual(fits.standardOutput.contains("--allow-run-as-root"), root, fits.standardOutput)
        XCTAssertFalse(fits.standardOutput.contains("--oversubscribe"), fits.standardOutput)

        // 4 ranks on 2 slots of 2 cores: oversubscribed, unbound, 1 thread each; with 2 accumulation steps 16 → 2.
        let over = try dryRun(["-n", "4", "--cores-per-node", "2", "--global-batch", "16"],
                              knowtuneArguments: ["train", "--gradient_accumulation_steps", "2"])
        XCTAssertEqual(over.status, 0, over.output)
        XCTAssertTrue(over.standardOutput.contains("--oversubscribe --map-by slot --bind-to none"), over.standardOutput)
        XCTAssertTrue(over.standardOutput.contains("--per_device_train_batch_size 2"), over.standardOutput)
        XCTAssertTrue(over.standardError.contains("oversubscribes"), over.standardError)

        // One rank with two threads, unbound (the benchmark's 1 × 2 case).
        let single = try dryRun(["-n", "1", "--threads", "2", "--bind", "none", "--cores-per-node", "2"])
        XCTAssertEqual(single.status, 0, single.output)
        XCTAssertTrue(single.standardOutput.contains("-np 1 "), single.standardOutput)
        XCTAssertTrue(single.standardOutput.contains("--bind-to none"), single.standardOutput)

        // A global batch that does not divide: an error before anything starts.
        let uneven = try dryRun(["-n", "4", "--global-batch", "6"])
        XCTAssertEqual(uneven.status, 2, uneven.output)
        XCTAssertTrue(uneven.standardError.contains("global batch 6 is not divisible by 4 rank(s)"), uneven.standardError)
        let both = try dryRun(["--global-batch", "8"], knowtuneArguments: ["train", "--per_device_train_batch_size", "4"])
        XCTAssertEqual(both.status, 2, both.output)

        // The user's OPENBLAS_NUM_THREADS wins over the division.
        let user = try Testkit.run("/usr/bin/env", ["OPENBLAS_NUM_THREADS=1", LaunchFixtures.script("knowtune-mpirun"), "--dry-run",
                                                    "-n", "2", "--cores-per-node", "8", "--", "train"],
                                   environment: ["KNOWTUNE_BIN": try LaunchFixtures.knowtune()], timeout: 20)
        XCTAssertTrue(user.standardOutput.contains("--map-by slot:PE=1 --bind-to core"), user.output)
    }

    func testDebugLocalWritesOneLogPerRankWithAllRankLogging() throws {
        let output = LaunchFixtures.outputDirectory("debug-local")
        let logs = LaunchFixtures.outputDirectory("debug-local-logs")
        let result = try Testkit.run(LaunchFixtures.script("debug-local.sh"),
                                     ["-n", "2", "--log-dir", logs, "--all-ranks", "--global-batch", "8", "--"]
                                         + (try LaunchFixtures.trainArguments(output: output)),
                                     environment: LaunchFixtures.rankEnvironment(), timeout: 90)
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.status, 0, result.output)
        for rank in 0..<2 {
            let log = try String(contentsOfFile: "\(logs)/rank-\(rank).log", encoding: .utf8)
            XCTAssertTrue(log.contains("[rank \(rank) "), "rank-\(rank).log holds rank \(rank)'s lines:\n\(log)")
            XCTAssertTrue(log.contains("step 5/5"), "all-rank logging: rank \(rank) logs its steps:\n\(log)")
            XCTAssertFalse(log.contains("[rank \(1 - rank) "), "rank-\(rank).log holds only rank \(rank):\n\(log)")
        }
        try assertSameAdapterAsReference(output, "launch/debug-local.sh -n 2")
    }
}
