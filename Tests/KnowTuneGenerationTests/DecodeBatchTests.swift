// Tests continuous batching: a sequence that joins a running batch between steps, and one that leaves it early,
// give every other sequence exactly the tokens it gets decoded alone, and a freed slot serves the next sequence.
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class DecodeBatchTests: XCTestCase {
    func testJoiningAndLeavingBetweenStepsLeavesOtherSequencesUnchanged() throws {
        let c = LlamaConfiguration(vocabularySize: 97, hiddenSize: 32, intermediateSize: 48, layerCount: 2, headCount: 4, kvHeadCount: 2,
                                   rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 128)
        let weights = RandomModel.weights(c, seed: 11)
        let prompts = (0..<3).map { RandomModel.tokens(5 + 3 * $0, seed: UInt64(40 + $0), vocabulary: 97) }
        let sampled = GenerationConfiguration(doSample: true, temperature: 1.0, topP: 1.0, topK: 0, maxNewTokens: 12, seed: 5)
        let greedy = GenerationConfiguration.greedy(maxNewTokens: 12)
        let configurations = [sampled, greedy, sampled]
        // Each sequence alone.
        let alone = try (0..<3).map { index -> [Int32] in
            let generator = Generator(weights: weights, stopTokenIds: [], batchSize: 1)
            return try generator.generate(prompts: [prompts[index]], exampleIndices: [index], configuration: configurations[index])[0].get()
        }
        let batch = DecodeBatch(decoder: IncrementalDecoder(weights: weights, batchCapacity: 2, maxLength: 64), stopTokenIds: [],
                                contextLength: 64)
        var tokens = [[Int32]](repeating: [], count: 3)
        func record(_ events: [DecodeEvent]) { for event in events { tokens[event.tag].append(event.token) } }
        record(batch.admit([DecodeRequest(tag: 0, prompt: prompts[0], configuration: sampled, exampleIndex: 0)]))
        for _ in 0..<3 { record(batch.step()) }
        // Sequence 1 joins the running batch after three steps.
        record(batch.admit([DecodeRequest(tag: 1, prompt: prompts[1], configuration: greedy, exampleIndex: 1)]))
        XCTAssertEqual(batch.freeSlotCount, 0)
        for _ in 0..<4 { record(batch.step()) }
        // Sequence 0 leaves early; its slot takes sequence 2.
        XCTAssertTrue(batch.finish(tag: 0))
        XCTAssertFalse(batch.finish(tag: 0), "already gone")
        record(batch.admit([DecodeRequest(tag: 2, prompt: prompts[2], configuration: sampled, exampleIndex: 2)]))
        while !batch.isIdle { record(batch.step()) }
        XCTAssertEqual(tokens[0], Array(alone[0].prefix(8)), "8 tokens before it left")
        XCTAssertEqual(tokens[1], alone[1])
        XCTAssertEqual(tokens[2], alone[2], "the reused slot's old cache does not leak into the new sequence")
        XCTAssertEqual(batch.freeSlotCount, 2)
        XCTAssertEqual(batch.statistics.generatedTokens, 8 + 12 + 12)
    }
}
