// Implements the inputs and checks of the launch tests: the shared tiny model and dolly set in this target's folder,
// the arguments of the short SFT every launcher runs, the environment of a Slurm job, and the reference adapter of
// plain `mpirun -np 2`; does not start launchers (LaunchLab and the tests do).
import Foundation
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

enum LaunchFixtures {
    /// Every file the ranks read or write lives here: one machine, one file system, whichever launcher or namespace.
    static let root = TestPaths.scratchFolder("launch-tests")

    private static let lock = NSLock()
    private static var cachedData: String?
    private static var cachedReference: Result<String, Error>?

    static var repositoryRoot: String { TestPaths.repositoryRoot.path }

    static func script(_ name: String) -> String { repositoryRoot + "/launch/" + name }

    static func knowtune() throws -> String { try Testkit.executable(named: "knowtune") }

    static func tinyModel() throws -> String { try TinyGGUFModel.path(in: root + "/tiny-model") }

    /// A dataset folder with `tiny_train`: 48 dolly records, outputs cut to 160 characters.
    static func dataDirectory() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let cachedData { return cachedData }
        let folder = root + "/data"
        try TinyDataset.write(in: folder)
        try JSONSerialization.data(withJSONObject: ["tiny_train": TinyDataset.registryEntry])
            .write(to: URL(fileURLWithPath: folder + "/dataset_info.json"))
        cachedData = folder
        return folder
    }

    /// A fresh, empty output folder path.
    static func outputDirectory(_ name: String) -> String { TestPaths.freshOutputFolder(name, in: root) }

    /// The short SFT every launcher runs: 40 training records, global batch 8 (2 ranks × 4), 5 steps, evaluation and a
    /// checkpoint every 2 steps. Without a per-rank batch: launch scripts take the global one (`--global-batch 8`,
    /// `GLOBAL_BATCH=8`); plain mpirun runs add `perRankBatch`.
    static func trainArguments(output: String, perRankBatch: Int? = nil, extra: [String] = []) throws -> [String] {
        var arguments = [
            "train", "--stage", "sft", "--model_name_or_path", try tinyModel(), "--do_train", "--dataset", "tiny_train",
            "--dataset_dir", try dataDirectory(), "--template", "alpaca", "--finetuning_type", "lora",
            "--lora_target", "q_proj,v_proj", "--lr_scheduler_type", "cosine", "--learning_rate", "5e-3",
            "--num_train_epochs", "1.0", "--val_size", "8", "--cutoff_len", "96", "--evaluation_strategy", "steps",
            "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1", "--load_best_model_at_end", "--seed", "7",
            "--output_dir", output,
        ]
        if let perRankBatch { arguments += ["--per_device_train_batch_size", String(perRankBatch)] }
        return arguments + extra
    }

    /// The environment every launcher gets: one OpenBLAS thread per rank, so that every launcher computes the same
    /// sums, and the BLAS/KnowTune variables already set (forwarded explicitly where hosts start with a bare environment).
    static func rankEnvironment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            key.hasPrefix("OPENBLAS_") || key.hasPrefix("KNOWTUNE_") || key.hasPrefix("OMP_")
        }
        environment["OPENBLAS_NUM_THREADS"] = "1"
        return environment
    }

    /// What a launch/slurm-*.sbatch job of the tests gets: the rank environment, this checkout and build, the
    /// launcher (srun or mpirun) and a global batch of 8.
    static func slurmJobEnvironment(launcher: String) throws -> [String: String] {
        var environment = rankEnvironment()
        environment["KNOWTUNE_ROOT"] = repositoryRoot
        environment["KNOWTUNE_BIN"] = try knowtune()
        environment["KNOWTUNE_LAUNCHER"] = launcher
        environment["GLOBAL_BATCH"] = "8"
        return environment
    }

    /// `mpirun` with only what running as root needs.
    static func plainMPIRun(ranks: Int, _ arguments: [String], timeout: TimeInterval = 90) throws -> ProcessResult {
        var launcher = ["-np", String(ranks)]
        if getuid() == 0 { launcher.append("--allow-run-as-root") }
        let environment = rankEnvironment()
        for name in environment.keys.sorted() { launcher += ["-x", name] }
        return try Testkit.run(try Testkit.mpirun(), launcher + [try knowtune()] + arguments, environment: environment,
                               timeout: timeout)
    }

    /// The adapter of the short SFT under plain `mpirun -np 2` (computed once per test process): every launcher
    /// must reproduce it exactly (same rank count, same thread count, so the same sums in the same order).
    static func referenceAdapter() throws -> String {
        lock.lock()
        let cached = cachedReference
        lock.unlock()
        if let cached { return try cached.get() }
        let result = Result<String, Error> {
            let output = outputDirectory("reference-plain-mpirun")
            let run = try plainMPIRun(ranks: 2, try trainArguments(output: output, perRankBatch: 4))
            guard run.status == 0, !run.timedOut else {
                throw LaunchLab.LabError(description: "the reference run (plain mpirun -np 2) failed: \(run.output)")
            }
            return output
        }
        lock.lock()
        cachedReference = result
        lock.unlock()
        return try result.get()
    }
}

/// Fails unless the adapter in `folder` equals the plain-mpirun reference bit for bit.
func assertSameAdapterAsReference(_ folder: String, _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let difference = maxAbsoluteDifference(try readAdapter(try LaunchFixtures.referenceAdapter()), try readAdapter(folder))
    XCTAssertEqual(difference, 0, "\(context): the adapter differs from plain `mpirun -np 2` by up to \(difference)",
                   file: file, line: line)
}
