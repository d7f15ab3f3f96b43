// Resume against damaged checkpoints, as `knowtune train` meets them after a crash or a bad disk: the newest
// checkpoint with a flipped byte in state.h5, a truncated state.h5 or a missing adapter file is named and passed
// over, the previous complete one is used and the run ends as the uninterrupted reference; an explicit
// --resume_from_checkpoint that is damaged is an error; an output folder that cannot be created fails before the
// model loads.
import Foundation
import KnowTuneTestSupport
import XCTest

final class ResumeDamageTests: XCTestCase {
    private func copyFolder(_ from: String, to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    func testDamagedNewestCheckpointIsNamedAndThePreviousOneUsed() throws {
        let reference = TrainingFixtures.outputDirectory("damage-reference")
        let first = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: reference))
        XCTAssertEqual(first.status, 0, first.standardError)
        let newest = "checkpoint-10"
        XCTAssertTrue(FileManager.default.fileExists(atPath: reference + "/" + newest), "the reference run saves every 2 of 10 steps")
        let damages: [(name: String, damage: (String) throws -> Void, reason: String)] = [
            ("flipped", { folder in
                let path = folder + "/state.h5"
                var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                bytes[bytes.count / 2] ^= 0x10
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            }, "whole-file checksum"),
            ("truncated", { folder in XCTAssertEqual(truncate(folder + "/state.h5", 100), 0) }, "(truncated or modified); not opened"),
            ("no-adapter", { folder in try FileManager.default.removeItem(atPath: folder + "/adapter_model.safetensors") },
             "missing adapter_model.safetensors"),
        ]
        for case let (name, damage, reason) in damages {
            let output = TrainingFixtures.outputDirectory("damage-\(name)")
            try copyFolder(reference, to: output)
            try damage(output + "/" + newest)
            // The final adapter files are the reference's; remove them so that only the resumed run can write them.
            for file in ["adapter_model.safetensors", "adapter_config.json"] { try FileManager.default.removeItem(atPath: output + "/" + file) }
            let resumed = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--resume_from_checkpoint", "latest"]))
            XCTAssertEqual(resumed.status, 0, "\(name): \(resumed.standardError)")
            XCTAssertTrue(resumed.standardError.contains("resume: skipping \(output)/\(newest): "), "\(name): \(resumed.standardError)")
            XCTAssertTrue(resumed.standardError.contains(reason), "\(name): \(resumed.standardError)")
            XCTAssertTrue(resumed.standardError.contains("resumed from \(output)/checkpoint-8 at step 8"), "\(name): \(resumed.standardError)")
            XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(output)), 0, name)

            // Named explicitly, the damaged checkpoint is an error, not a silent fallback (checked on a fresh copy).
            try copyFolder(reference, to: output)
            try damage(output + "/" + newest)
            let explicit = try KnowTuneRunner.run(
                try TrainingFixtures.trainArguments(output: output, extra: ["--resume_from_checkpoint", output + "/" + newest]), ranks: 2)
            XCTAssertNotEqual(explicit.status, 0, name)
            XCTAssertTrue(explicit.standardError.contains("\(output)/\(newest): cannot resume from this checkpoint: "), explicit.standardError)
            XCTAssertTrue(explicit.standardError.contains(reason), "\(name): \(explicit.standardError)")
        }
    }

    func testOutputFolderThatCannotBeCreatedFailsBeforeTheModelLoads() throws {
        let folder = TrainingFixtures.outputDirectory("not-a-folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let blocker = folder + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let result = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: blocker + "/out"), ranks: 2)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("cannot create the output folder"), result.standardError)
        XCTAssertFalse(result.standardError.contains("node-shared"), "fails before the weights load: \(result.standardError)")
        XCTAssertEqual(result.standardError.components(separatedBy: "cannot create the output folder").count - 1, 1, "one message")
    }
}
