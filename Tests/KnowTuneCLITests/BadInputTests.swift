// Bad input to `knowtune train` under `mpirun -np 2`: one clear error printed once (by rank 0), a non-zero exit,
// no hang, and no existing checkpoint damaged.
import Foundation
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class BadInputTests: XCTestCase {
    private func arguments(_ name: String, _ replacing: [String: String] = [:], extra: [String] = []) throws -> [String] {
        var list = try TrainingFixtures.trainArguments(output: TrainingFixtures.outputDirectory(name), extra: extra)
        for (key, value) in replacing {
            if let index = list.firstIndex(of: key) { list[index + 1] = value }
        }
        return list
    }

    func testUnknownDatasetName() throws {
        try KnowTuneRunner.expectFailure(try arguments("unknown-dataset", ["--dataset": "nope"]), message: "dataset 'nope' is not in")
    }

    func testMissingDataFile() throws {
        try KnowTuneRunner.expectFailure(try arguments("missing-file", ["--dataset": "missing_file"]), message: "data file of dataset 'missing_file' is missing")
    }

    func testMalformedJSON() throws {
        try KnowTuneRunner.expectFailure(try arguments("malformed", ["--dataset": "malformed"]), message: "malformed JSON")
    }

    func testRecordMissingItsColumns() throws {
        try KnowTuneRunner.expectFailure(try arguments("wrong-columns", ["--dataset": "wrong_columns"]), message: "has no 'instruction' column")
    }

    func testUnknownFlagIsAnError() throws {
        try KnowTuneRunner.expectFailure(try arguments("unknown-flag", extra: ["--lora_ranks", "4"]), message: "unknown argument --lora_ranks")
    }

    func testModelPathMissing() throws {
        try KnowTuneRunner.expectFailure(try arguments("no-model", ["--model_name_or_path": "/nonexistent/model"]), message: "no such file or directory")
    }

    func testNaNLossStopsEveryRank() throws {
        // An adapter with one NaN (a corrupt file from elsewhere) makes the first loss NaN.
        let source = TrainingFixtures.outputDirectory("nan-source")
        XCTAssertEqual(try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: source, extra: ["--max_steps", "1"])).status, 0)
        var tensors = try readAdapter(source)
        tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]?[0] = .nan
        let file = try SafeTensorsFile(path: source + "/adapter_model.safetensors")
        let arrays = tensors.map { (name: $0.key, shape: file.tensors[$0.key]?.shape ?? [], values: $0.value) }
        try withExtendedLifetime(arrays) {
            let buffers = arrays.map { entry in
                (name: entry.name, shape: entry.shape, values: entry.values.withUnsafeBufferPointer { UnsafeBufferPointer(start: UnsafeMutablePointer(mutating: $0.baseAddress), count: $0.count) })
            }
            try SafeTensorsWriter.write(buffers, to: source + "/adapter_model.safetensors")
        }
        try KnowTuneRunner.expectFailure(try arguments("nan", extra: ["--adapter_name_or_path", source]), message: "numerical error")
    }

    func testPreviousRunIsNotOverwrittenWithoutPermission() throws {
        let output = TrainingFixtures.outputDirectory("previous-run")
        let first = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--max_steps", "2"]))
        XCTAssertEqual(first.status, 0, first.standardError)
        let before = try Data(contentsOf: URL(fileURLWithPath: output + "/checkpoint-2/state.h5"))
        try KnowTuneRunner.expectFailure(try TrainingFixtures.trainArguments(output: output), message: "already exists and is not empty")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output + "/checkpoint-2/state.h5")), before)
    }

    func testCheckpointMismatchesAndCorruptionAreRefusedWithoutDamage() throws {
        let output = TrainingFixtures.outputDirectory("mismatch")
        let first = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--max_steps", "4"]))
        XCTAssertEqual(first.status, 0, first.standardError)
        let state = output + "/checkpoint-4/state.h5"
        let intact = try Data(contentsOf: URL(fileURLWithPath: state))
        let resume = ["--resume_from_checkpoint", output + "/checkpoint-4"]

        // Another world size, another LoRA configuration, another model.
        try KnowTuneRunner.expectFailure(try TrainingFixtures.trainArguments(output: output, extra: resume), message: "written by 1 rank(s)")
        try KnowTuneRunner.expectFailure(try TrainingFixtures.trainArguments(output: output, extra: resume + ["--lora_rank", "4"]),
                          message: "LoRA of another configuration", ranks: 1)
        var otherModel = try TrainingFixtures.trainArguments(output: output, extra: resume)
        if let index = otherModel.firstIndex(of: "--model_name_or_path") { otherModel[index + 1] = TestPaths.smolLM2 }
        try KnowTuneRunner.expectFailure(otherModel, message: "was written for another model", ranks: 1)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: state)), intact, "refusals leave the checkpoint untouched")

        // A corrupt copy (one flipped byte in the tensor data) and a truncated copy.
        let corrupt = output + "/checkpoint-5"
        try FileManager.default.createDirectory(atPath: corrupt, withIntermediateDirectories: true)
        var bytes = intact
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: corrupt + "/state.h5"))
        try KnowTuneRunner.expectFailure(try TrainingFixtures.trainArguments(output: output, extra: ["--resume_from_checkpoint", corrupt]),
                          message: corrupt, ranks: 1)
        try intact.prefix(intact.count / 3).write(to: URL(fileURLWithPath: corrupt + "/state.h5"))
        try KnowTuneRunner.expectFailure(try TrainingFixtures.trainArguments(output: output, extra: ["--resume_from_checkpoint", corrupt]),
                          message: corrupt, ranks: 1)
        // `latest` skips the damaged folder and resumes from the intact one.
        let resumed = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--resume_from_checkpoint", "latest", "--max_steps", "6"]))
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertTrue(resumed.standardError.contains("checkpoint-4 at step 4"), resumed.standardError)
    }
}
