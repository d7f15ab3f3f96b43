// Tests `knowtune build-ka` / `build-kc` end to end: the same output files on 1 rank and under
// `mpirun -np 2`, the summary on stdout, bad input counted with exit 0, and clear errors for unusable settings.
import Foundation
import KnowTuneTestSupport
import XCTest

final class BuildCommandTests: XCTestCase {
    func summary(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        let last = try XCTUnwrap(result.standardOutput.split(separator: "\n").last, result.output, file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], file: file, line: line)
    }

    func testKAOnOneAndTwoRanksWritesTheSameFile() throws {
        let model = try KnowledgeFixtures.tinyModel()
        var outputs: [Data] = []
        for ranks in [1, 2] {
            let folder = try KnowledgeFixtures.dataDirectory("cli-ka-\(ranks)", rows: KnowledgeFixtures.records + KnowledgeFixtures.badRecords)
            let result = try KnowTuneRunner.run(["build-ka", "--dataset", "toy_train", "--dataset_dir", folder, "--model_name_or_path", model,
                                              "--teacher", "rules", "--records_per_round", "1"], ranks: ranks)
            let counts = try summary(result)
            XCTAssertEqual(counts["name"] as? String, "toy_train_KA")
            XCTAssertEqual(counts["records"] as? Int, 11)
            XCTAssertEqual(counts["new_pairs"] as? Int, 9)
            XCTAssertEqual(counts["output_records"] as? Int, 20)
            XCTAssertEqual(counts["skipped"] as? [String: Int], ["record.no_facts": 2])
            XCTAssertTrue(result.standardError.contains("build-ka [########################] 11/11 records (100%)"), result.standardError)
            let output = folder + "/qa/toy_train_KA.json"
            let records = try KnowledgeFixtures.jsonArray(output)
            XCTAssertEqual(records.count, 20)
            XCTAssertEqual(records.prefix(11).map { $0["output"] as? String }, (KnowledgeFixtures.records + KnowledgeFixtures.badRecords).map { $0["output"] })
            for record in records { XCTAssertEqual(Set(record.keys), ["instruction", "input", "output"]) }
            XCTAssertTrue(try String(contentsOfFile: folder + "/dataset_info.json", encoding: .utf8).contains("\"toy_train_KA\""))
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: output)))
            // The cache holds perplexities from the model: finite and > 1.
            let cache = try String(contentsOfFile: folder + "/qa/toy_train_KA.cache.jsonl", encoding: .utf8)
            XCTAssertEqual(cache.split(separator: "\n").count, 11)
        }
        XCTAssertEqual(outputs[0], outputs[1])
    }

    func testKCOnOneAndTwoRanksWritesTheSameFileAndResumes() throws {
        var outputs: [Data] = []
        for ranks in [1, 2] {
            let folder = try KnowledgeFixtures.dataDirectory("cli-kc-\(ranks)", rows: KnowledgeFixtures.records + KnowledgeFixtures.badRecords)
            let arguments = ["build-kc", "--dataset", "toy_train", "--dataset_dir", folder, "--seed", "3", "--records_per_round", "1"]
            let first = try summary(try KnowTuneRunner.run(arguments, ranks: ranks))
            XCTAssertEqual(first["output_records"] as? Int, 24)
            XCTAssertEqual(first["pairs"] as? [String: Int], ["incomplete": 8, "nonfactual": 8, "illogical": 8])
            XCTAssertEqual(first["single_fact_answers"] as? Int, 1)
            XCTAssertEqual(first["empty_answers"] as? Int, 1)
            let output = folder + "/qa/toy_train_KC.json"
            for record in try KnowledgeFixtures.jsonArray(output) {
                let pair = try XCTUnwrap(record["output"] as? [String])
                XCTAssertEqual(pair.count, 2)
                XCTAssertNotEqual(pair[0], pair[1])
            }
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: output)))
            // A second run (on the other rank count) takes everything from the cache and writes the same file.
            let again = try summary(try KnowTuneRunner.run(arguments + ["--max_samples", "11"], ranks: 3 - ranks))
            XCTAssertEqual(again["records_from_cache"] as? Int, 11)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output)), outputs.last)
        }
        XCTAssertEqual(outputs[0], outputs[1])
    }

    func testUnusableSettingsFailClearly() throws {
        let folder = try KnowledgeFixtures.dataDirectory("cli-errors")
        let local = try KnowTuneRunner.run(["build-kc", "--dataset", "toy_train", "--dataset_dir", folder, "--teacher", "local",
                                         "--teacher_model", folder + "/no-such-model"], ranks: 2)
        XCTAssertEqual(local.status, 1)
        XCTAssertEqual(local.occurrences(of: "no-such-model: no such file or directory"), 1, "reported once, by rank 0: \(local.output)")
        let unknown = try KnowTuneRunner.run(["build-kc", "--dataset", "toy_train", "--dataset_dir", folder, "--teacher", "gpt"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.standardError.contains("unsupported teacher 'gpt'"), unknown.output)
        let missing = try KnowTuneRunner.run(["build-kc", "--dataset", "nope", "--dataset_dir", folder], ranks: 2)
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.occurrences(of: "dataset 'nope' is not in"), 1, "reported once, by rank 0: \(missing.output)")
        let noModel = try KnowTuneRunner.run(["build-ka", "--dataset", "toy_train", "--dataset_dir", folder])
        XCTAssertNotEqual(noModel.status, 0)
        XCTAssertTrue(noModel.standardError.contains("needs --model_name_or_path"), noModel.output)
        let badKeep = try KnowTuneRunner.run(["build-ka", "--dataset", "toy_train", "--dataset_dir", folder, "--model_name_or_path", "x",
                                           "--ka_keep", "2"])
        XCTAssertNotEqual(badKeep.status, 0)
        XCTAssertTrue(badKeep.standardError.contains("--ka_keep 2"), badKeep.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/qa/toy_train_KC.json"))
    }
}
