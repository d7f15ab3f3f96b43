// adapter_config.json from a damaged or hand-edited adapter: wrong types are refused (never read as a default), and
// a rank that would size an allocation beyond reason is an error naming the file, not an abort.
import Foundation
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class PEFTAdapterConfigTests: XCTestCase {
    private func configuration(_ json: String) throws -> LoRAConfiguration {
        let folder = TestPaths.scratchFolder("adapter-config") + "/\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try json.write(toFile: folder + "/adapter_config.json", atomically: true, encoding: .utf8)
        return try PEFTAdapter.configuration(folder: folder)
    }

    private func assertRefused(_ json: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try configuration(json), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains("adapter_config.json"), "names the file: \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
        }
    }

    func testAGoodConfigurationIsRead() throws {
        let read = try configuration(#"{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"], "use_rslora": false}"#)
        XCTAssertEqual(read.rank, 8)
        XCTAssertEqual(read.alpha, 16)
        XCTAssertEqual(read.dropout, 0.05, accuracy: 1e-7)
        XCTAssertEqual(read.targets, [.query, .value])
    }

    func testWrongTypesAreRefusedNotDefaulted() {
        let targets = #""target_modules": ["q_proj"]"#
        assertRefused(#"{"r": "8", \#(targets)}"#, #""r" must be a number"#)
        assertRefused(#"{"r": true, \#(targets)}"#, #""r" must be a number"#)
        assertRefused(#"{"r": 8.5, \#(targets)}"#, #""r" must be a whole number"#)
        assertRefused(#"{"r": 8, "lora_alpha": "sixteen", \#(targets)}"#, #""lora_alpha" must be a number"#)
        assertRefused(#"{"r": 8, "lora_dropout": [0.1], \#(targets)}"#, #""lora_dropout" must be a number"#)
        assertRefused(#"{"r": 8, "use_rslora": 1, \#(targets)}"#, #""use_rslora" must be true or false"#)
        assertRefused(#"{"r": 8, "target_modules": 5}"#, #""target_modules" must be"#)
        assertRefused(#"{"lora_alpha": 16, \#(targets)}"#, "missing field r")
    }

    func testSizesBeyondReasonAreErrorsNotAborts() {
        let targets = #""target_modules": ["q_proj"]"#
        assertRefused(#"{"r": 1073741824, \#(targets)}"#, "lora_rank 1073741824 is larger than 65536")
        assertRefused(#"{"r": 0, \#(targets)}"#, "lora_rank must be positive")
        assertRefused(#"{"r": 8, "lora_alpha": -2, \#(targets)}"#, "lora_alpha must be positive")
    }
}
