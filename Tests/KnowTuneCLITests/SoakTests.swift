// The fault-injection soak, each trial under `mpirun -np 2` on the tiny model with a checkpoint every 2 of 15 steps,
// against an uninterrupted reference run:
// - a random rank SIGKILLed at a random moment (every third trial inside a checkpoint write, by the writer's own fault
//   points), then resubmitted as a user would (resume latest, or afresh when no checkpoint was published): every
//   trial ends with the reference adapter bit for bit, and the steps lost per kill are at most one save interval;
// - the output folder on a small tmpfs that fills up: the failing save names the path, the previous checkpoint stays
//   complete, and every rank exits non-zero;
// - one rank stopped with SIGSTOP: the job ends within --collective_timeout + 10 s, naming rank, step and collective.
// KNOWTUNE_SOAK_TRIALS sets the kill trials (launch/soak.sh runs ≥ 50 by hand; the suite runs 3); each case appends
// its figures to out/soak/soak.json.
import Foundation
import KnowTuneTestSupport
import XCTest

final class SoakTests: XCTestCase {
    let saveInterval = 2
    let totalSteps = 15

    private func arguments(_ output: String, _ extra: [String] = []) throws -> [String] {
        try TrainingFixtures.trainArguments(output: output, extra: ["--num_train_epochs", "3", "--save_steps", "\(saveInterval)",
                                                                    "--eval_steps", "\(saveInterval)"] + extra)
    }

    private func mpirun(_ arguments: [String], environment: [String: String] = [:]) throws -> BackgroundProcess {
        var launcher = ["-np", "2", "--oversubscribe", "--bind-to", "none"]
        if getuid() == 0 { launcher.append("--allow-run-as-root") }
        let environment = ["OPENBLAS_NUM_THREADS": "1", "KNOWTUNE_CACHE": TrainingFixtures.root + "/cache"].merging(environment) { _, new in new }
        for name in environment.keys.sorted() { launcher += ["-x", name] }
        return try BackgroundProcess(try Testkit.mpirun(), launcher + [try Testkit.executable(named: "knowtune")] + arguments,
                                     environment: environment)
    }

    /// The steps trainer_log.jsonl has logged (every step: logging_steps 1).
    private func lastLoggedStep(_ output: String) -> Int {
        let text = (try? String(contentsOfFile: output + "/trainer_log.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["current_steps"] as? Int
        }.max() ?? 0
    }

    private func record(_ name: String, _ figures: [String: Any]) throws {
        let folder = TestPaths.repositoryRoot.appendingPathComponent("out/soak").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/soak.json"
        var all = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) as? [String: Any] ?? [:]
        all[name] = figures
        try JSONSerialization.data(withJSONObject: all, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
        print("soak \(name): \(figures)")
    }

    func testKilledRankAtRandomMomentsResumesToTheReferenceAdapter() throws {
        let trials = Int(ProcessInfo.processInfo.environment["KNOWTUNE_SOAK_TRIALS"] ?? "") ?? 3
        let reference = TrainingFixtures.outputDirectory("soak-reference")
        let started = Date()
        let uninterrupted = try mpirun(try arguments(reference)).wait(timeout: 300)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.output)
        let runSeconds = Date().timeIntervalSince(started)
        let referenceAdapter = try readAdapter(reference)
        var random = SystemRandomNumberGenerator()
        var survived = 0, kills = 0, maximumLost = 0, lostSteps: [Int] = [], exitSeconds: [Double] = []
        for trial in 0..<trials {
            let output = TrainingFixtures.outputDirectory("soak-\(trial)")
            var environment: [String: String] = [:]
            let insideWrite = trial % 3 == 2
            if insideWrite {
                // The writer (rank 0) dies inside one of the checkpoint's files, at a random save.
                environment["KNOWTUNE_FAULT_CHECKPOINT_WRITE"] = ["kill", "after-adapter", "after-state", "after-trainer-state"].randomElement(using: &random)
                environment["KNOWTUNE_FAULT_CHECKPOINT_AT_STEP"] = "\(saveInterval * Int.random(in: 1...(totalSteps / saveInterval), using: &random))"
            }
            let run = try mpirun(try arguments(output), environment: environment)
            var killedAt: Date?
            if !insideWrite {
                usleep(UInt32(Double.random(in: 0.1...(0.95 * runSeconds), using: &random) * 1e6))
                let rank = Int.random(in: 0...1, using: &random)
                if let pid = rankProcesses(marker: output, rank: rank).first, kill(pid, SIGKILL) == 0 { killedAt = Date() }
            }
            let ended = run.wait(timeout: 300)
            XCTAssertFalse(ended.timedOut, "trial \(trial) hung:\n\(ended.output)")
            let finishedUnharmed = ended.status == 0 && killedAt == nil
            if !finishedUnharmed {
                kills += 1
                XCTAssertNotEqual(ended.status, 0, "trial \(trial): a killed job exits non-zero")
                exitSeconds.append(Date().timeIntervalSince(killedAt ?? Date()))
            }
            // Resubmit as a user would, until the run completes.
            let reached = lastLoggedStep(output)
            var attempts = 0
            while !FileManager.default.fileExists(atPath: output + "/train_results.json"), attempts < 3 {
                attempts += 1
                let resumeFrom = latestCompleteCheckpoint(in: output)
                let extra = resumeFrom != nil ? ["--resume_from_checkpoint", "latest"] : ["--overwrite_output_dir"]
                let again = try mpirun(try arguments(output, extra)).wait(timeout: 300)
                XCTAssertEqual(again.status, 0, "trial \(trial) resubmission:\n\(again.output)")
                let lost = max(0, reached - (resumeFrom ?? 0))
                lostSteps.append(lost)
                maximumLost = max(maximumLost, lost)
            }
            let difference = maxAbsoluteDifference(referenceAdapter, try readAdapter(output))
            XCTAssertEqual(difference, 0, "trial \(trial): the resumed adapter is the reference's")
            if difference == 0 { survived += 1 }
        }
        XCTAssertLessThanOrEqual(maximumLost, saveInterval, "work lost per kill: at most one save interval")
        try record("kill", ["trials": trials, "kills": kills, "survived": survived, "steps_lost": lostSteps,
                            "max_steps_lost": maximumLost, "save_interval": saveInterval,
                            "max_seconds_to_exit": exitSeconds.max() ?? 0, "reference_run_seconds": runSeconds])
    }

    func testFullDiskFailsTheSaveAndKeepsThePreviousCheckpoint() throws {
        let mount = TrainingFixtures.outputDirectory("soak-tmpfs")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try Testkit.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount], timeout: 20)
        XCTAssertEqual(mounted.status, 0, "a tmpfs for the full-disk case (the suite runs as root): \(mounted.output)")
        guard mounted.status == 0 else { return }
        defer { _ = try? Testkit.run("/bin/umount", ["-l", mount], timeout: 20) }
        let output = mount + "/run"
        // Two checkpoints fit, then a filler leaves too little room for the next one.
        let first = try mpirun(try arguments(output, ["--max_steps", "4"])).wait(timeout: 300)
        XCTAssertEqual(first.status, 0, first.output)
        let free = try XCTUnwrap(try FileManager.default.attributesOfFileSystem(forPath: mount)[.systemFreeSize] as? Int)
        let checkpointBytes = try FileManager.default.contentsOfDirectory(atPath: output + "/checkpoint-4").reduce(0) { sum, name in
            sum + ((try FileManager.default.attributesOfItem(atPath: output + "/checkpoint-4/" + name)[.size] as? Int) ?? 0)
        }
        try Data(count: max(0, free - checkpointBytes / 2)).write(to: URL(fileURLWithPath: mount + "/filler"))
        let started = Date()
        let full = try mpirun(try arguments(output, ["--resume_from_checkpoint", "latest"])).wait(timeout: 300)
        let seconds = Date().timeIntervalSince(started)
        XCTAssertFalse(full.timedOut, full.output)
        XCTAssertNotEqual(full.status, 0, "a failed save ends the job:\n\(full.output)")
        XCTAssertTrue(full.output.contains(output), "the error names the path:\n\(full.output)")
        XCTAssertTrue(full.output.contains("No space left on device") || full.output.contains("cannot write"), full.output)
        XCTAssertEqual(latestCompleteCheckpoint(in: output), 4)
        try? FileManager.default.removeItem(atPath: mount + "/filler")
        let resumed = try mpirun(try arguments(output, ["--resume_from_checkpoint", "latest"])).wait(timeout: 300)
        XCTAssertEqual(resumed.status, 0, "the previous checkpoint still resumes:\n\(resumed.output)")
        XCTAssertTrue(resumed.output.contains("resumed from \(output)/checkpoint-4 at step 4"), resumed.output)
        try record("full_disk", ["exit_status": full.status, "seconds_to_exit": seconds, "previous_checkpoint_resumed": resumed.status == 0])
    }

    func testStoppedRankEndsTheJobWithinTheCollectiveTimeout() throws {
        let output = TrainingFixtures.outputDirectory("soak-sigstop")
        let timeout = 8.0
        let run = try mpirun(try arguments(output, ["--collective_timeout", "\(Int(timeout))"]))
        let start = Date()
        var stopped: pid_t?
        while stopped == nil, Date().timeIntervalSince(start) < 120, run.process.isRunning {
            if latestCompleteCheckpoint(in: output) != nil, let pid = rankProcesses(marker: output, rank: 1).first {
                XCTAssertEqual(kill(pid, SIGSTOP), 0)
                stopped = pid
            }
            usleep(20_000)
        }
        let stoppedAt = Date()
        let ended = run.wait(timeout: timeout + 60)
        let seconds = Date().timeIntervalSince(stoppedAt)
        if let stopped { kill(stopped, SIGKILL) }
        XCTAssertNotNil(stopped, "rank 1 was stopped after the first checkpoint")
        XCTAssertFalse(ended.timedOut, ended.output)
        XCTAssertNotEqual(ended.status, 0)
        XCTAssertLessThan(seconds, timeout + 10, ended.output)
        XCTAssertTrue(ended.output.range(of: #"\[rank 0 \S+\] error: collective '[^']+' \([^)]*\) at step \d+ did not complete"#,
                                         options: .regularExpression) != nil,
                      "the watchdog names rank, step and collective:\n\(ended.output)")
        try record("sigstop", ["collective_timeout": timeout, "seconds_to_exit": seconds])
    }
}
