// Implements the locations tests read and write: the repository, the golden fixtures, the fetched model, and per-process
// scratch folders; does not download.
import Foundation
import XCTest

public enum TestPaths {
    /// The package root (two levels above this file's folder).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// HF transformers + PEFT reference values for SmolLM2 (`Tests/Fixtures/golden`, made by its make_golden.py).
    public static let golden: URL = repositoryRoot.appendingPathComponent("Tests/Fixtures/golden")
    /// Fuzz corpora: per target, the committed seeds (`seed-*`, made by `knowtune-fuzz seeds`) and every input a fuzz
    /// run found crashing (`crash-*`), replayed by KnowTuneFuzzingTests.
    public static let fuzzCorpora: URL = repositoryRoot.appendingPathComponent("Tests/Fixtures/fuzz")

    /// The SmolLM2 GGUF that `launch/fetch-model.sh` puts in `models/smollm2/`, or `KNOWTUNE_MODEL`.
    public static var smolLM2: String {
        if let override = ProcessInfo.processInfo.environment["KNOWTUNE_MODEL"] { return override }
        return repositoryRoot.appendingPathComponent("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }

    /// `$TMPDIR/knowtune-<label>-<pid>`, created: one test process's files, apart from other processes'.
    public static func scratchFolder(_ label: String) -> String {
        let path = NSTemporaryDirectory() + "knowtune-\(label)-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// `folder/out-<name>`, emptied: where one run writes its output.
    public static func freshOutputFolder(_ name: String, in folder: String) -> String {
        let path = folder + "/out-\(name)"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    public struct MissingFixture: Error, CustomStringConvertible {
        public let description: String
    }

    /// Throws (a failure, never a skip: a missing fixture in CI must be red) when a required file is absent.
    public static func require(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingFixture(description: "required file missing: \(path) (run launch/fetch-model.sh for the model; fixtures are part of the repository)")
        }
        return path
    }

    public static func goldenJSON(_ name: String) throws -> [String: Any] {
        let path = try require(golden.appendingPathComponent(name).path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NumpyArchive.ArchiveError(description: "\(name) is not a JSON object")
        }
        return object
    }
}
