// Checks reading datasets as LLaMA-Factory's alpaca format describes them: dataset_info.json entries and columns,
// JSON arrays and JSON lines alike, null as absent; and the bad-input contract: a wrong JSON type, an empty list,
// an empty file or a missing column is an error naming the file and the record, never a default.
import Foundation
import KnowTuneTensor
import XCTest
@testable import KnowTuneData

final class DatasetLoaderTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "knowtune-data-tests-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
    }

    private func load(_ records: String, entry: String = #"{"file_name": "d.json"}"#) throws -> [AlpacaExample] {
        try write("d.json", records)
        try write("dataset_info.json", #"{"d": \#(entry)}"#)
        return try DatasetLoader.load(names: ["d"], registry: try DatasetRegistry(directory: folder), maxSamples: nil)
    }

    private func assertRefused(_ records: String, entry: String = #"{"file_name": "d.json"}"#, _ expected: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(records, entry: entry), file: file, line: line) { error in
            XCTAssertTrue(error is KnowTuneError, file: file, line: line)
            XCTAssertTrue("\(error)".contains(folder), "names the file: \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
        }
    }

    func testArraysAndLinesGiveTheSameRecords() throws {
        let array = try load(#"[{"instruction": "Q1", "input": null, "output": "A1"}, {"instruction": "Q2", "input": "ctx", "output": ["A2", "B2"]}]"#)
        let lines = try load("{\"instruction\": \"Q1\", \"output\": \"A1\"}\n\n{\"instruction\": \"Q2\", \"input\": \"ctx\", \"output\": [\"A2\", \"B2\"]}\n")
        XCTAssertEqual(array.map(\.instruction), ["Q1", "Q2"])
        XCTAssertEqual(array.map(\.input), ["", "ctx"])
        XCTAssertEqual(array.map(\.responses), [["A1"], ["A2", "B2"]])
        XCTAssertEqual(array.map(\.source), ["d[0]", "d[1]"])
        XCTAssertEqual(array, lines)
    }

    func testColumnsMapAndRankingPairs() throws {
        let entry = #"{"file_name": "d.json", "ranking": true, "columns": {"prompt": "q", "chosen": "good", "rejected": "bad"}}"#
        let pairs = try load(#"[{"q": "Q", "good": "yes", "bad": "no"}]"#, entry: entry)
        XCTAssertEqual(pairs.first?.responses, ["yes", "no"])
        XCTAssertEqual(pairs.first?.instruction, "Q")
    }

    func testWrongTypesEmptyListsAndMissingColumnsAreRefused() {
        assertRefused(#"[{"instruction": 5, "output": "A"}]"#, #"record 0: "instruction" must be a string"#)
        assertRefused(#"[{"instruction": "Q", "input": ["x"], "output": "A"}]"#, #""input" must be a string"#)
        assertRefused(#"[{"instruction": "Q", "output": true}]"#, "is neither a string nor a list")
        assertRefused(#"[{"instruction": "Q", "output": []}]"#, "a string or a non-empty list of strings")
        assertRefused(#"[{"instruction": "Q", "output": ["A", 3]}]"#, "list holds a non-string")
        assertRefused(#"[{"output": "A"}]"#, "has no 'instruction' column")
        assertRefused(#"[{"instruction": "Q", "output": "A"}, 7]"#, "record 1 is not a JSON object")
        assertRefused("[]", "has no records")
        assertRefused(#"[{"instruction": "Q", "output": "A"}"#, "malformed JSON")
        // Nesting beyond the JSON parser's depth limit is an error, not a stack overflow.
        assertRefused(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), "malformed JSON")
        assertRefused(#"[{"instruction": "Q", "output": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}]",
                      "malformed JSON")
        assertRefused(#"[{"q": "Q", "good": "yes"}]"#,
                      entry: #"{"file_name": "d.json", "ranking": true, "columns": {"prompt": "q", "chosen": "good", "rejected": "bad"}}"#,
                      "lacks 'good' or 'bad'")
    }

    func testRegistryRefusesWrongTypesInsteadOfDefaulting() throws {
        let registryPath = folder + "/dataset_info.json"
        for (entry, expected) in [
            (#"{"file_name": "d.json", "ranking": "yes"}"#, #""ranking" must be true or false"#),
            (#"{"file_name": "d.json", "ranking": 1}"#, #""ranking" must be true or false"#),
            (#"{"file_name": 3}"#, #""file_name" must be a string"#),
            (#"{"file_name": "d.json", "columns": {"prompt": 1}}"#, #""prompt" must be a string"#),
            (#"{"file_name": "d.json", "columns": ["prompt"]}"#, #""columns" is not a JSON object"#),
            (#"{"file_name": "d.json", "formatting": "sharegpt"}"#, "formatting sharegpt"),
            (#""d.json""#, "entry d is not a JSON object"),
        ] {
            try write("dataset_info.json", #"{"d": \#(entry)}"#)
            XCTAssertThrowsError(try DatasetRegistry(directory: folder), entry) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(entry): \(error)")
                if !expected.hasPrefix("formatting") { XCTAssertTrue("\(error)".contains(registryPath), "\(error)") }
            }
        }
        try write("dataset_info.json", #"{"d": {"file_name": "d.json"}}"#)
        XCTAssertThrowsError(try DatasetRegistry(directory: folder).entry(named: "e")) {
            XCTAssertTrue("\($0)".contains("known: d"), "\($0)")
        }
    }
}
