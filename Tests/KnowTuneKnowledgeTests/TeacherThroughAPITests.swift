// Tests the `openai` teacher against `knowtune api` serving the same model as `--teacher local`: with one client and
// greedy decoding, build-kc and build-ka write byte-identical files and the pairwise judge gives the same verdicts
// in both answer orders (the server enforces the replies' schemas through response_format, as the local teacher
// does through its mask).
import Foundation
import KnowTuneTestSupport
import XCTest

final class TeacherThroughAPITests: XCTestCase {
    func teacherFlags(_ kind: String, server: LaunchedAPIServer, model: String) -> [String] {
        let common = ["--teacher_max_new_tokens", "40", "--prompts_dir", OpenAITeacherTests.promptsDirectory, "--teacher_backoff", "0"]
        switch kind {
        case "local": return ["--teacher", "local", "--teacher_model", model, "--teacher_template", "chatml"] + common
        default:
            return ["--teacher", "openai", "--openai_base_url", server.baseURL, "--openai_model", "tiny", "--teacher_concurrency", "1"] + common
        }
    }

    func testOpenAITeacherThroughTheServerWritesTheLocalTeachersFiles() throws {
        let model = try KnowledgeFixtures.tinyModel()
        let server = try LaunchedAPIServer(["--model_name_or_path", model, "--template", "chatml", "--served_model_name", "tiny",
                                            "--max_concurrent", "2", "--context_length", "512"])
        defer { server.stop() }
        for command in ["build-kc", "build-ka"] {
            var files: [Data] = []
            var summaries: [String] = []
            for kind in ["local", "openai"] {
                let folder = try KnowledgeFixtures.dataDirectory("through-api-\(command)-\(kind)", rows: Array(KnowledgeFixtures.records.prefix(4)))
                var arguments = [command, "--dataset", "toy_train", "--dataset_dir", folder, "--seed", "3"]
                    + teacherFlags(kind, server: server, model: model)
                if command == "build-ka" { arguments += ["--model_name_or_path", model] }
                let result = try KnowTuneRunner.run(arguments, timeout: 300)
                XCTAssertEqual(result.status, 0, result.output)
                let suffix = command == "build-kc" ? "KC" : "KA"
                files.append(try Data(contentsOf: URL(fileURLWithPath: folder + "/qa/toy_train_\(suffix).json")))
                summaries.append(String(result.standardOutput.split(separator: "\n").last ?? ""))
            }
            XCTAssertGreaterThan(files[0].count, 2, "\(command) wrote records")
            XCTAssertEqual(files[0], files[1], "\(command): byte-identical output (\(summaries))")
        }

        let labels = KnowledgeFixtures.records.prefix(2).map { $0["output"] ?? "" }
        let first = try KnowledgeFixtures.predictions("api-judge-first", [(labels[0], "A fruit of trees."), (labels[1], "A physicist.")])
        let second = try KnowledgeFixtures.predictions("api-judge-second", [(labels[0], "A fruit."), (labels[1], "A chemist from Warsaw.")])
        let folder = try KnowledgeFixtures.dataDirectory("through-api-judge")
        var verdicts: [[String: [String: Int]]] = []
        for kind in ["local", "openai"] {
            let result = try KnowTuneRunner.run(["judge", first, "--compare", second, "--dataset", "toy_train", "--dataset_dir", folder]
                                                + teacherFlags(kind, server: server, model: model), timeout: 300)
            XCTAssertEqual(result.status, 0, result.output)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], result.output)
            verdicts.append(try XCTUnwrap(object["pairwise"] as? [String: [String: Int]]))
        }
        XCTAssertEqual(verdicts[0], verdicts[1], "the judge through the server agrees with the local judge")
        XCTAssertEqual(verdicts[1].values.reduce(0) { $0 + $1.values.reduce(0, +) }, 3 * 2, "three aspects, two records")
        XCTAssertEqual(server.stop(), 0, "SIGTERM ends the server cleanly: \(server.output)")
    }
}
