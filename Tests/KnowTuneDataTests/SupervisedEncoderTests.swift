// Checks SFT encoding: LLaMA-Factory 0.5.3's proportional truncation (`infer_max_len`, worked by hand below), the
// alpaca prompt and EOS-terminated response, and the counting of skipped and truncated examples.
import XCTest
@testable import KnowTuneData
import KnowTuneModel

final class SupervisedEncoderTests: XCTestCase {
    func testTruncationSplitsTheBudgetInProportionAsLLaMAFactory() {
        typealias E = SupervisedEncoder
        // max_target = max(int(60·50/150), 1) = 20; max_source = 60 − 20 = 40.
        XCTAssertTrue(E.truncate(source: 100, target: 50, budget: 60, reserved: 1) == (40, 20))
        // int(60·200/210) = 57 → the source keeps 3.
        XCTAssertTrue(E.truncate(source: 10, target: 200, budget: 60, reserved: 1) == (3, 57))
        // The reserve wins over the proportion: int(50·2/102) = 0 < 5, and a 2-token target keeps both.
        XCTAssertTrue(E.truncate(source: 100, target: 2, budget: 50, reserved: 5) == (45, 2))
        // What fits is untouched, the boundary included.
        XCTAssertTrue(E.truncate(source: 30, target: 30, budget: 60, reserved: 1) == (30, 30))
    }

    func testEncodingUsesTheTemplateAndCountsWhatItSkipsAndCuts() {
        let encoder = SupervisedEncoder(template: .alpaca, tokenizer: ByteTokenizer(), cutoffLength: 200, reservedLabelLength: 1)
        let examples = [
            AlpacaExample(instruction: "Name a colour.", responses: ["Blue."]),
            AlpacaExample(instruction: "   ", responses: ["no question"]),
            AlpacaExample(instruction: "Empty answer", responses: ["  "]),
            AlpacaExample(instruction: "Long", input: "context", responses: [String(repeating: "word ", count: 100)]),
        ]
        let (encoded, report) = encoder.encode(examples)
        XCTAssertEqual(report, EncodingReport(kept: 2, truncated: 1, skippedEmpty: 2))
        XCTAssertEqual(encoded.map(\.index), [0, 3])
        let prompt = ChatTemplate.alpacaSystem + "\n\n### Instruction:\nName a colour.\n\n### Response:\n"
        XCTAssertEqual(encoded[0].prompt, ByteTokenizer().encode(prompt))
        XCTAssertEqual(encoded[0].response, ByteTokenizer().encode("Blue.") + [2], "the response ends with EOS")
        XCTAssertEqual(encoded[1].tokenCount, 200, "a cut example fills the cutoff exactly")
        let full = (source: encoder.encodePrompt(examples[3]).count, target: 501)
        XCTAssertTrue(SupervisedEncoder.truncate(source: full.source, target: full.target, budget: 200, reserved: 1)
                      == (encoded[1].prompt.count, encoded[1].response.count))
    }
}
