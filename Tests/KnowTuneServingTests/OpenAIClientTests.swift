// Tests `knowtune api` as users reach it: the command started with a key in its environment, and the OpenAI Python
// client (from PyPI, installed by launch/setup.sh) listing models, completing greedily, streaming the same text,
// getting a document of a json_schema response_format, and raising BadRequestError / AuthenticationError.
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTestSupport
import XCTest

final class OpenAIClientTests: XCTestCase {
    func testTheOpenAIPythonClientTalksToTheServer() throws {
        let modelPath = try TinyGGUFModel.path(in: ServingFixtures.folder + "/tiny-model")
        let server = try LaunchedAPIServer(["--model_name_or_path", modelPath, "--template", "chatml", "--served_model_name", "tiny",
                                            "--context_length", "256"], environment: ["KNOWTUNE_API_KEY": "sesame"])
        defer { server.stop() }
        XCTAssertTrue(server.output.contains("key required"), server.output)
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/Fixtures/serving/openai_client_check.py").path
        let result = try Testkit.run("/usr/bin/env", ["python3", script, server.baseURL, "sesame"], timeout: 180)
        XCTAssertEqual(result.status, 0, "the openai package comes from launch/setup.sh: \(result.output)")
        let seen = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], result.output)
        XCTAssertEqual(seen["models"] as? [String], ["tiny"])

        // The reply the generator gives the same conversation.
        let model = try ModelLoader.load(modelPath)
        let template = try ChatTemplate.named("chatml")
        let prompt = template.encodePrompt("What is the capital of France?", system: "Answer briefly.", tokenizer: model.tokenizer)
        let generator = Generator(weights: model.weights, stopTokenIds: ChatTemplate.replyStopTokenIds(tokenizer: model.tokenizer))
        let ids = try generator.generate(prompts: [prompt], exampleIndices: [0], configuration: .greedy(maxNewTokens: 12))[0].get()
        XCTAssertEqual(seen["content"] as? String, generator.text(of: ids, tokenizer: model.tokenizer))
        XCTAssertEqual(seen["streamed"] as? String, seen["content"] as? String)
        let stops = generator.stopTokenIds
        XCTAssertEqual(seen["finish_reason"] as? String, stops.contains(ids.last!) ? "stop" : "length")
        XCTAssertEqual(seen["completion_tokens"] as? Int, ids.filter { !stops.contains($0) }.count)
        XCTAssertNotNil((seen["structured"] as? [String: Any])?["answer"] as? String, "\(seen)")
        XCTAssertEqual(seen["bad_schema"] as? Int, 400)
        XCTAssertEqual(seen["wrong_key"] as? Int, 401)
        XCTAssertEqual(server.stop(), 0, server.output)
    }
}
