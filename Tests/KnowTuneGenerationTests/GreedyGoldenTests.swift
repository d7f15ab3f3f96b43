// Checks greedy generation on the real SmolLM2-135M against Tests/Fixtures/golden/greedy.json (HF `generate` with a KV
// cache), with each prompt decoded alone and with both prompts (of different lengths) decoded in one batch.
import KnowTuneModel
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneGeneration

final class GreedyGoldenTests: XCTestCase {
    func testGreedyTokensMatchGoldenAloneAndBatched() throws {
        let model = try GenerationFixtures.smolLM2()
        let cases = try GenerationFixtures.greedyCases()
        XCTAssertEqual(cases.count, 2)
        XCTAssertNotEqual(cases[0].prompt.count, cases[1].prompt.count, "the batched run needs prompts of different lengths")
        for batchSize in [1, 2] {
            let generator = Generator(weights: model.weights, stopTokenIds: [model.tokenizer.eosTokenId], batchSize: batchSize)
            let results = try generator.generate(prompts: cases.map(\.prompt), exampleIndices: [0, 1],
                                                 configuration: .greedy(maxNewTokens: 40))
            for (index, entry) in cases.enumerated() {
                let generated = try results[index].get()
                XCTAssertEqual(generated, entry.generated, "test #\(index), batch size \(batchSize)")
                XCTAssertEqual(generator.text(of: generated, tokenizer: model.tokenizer), entry.text, "test #\(index) text")
            }
            // Together, the two 40-token sequences take 39 shared steps after their prefills; alone, 78.
            XCTAssertEqual(generator.statistics.steps, batchSize == 2 ? 39 : 78)
            XCTAssertEqual(generator.statistics.generatedTokens, 80)
        }
    }
}
