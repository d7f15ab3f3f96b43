// The command-line contract for bad input, command by command: a bad file, value or record ends the process by
// itself with an exit status in 1...127 and one message on stderr naming the file and what is wrong, in bounded time
// (60 s for score/tokenize/metrics/export, 180 s for train; under mpirun on every rank); wrong JSON types are refused,
// never read as defaults; a very long but valid record is truncated as cutoff_len says and the run finishes.
import Foundation
import KnowTuneTestSupport
import XCTest

final class BadInputContractTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = TrainingFixtures.outputDirectory("contract-\(name.filter { $0.isLetter })")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    /// Runs `arguments` and checks the contract: status 1...127, `file` and `what` on stderr, within `seconds`.
    private func expectRefusal(_ arguments: [String], file: String, what: String, seconds: Double = 60, ranks: Int = 1,
                               sourceFile: StaticString = #filePath, line: UInt = #line) throws {
        let result = try KnowTuneRunner.run(arguments, ranks: ranks, timeout: seconds, file: sourceFile, line: line)
        XCTAssertTrue((1...127).contains(result.status), "exit status \(result.status):\n\(result.output)", file: sourceFile, line: line)
        XCTAssertEqual(result.reason, .exit, "ended by itself, not by a signal", file: sourceFile, line: line)
        XCTAssertTrue(result.standardError.contains(file), "names \(file):\n\(result.standardError)", file: sourceFile, line: line)
        XCTAssertTrue(result.standardError.contains(what), "says '\(what)':\n\(result.standardError)", file: sourceFile, line: line)
        XCTAssertFalse(result.standardError.contains("Fatal error"), "no crash", file: sourceFile, line: line)
    }

    private func write(_ name: String, _ data: Data) throws -> String {
        let path = folder + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func testDamagedModelFilesForScoreAndTokenize() throws {
        let model = try Data(contentsOf: URL(fileURLWithPath: try TrainingFixtures.tinyModel()))
        let truncated = try write("truncated.gguf", model.prefix(model.count / 2))
        try expectRefusal(["score", "--model_name_or_path", truncated, "--instruction", "Q", "--response", "A"], file: truncated,
                          what: "truncated")
        try expectRefusal(["tokenize", "--model_name_or_path", truncated, "--text", "hello"], file: truncated, what: "truncated")
        // A header whose tensor count no file could hold.
        var header = Data("GGUF".utf8)
        withUnsafeBytes(of: UInt32(3).littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { header.append(contentsOf: $0) }
        header.append(Data(count: 64))
        let crafted = try write("crafted.gguf", header)
        try expectRefusal(["tokenize", "--model_name_or_path", crafted, "--text", "hello"], file: crafted, what: "exceeds the file size")
    }

    func testPredictionsWithoutAUsableLine() throws {
        let predictions = try write("predictions.jsonl", Data(#"{"label": 5, "predict": "x"}"#.utf8))
        try expectRefusal(["metrics", predictions], file: predictions, what: "no usable predictions")
        try expectRefusal(["metrics", folder + "/missing.jsonl"], file: folder + "/missing.jsonl", what: "cannot read")
    }

    func testDamagedAdapterForExport() throws {
        let adapter = folder + "/adapter"
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        let config = try write("adapter/adapter_config.json", Data(#"{"r": "8", "target_modules": ["q_proj"]}"#.utf8))
        try expectRefusal(["export", "--model_name_or_path", try TrainingFixtures.tinyModel(), "--adapter_name_or_path", adapter,
                           "--export_dir", folder + "/export"], file: config, what: #""r" must be a number"#)
    }

    func testTrainRefusesWrongTypesUnderMPI() throws {
        let data = folder + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let records = data + "/bad.json"
        try Data(#"[{"instruction": 5, "output": "A"}]"#.utf8).write(to: URL(fileURLWithPath: records))
        try Data(#"{"bad": {"file_name": "bad.json"}}"#.utf8).write(to: URL(fileURLWithPath: data + "/dataset_info.json"))
        var arguments = try TrainingFixtures.trainArguments(output: folder + "/out")
        arguments[arguments.firstIndex(of: "--dataset_dir")! + 1] = data
        arguments[arguments.firstIndex(of: "--dataset")! + 1] = "bad"
        try expectRefusal(arguments, file: records, what: #"record 0: "instruction" must be a string"#, seconds: 180, ranks: 2)
        // The registry is read whole: one wrongly typed entry is an error whichever dataset is asked for.
        try Data(#"{"bad": {"file_name": "bad.json", "ranking": "yes"}}"#.utf8).write(to: URL(fileURLWithPath: data + "/dataset_info.json"))
        try expectRefusal(arguments, file: data + "/dataset_info.json", what: #""ranking" must be true or false"#, seconds: 180, ranks: 2)
    }

    /// A configuration file nested 100,000 deep crashed the YAML parser on every rank (stack overflow), and nine lines
    /// of anchors took 17 GB; both are refused on every rank before anything loads.
    func testHostileConfigurationFilesUnderMPI() throws {
        let deep = try write("deep.yaml", Data(("stage: sft\nlora_target: " + String(repeating: "[", count: 30_000)
                                                + String(repeating: "]", count: 30_000) + "\n").utf8))
        try expectRefusal(["train", deep], file: deep, what: "a list may hold only scalars", ranks: 2)
        let laughs = try write("laughs.yaml", Data("a: &a [lol, lol, lol]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n".utf8))
        try expectRefusal(["train", laughs], file: laughs, what: "anchors and aliases", ranks: 2)
    }

    func testAFiveMegabyteInstructionIsTruncatedAndTrains() throws {
        let data = folder + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let long = String(repeating: "word ", count: 1_000_000)
        let records = (0..<8).map { ["instruction": $0 == 3 ? long : "Question \($0)?", "input": "", "output": "Answer \($0)."] }
        try JSONSerialization.data(withJSONObject: records).write(to: URL(fileURLWithPath: data + "/long.json"))
        try Data(#"{"long": {"file_name": "long.json"}}"#.utf8).write(to: URL(fileURLWithPath: data + "/dataset_info.json"))
        let arguments = ["train", "--stage", "sft", "--model_name_or_path", try TrainingFixtures.tinyModel(), "--do_train",
                         "--dataset", "long", "--dataset_dir", data, "--cutoff_len", "256", "--max_steps", "2",
                         "--per_device_train_batch_size", "4", "--save_strategy", "no", "--output_dir", folder + "/out"]
        let result = try KnowTuneRunner.run(arguments, timeout: 180)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertLessThan(result.seconds, 180)
        XCTAssertTrue(result.standardError.contains("truncated 1 sequence(s) to cutoff_len 256"), result.standardError)
    }
}
