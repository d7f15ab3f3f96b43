// Tests that a rank killed mid-run (SIGKILL from outside, as the OOM killer does) ends the whole job within seconds
// with a non-zero exit and a message naming the rank (and, from knowtune-mpirun, the step and the checkpoint), and
// that resuming from the last complete checkpoint then gives the adapter of an uninterrupted run: under
// launch/knowtune-mpirun, and under srun in launch/slurm-1node.sbatch (--kill-on-bad-exit=1).
import Foundation
import KnowTuneTestSupport
import XCTest

final class RankDeathTests: XCTestCase {
    /// The brief: the job ends within 30 s of the death.
    let deadline: TimeInterval = 30

    /// 60 steps (12 epochs of 5), a checkpoint every 5: long enough to kill a rank between checkpoints.
    private func arguments(output: String, extra: [String] = []) throws -> [String] {
        try LaunchFixtures.trainArguments(output: output, extra: ["--num_train_epochs", "12", "--save_steps", "5",
                                                                  "--eval_steps", "5", "--logging_steps", "1"] + extra)
    }

    /// Waits for the first complete checkpoint, then SIGKILLs rank `rank` of the run writing to `output`; returns when.
    private func killRank(_ rank: Int, of output: String, while process: () -> Bool) throws -> Date {
        let start = Date()
        while latestCompleteCheckpoint(in: output) == nil, process(), Date().timeIntervalSince(start) < 90 { usleep(10_000) }
        let checkpoint = try XCTUnwrap(latestCompleteCheckpoint(in: output), "no checkpoint appeared")
        let pids = rankProcesses(marker: output, rank: rank)
        XCTAssertEqual(pids.count, 1, "rank \(rank)'s process (after checkpoint-\(checkpoint))")
        let pid = try XCTUnwrap(pids.first)
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        return Date()
    }

    func testKilledRankUnderMPIRunEndsTheJobAndResumes() throws {
        let output = LaunchFixtures.outputDirectory("killed-rank-mpirun")
        let wrapper = LaunchFixtures.script("knowtune-mpirun")
        let environment = LaunchFixtures.rankEnvironment()
        let run = try BackgroundProcess(wrapper, ["--global-batch", "8", "--"] + (try arguments(output: output)),
                                        environment: environment)
        let killedAt = try killRank(1, of: output) { run.process.isRunning }
        let ended = run.wait(timeout: 60)
        let seconds = Date().timeIntervalSince(killedAt)
        XCTAssertFalse(ended.timedOut, "the job hung after rank 1 died:\n\(ended.output)")
        XCTAssertLessThan(seconds, deadline, ended.output)
        XCTAssertNotEqual(ended.status, 0, ended.output)
        XCTAssertTrue(ended.output.contains("process rank 1 with PID"), "mpirun names the rank:\n\(ended.output)")
        XCTAssertTrue(ended.output.range(of: #"knowtune-mpirun: job failed \(exit \d+\): rank 1 on \S+ died of signal 9 \(Killed\) after step \d+ of 60"#,
                                         options: .regularExpression) != nil, ended.output)
        let checkpoint = try XCTUnwrap(latestCompleteCheckpoint(in: output))
        XCTAssertTrue(ended.output.contains("Last complete checkpoint: \(output)/checkpoint-\(checkpoint)"), ended.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/train_results.json"), "killed before the end")
        print("rank 1 killed after checkpoint-\(checkpoint): job ended \(String(format: "%.1f", seconds)) s later")

        let resumed = try Testkit.run(wrapper, ["--global-batch", "8", "--"]
                                          + (try arguments(output: output, extra: ["--resume_from_checkpoint", "latest"])),
                                      environment: environment, timeout: 120)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.standardError.contains("resumed from \(output)/checkpoint-\(checkpoint)"), resumed.standardError)

        let reference = LaunchFixtures.outputDirectory("killed-rank-reference")
        let uninterrupted = try Testkit.run(wrapper, ["--global-batch", "8", "--"] + (try arguments(output: reference)),
                                            environment: environment, timeout: 120)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.output)
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(output)), 0,
                       "killed, resumed: the same adapter as an uninterrupted run")
    }

    func testKilledRankUnderSrunEndsTheJob() throws {
        try LaunchLab.startSlurm()
        let output = LaunchFixtures.outputDirectory("killed-rank-srun")
        let outputFile = LaunchFixtures.root + "/slurm-killed-rank.out"
        try? FileManager.default.removeItem(atPath: outputFile)
        let environment = try LaunchFixtures.slurmJobEnvironment(launcher: "srun")
        let id = try LaunchLab.submit(LaunchFixtures.script("slurm-1node.sbatch"),
                                      sbatchOptions: ["--job-name", "kt-test-kill", "--output", outputFile, "--time", "5"],
                                      arguments: try arguments(output: output), environment: environment)
        let killedAt = try killRank(1, of: output) { (try? LaunchLab.jobState(id).state) ?? "" != "COMPLETED" }
        let job = try LaunchLab.wait(forJob: id, outputFile: outputFile, timeout: 60)
        let seconds = Date().timeIntervalSince(killedAt)
        XCTAssertLessThan(seconds, deadline, job.output)
        XCTAssertEqual(job.state, "FAILED", job.output)
        XCTAssertNotEqual(job.exitCode, "0:0", job.output)
        XCTAssertTrue(job.output.contains("task 1: Killed"), "srun names the task (= rank):\n\(job.output)")
        print("srun: rank 1 killed; job \(job.state) \(String(format: "%.1f", seconds)) s later")
    }
}
