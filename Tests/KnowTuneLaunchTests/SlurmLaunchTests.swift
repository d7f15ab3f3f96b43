// Tests launch/slurm-1node.sbatch on the lab's real single-node Slurm: the short SFT with 2 tasks via
// `srun --mpi=pmix`, and again with mpirun inside the allocation, each giving plain `mpirun -np 2`'s adapter bit for
// bit; a resubmission resumes from the checkpoint; SIGUSR1 to the batch shell (what `--signal=B:USR1@120` sends
// before the time limit) ends the job with a checkpoint. Starts Slurm if needed and stops it if it started it.
import Foundation
import KnowTuneTestSupport
import XCTest

final class SlurmLaunchTests: XCTestCase {
    override func setUpWithError() throws {
        try LaunchLab.startSlurm()
    }

    override class func tearDown() {
        LaunchLab.stopSlurmIfStartedHere()
        super.tearDown()
    }

    /// Submits the template with knowtune's arguments and waits for the job.
    private func runJob(_ name: String, launcher: String, arguments: [String], extraEnvironment: [String: String] = [:],
                        timeout: TimeInterval = 120) throws -> LaunchLab.Job {
        let outputFile = LaunchFixtures.root + "/slurm-\(name).out"
        try? FileManager.default.removeItem(atPath: outputFile)
        var environment = try LaunchFixtures.slurmJobEnvironment(launcher: launcher)
        environment.merge(extraEnvironment) { _, new in new }
        let id = try LaunchLab.submit(LaunchFixtures.script("slurm-1node.sbatch"),
                                      sbatchOptions: ["--job-name", "kt-test-\(name)", "--output", outputFile, "--time", "5"],
                                      arguments: arguments, environment: environment)
        return try LaunchLab.wait(forJob: id, outputFile: outputFile, timeout: timeout)
    }

    func testSrunWithPMIxMatchesPlainMPIRun() throws {
        let output = LaunchFixtures.outputDirectory("slurm-srun")
        let job = try runJob("srun", launcher: "srun", arguments: try LaunchFixtures.trainArguments(output: output))
        XCTAssertEqual(job.state, "COMPLETED", job.output)
        XCTAssertEqual(job.exitCode, "0:0", job.output)
        XCTAssertTrue(job.output.contains("2 task(s) × 1 thread(s) via srun"), job.output)
        XCTAssertTrue(job.output.contains("world_size=2 nodes=1 ranks_per_node=2 threads_per_rank=1"), job.output)
        XCTAssertTrue(job.output.contains("global batch 8, 5 steps"), job.output)
        try assertSameAdapterAsReference(output, "sbatch launch/slurm-1node.sbatch (srun --mpi=pmix)")
    }

    func testMPIRunInsideSbatchMatchesPlainMPIRun() throws {
        let output = LaunchFixtures.outputDirectory("slurm-mpirun")
        let job = try runJob("mpirun", launcher: "mpirun", arguments: try LaunchFixtures.trainArguments(output: output))
        XCTAssertEqual(job.state, "COMPLETED", job.output)
        XCTAssertTrue(job.output.contains("via mpirun"), job.output)
        XCTAssertTrue(job.output.contains("knowtune-mpirun: 2 rank(s), at most 2 per node, 1 thread(s) each"), job.output)
        XCTAssertTrue(job.output.contains("world_size=2 nodes=1 ranks_per_node=2 threads_per_rank=1"), job.output)
        try assertSameAdapterAsReference(output, "sbatch launch/slurm-1node.sbatch (mpirun inside sbatch)")
    }

    /// SIGUSR1 to the batch shell, as `#SBATCH --signal=B:USR1@120` sends it before the time limit: every rank
    /// checkpoints and exits 0; submitting the same command again resumes and ends with the uninterrupted adapter.
    func testTimeLimitSignalCheckpointsAndResubmissionResumes() throws {
        let output = LaunchFixtures.outputDirectory("slurm-signal")
        // Long enough to be signalled mid-run: 12 epochs of 5 steps, a checkpoint every 5 steps.
        let arguments = try LaunchFixtures.trainArguments(
            output: output, extra: ["--num_train_epochs", "12", "--save_steps", "5", "--eval_steps", "5", "--logging_steps", "5"])
        let outputFile = LaunchFixtures.root + "/slurm-signal.out"
        try? FileManager.default.removeItem(atPath: outputFile)
        let environment = try LaunchFixtures.slurmJobEnvironment(launcher: "srun")
        let id = try LaunchLab.submit(LaunchFixtures.script("slurm-1node.sbatch"),
                                      sbatchOptions: ["--job-name", "kt-test-signal", "--output", outputFile, "--time", "5"],
                                      arguments: arguments, environment: environment)
        // Signal once the first checkpoint is complete.
        let start = Date()
        while latestCompleteCheckpoint(in: output) == nil, Date().timeIntervalSince(start) < 60 { usleep(20_000) }
        XCTAssertNotNil(latestCompleteCheckpoint(in: output), "no checkpoint within 60 s")
        try LaunchLab.shell("scancel --batch --signal=USR1 \(id)", "scancel --batch --signal=USR1")
        let job = try LaunchLab.wait(forJob: id, outputFile: outputFile)
        XCTAssertEqual(job.state, "COMPLETED", job.output)
        XCTAssertTrue(job.output.contains("stopped before the time limit with a checkpoint"), job.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/train_results.json"), "the run must have stopped early")
        let stoppedAt = try XCTUnwrap(latestCompleteCheckpoint(in: output))
        XCTAssertLessThan(stoppedAt, 60)

        let again = try runJob("signal-resubmitted", launcher: "srun", arguments: arguments)
        XCTAssertEqual(again.state, "COMPLETED", again.output)
        XCTAssertTrue(again.output.contains("resuming (--resume_from_checkpoint latest)"), again.output)
        XCTAssertTrue(again.output.contains("resumed from \(output)/checkpoint-\(stoppedAt)"), again.output)

        let reference = LaunchFixtures.outputDirectory("slurm-signal-reference")
        let plain = try LaunchFixtures.plainMPIRun(ranks: 2, try LaunchFixtures.trainArguments(
            output: reference, perRankBatch: 4,
            extra: ["--num_train_epochs", "12", "--save_steps", "5", "--eval_steps", "5", "--logging_steps", "5"]))
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(output)), 0,
                       "stopped by the time-limit signal and resubmitted: the same adapter as an uninterrupted run")
    }
}
