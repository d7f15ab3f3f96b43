// Checks the templates' token ids against the golden prompts (HF tokenisation of the alpaca prompt string).
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneData
@testable import KnowTuneModel

final class ChatTemplateTests: XCTestCase {
    func testAlpacaPromptAndResponseIdsEqualGolden() throws {
        let model = try GoldenModel.smolLM2()
        let forward = try TestPaths.goldenJSON("forward.json")
        let instruction = "Why do people like pickleball?"
        XCTAssertEqual(ChatTemplate.alpaca.encodePrompt(instruction, tokenizer: model.tokenizer),
                       GoldenModel.int32Array(forward["prompt_ids"]))
        let response = forward["response"] as? String ?? ""
        XCTAssertEqual(ChatTemplate.alpaca.encodeResponse(response, tokenizer: model.tokenizer),
                       GoldenModel.int32Array(forward["response_ids"]) + [2])
        let greedy = try TestPaths.goldenJSON("greedy.json")
        for entry in greedy["cases"] as? [[String: Any]] ?? [] {
            let prompt = entry["prompt"] as? String ?? ""
            XCTAssertEqual(model.tokenizer.encode(prompt), GoldenModel.int32Array(entry["prompt_ids"]))
        }
    }

    func testTemplateSegmentsAndUserContent() throws {
        XCTAssertEqual(ChatTemplate.userContent(instruction: "Q", input: ""), "Q")
        XCTAssertEqual(ChatTemplate.userContent(instruction: "Q", input: "ctx"), "Q\nctx")
        XCTAssertEqual(ChatTemplate.userContent(instruction: "", input: "ctx"), "ctx")
        XCTAssertEqual(ChatTemplate.alpacaLF053.promptSegments("Q"),
                       [ChatTemplate.alpacaSystem, "### Instruction:\nQ\n\n### Response:\n"])
        XCTAssertEqual(ChatTemplate.alpaca.promptSegments("Q", system: "S"), ["S\n\n### Instruction:\nQ\n\n### Response:\n"])
        XCTAssertEqual(try ChatTemplate.named("llama2").promptSegments("Q", system: ""), ["[INST] Q [/INST]"])
        XCTAssertThrowsError(try ChatTemplate.named("vicuna")) { error in
            XCTAssertTrue("\(error)".contains("alpaca"), "the error lists the supported templates")
        }
    }
}
