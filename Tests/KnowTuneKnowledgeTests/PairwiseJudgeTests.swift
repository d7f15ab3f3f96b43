// Tests `knowtune judge --compare`: two prediction files judged on three aspects in both answer orders through the
// stub server (which prefers the longer answer and breaks ties towards position A), so a position bias ends as a
// tie; mismatched files, a rules teacher and missing or incomplete prompt files are clear errors.
import Foundation
import KnowTuneKnowledge
import KnowTuneTestSupport
import XCTest

final class PairwiseJudgeTests: XCTestCase {
    func testBothOrdersCancelPositionBias() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        let labels = KnowledgeFixtures.records.prefix(3).map { $0["output"] ?? "" }
        let first = try KnowledgeFixtures.predictions("judge-first", [(labels[0], "An apple is a fruit that grows on trees worldwide."), (labels[1], "A physicist."),
                                                    (labels[2], "A long river.")])
        let second = try KnowledgeFixtures.predictions("judge-second", [(labels[0], "A fruit."), (labels[1], "Marie Curie was a physicist and chemist."),
                                                      (labels[2], "A big river.")])
        let folder = try KnowledgeFixtures.dataDirectory("judge")
        let result = try KnowTuneRunner.run(["judge", first, "--compare", second, "--teacher", "openai", "--openai_base_url", server.baseURL,
                                          "--openai_model", "stub-model", "--teacher_backoff", "0", "--dataset", "toy_train",
                                          "--dataset_dir", folder, "--prompts_dir", OpenAITeacherTests.promptsDirectory])
        XCTAssertEqual(result.status, 0, result.output)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], result.output)
        let pairwise = try XCTUnwrap(object["pairwise"] as? [String: [String: Int]])
        for aspect in ["completeness", "factuality", "logicality"] {
            XCTAssertEqual(pairwise[aspect], ["win": 1, "tie": 1, "lose": 1], aspect)
        }
        XCTAssertEqual(object["unusable_replies"] as? Int, 0)
        XCTAssertEqual(server.requests, 3 * 3 * 2, "three records, three aspects, two orders")
        XCTAssertNotNil((object["facts"] as? [String: Any])?["records"])
    }

    func testMismatchedFilesAndRulesTeacherAreErrors() throws {
        let first = try KnowledgeFixtures.predictions("judge-a", [("x", "y"), ("z", "w")])
        let other = try KnowledgeFixtures.predictions("judge-b", [("x", "y")])
        let mismatch = try KnowTuneRunner.run(["judge", first, "--compare", other, "--teacher", "openai", "--openai_model", "m",
                                            "--openai_base_url", "http://127.0.0.1:9/v1"])
        XCTAssertEqual(mismatch.status, 1, mismatch.output)
        XCTAssertTrue(mismatch.standardError.contains("do not answer the same questions"), mismatch.output)
        let rules = try KnowTuneRunner.run(["judge", first, "--compare", other])
        XCTAssertNotEqual(rules.status, 0)
        XCTAssertTrue(rules.standardError.contains("--compare needs a chat teacher"), rules.output)
    }

    /// A backend the judge is never asked to call in these tests.
    private final class SilentBackend: ChatBackend {
        let identity = "silent", attempts = 1, backoff: TimeInterval = 0, allowsConcurrentCalls = false
        func complete(system: String, user: String) throws -> String { XCTFail("called"); return "" }
    }

    func testJudgeNeedsItsPromptAndTheSystemPrompt() throws {
        let folder = KnowledgeFixtures.root + "/judge-prompts"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let judgePrompt = try String(contentsOfFile: OpenAITeacherTests.promptsDirectory + "/judge_pairwise.txt", encoding: .utf8)
        try judgePrompt.write(toFile: folder + "/judge_pairwise.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PairwiseJudge(backend: SilentBackend(), promptsDirectory: folder)) { error in
            XCTAssertTrue("\(error)".contains("system.txt is missing"), "\(error)")
        }
        try "Be brief.\n".write(toFile: folder + "/system.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try PairwiseJudge(backend: SilentBackend(), promptsDirectory: folder).system, "Be brief.")
        try judgePrompt.replacingOccurrences(of: "{reference}", with: "").write(toFile: folder + "/judge_pairwise.txt",
                                                                               atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PairwiseJudge(backend: SilentBackend(), promptsDirectory: folder)) { error in
            XCTAssertTrue("\(error)".contains("judge_pairwise.txt lacks {reference}"), "\(error)")
        }
    }
}
