// Checks the generator's contract on a tiny random model: bad prompts fail alone with a clear error, stop ids end a
// sequence (and are kept in the ids, stripped from the text), sequences finishing at different times, continuous
// batching, streaming, the context limit, and that every prompt's output is the same alone or in any batch.
import KnowTuneModel
import KnowTuneTensor
import XCTest
@testable import KnowTuneGeneration

final class GeneratorTests: XCTestCase {
    private let weights = TinyRandomModel.weights()
    private let prompts = [TinyRandomModel.tokens(6, seed: 21), TinyRandomModel.tokens(2, seed: 22),
                           TinyRandomModel.tokens(9, seed: 23), TinyRandomModel.tokens(4, seed: 24),
                           TinyRandomModel.tokens(1, seed: 25)]

    private func run(_ prompts: [[Int32]], indices: [Int]? = nil, batchSize: Int, stop: [Int32] = [],
                     configuration: GenerationConfiguration, contextLength: Int? = nil) throws -> [[Int32]] {
        let generator = Generator(weights: weights, stopTokenIds: stop, batchSize: batchSize, contextLength: contextLength,
                                  prefillChunk: 4)
        return try generator.generate(prompts: prompts, exampleIndices: indices ?? Array(prompts.indices),
                                      configuration: configuration).map { try $0.get() }
    }

    func testEmptyAndTooLongPromptsFailAloneWithClearErrors() throws {
        let generator = Generator(weights: weights, stopTokenIds: [], batchSize: 2, contextLength: 16)
        let inputs: [[Int32]] = [[], TinyRandomModel.tokens(20, seed: 1), TinyRandomModel.tokens(16, seed: 2),
                                 TinyRandomModel.tokens(15, seed: 3), [3, 99], [4, 5]]
        let results = try generator.generate(prompts: inputs, exampleIndices: [10, 11, 12, 13, 14, 15],
                                             configuration: .greedy(maxNewTokens: 5))
        func message(_ result: Result<[Int32], KnowTuneError>) -> String? {
            if case let .failure(.invalidInput(text)) = result { return text }
            return nil
        }
        XCTAssertTrue(message(results[0])?.contains("example 10: the prompt is empty") ?? false, "\(results[0])")
        XCTAssertTrue(message(results[1])?.contains("example 11: the prompt has 20 tokens but the context holds 16") ?? false, "\(results[1])")
        XCTAssertTrue(message(results[2])?.contains("has 16 tokens") ?? false, "\(results[2])")
        XCTAssertTrue(message(results[4])?.contains("token id 99 is outside") ?? false, "\(results[4])")
        // 15 prompt tokens leave room for exactly one new token; the others are unaffected.
        XCTAssertEqual(try results[3].get().count, 1)
        XCTAssertEqual(try results[5].get().count, 5)
        // Configuration errors and mismatched arguments throw.
        XCTAssertThrowsError(try generator.generate(prompts: [[1]], exampleIndices: [], configuration: .greedy()))
        XCTAssertThrowsError(try generator.generate(prompts: [[1]], exampleIndices: [0],
                                                    configuration: GenerationConfiguration(temperature: 0)))
    }

    func testStopTokenEndsTheSequenceAndIsStrippedFromText() throws {
        let free = try run([prompts[0]], batchSize: 1, configuration: .greedy(maxNewTokens: 12))[0]
        XCTAssertEqual(free.count, 12)
        let stop = free[4]
        let firstStop = free.firstIndex(of: stop) ?? 0
        let stopped = try run([prompts[0]], batchSize: 1, stop: [stop], configuration: .greedy(maxNewTokens: 12))[0]
        XCTAssertEqual(stopped, Array(free[...firstStop]), "the stop id is included, as HF does")
        let generator = Generator(weights: weights, stopTokenIds: [stop])
        let tokenizer = LetterTokenizer()
        XCTAssertEqual(generator.text(of: stopped, tokenizer: tokenizer), tokenizer.decode(Array(free[..<firstStop])))
    }

    /// Greedy and sampled, with stop ids that end sequences at different steps: every prompt's output is the same
    /// alone, all together, or two at a time with slots reused (and in another order).
    func testOutputIsIndependentOfBatching() throws {
        for configuration in [GenerationConfiguration.greedy(maxNewTokens: 14),
                              GenerationConfiguration(temperature: 1.3, topP: 0.9, topK: 20, maxNewTokens: 14, repetitionPenalty: 1.2, seed: 7)] {
            // A stop id that ends the prompts' sequences at different steps (or not at all).
            let free = try prompts.indices.map { try run([prompts[$0]], indices: [$0], batchSize: 1, configuration: configuration)[0] }
            let candidates = free.joined().filter { token in Set(free.map { $0.firstIndex(of: token) ?? -1 }).count > 2 }
            let stop = try XCTUnwrap(candidates.first, "no token ends the sequences at different steps")
            let alone = try prompts.indices.map {
                try run([prompts[$0]], indices: [$0], batchSize: 1, stop: [stop], configuration: configuration)[0]
            }
            XCTAssertGreaterThan(Set(alone.map(\.count)).count, 1, "sequences should finish at different times")
            XCTAssertEqual(try run(prompts, batchSize: 5, stop: [stop], configuration: configuration), alone)
            XCTAssertEqual(try run(prompts, batchSize: 2, stop: [stop], configuration: configuration), alone)
            let order = [3, 0, 4, 2, 1]
            let shuffled = try run(order.map { prompts[$0] }, indices: order, batchSize: 3, stop: [stop], configuration: configuration)
            XCTAssertEqual(shuffled, order.map { alone[$0] })
        }
    }

    func testSeededSamplingIsReproducibleAndSeedDependent() throws {
        let configuration = GenerationConfiguration(temperature: 1.5, topP: 0.95, topK: 0, maxNewTokens: 20, seed: 3)
        let first = try run(prompts, batchSize: 4, configuration: configuration)
        XCTAssertEqual(try run(prompts, batchSize: 4, configuration: configuration), first)
        var otherSeed = configuration
        otherSeed.seed = 4
        XCTAssertNotEqual(try run(prompts, batchSize: 4, configuration: otherSeed), first)
        // The same prompt under another example index samples differently.
        let reindexed = try run(prompts, indices: [5, 6, 7, 8, 9], batchSize: 4, configuration: configuration)
        XCTAssertNotEqual(reindexed, first)
    }

    func testStreamingReportsEveryTokenAndCanStopASequence() throws {
        let generator = Generator(weights: weights, stopTokenIds: [], batchSize: 3)
        var streamed = [[Int32]](repeating: [], count: 3)
        var finishes: [Int: FinishReason] = [:]
        let results = try generator.generate(prompts: Array(prompts.prefix(3)), exampleIndices: [0, 1, 2],
                                             configuration: .greedy(maxNewTokens: 8)) { event in
            streamed[event.promptIndex].append(event.token)
            if let reason = event.finishReason { finishes[event.promptIndex] = reason }
            return event.promptIndex == 1 && streamed[1].count == 3 ? .stop : .proceed
        }
        let outputs = try results.map { try $0.get() }
        XCTAssertEqual(streamed, outputs)
        XCTAssertEqual(outputs.map(\.count), [8, 3, 8])
        XCTAssertEqual(finishes, [0: .maxNewTokens, 2: .maxNewTokens])
    }

    func testContextLimitEndsGeneration() throws {
        let outputs = try run([prompts[2], prompts[1]], batchSize: 2, configuration: .greedy(maxNewTokens: 50), contextLength: 12)
        XCTAssertEqual(outputs.map(\.count), [3, 10])
    }

    func testConfigurationDecodesLLaMAFactoryNamesWithDefaults() throws {
        let defaults = try JSONDecoder().decode(GenerationConfiguration.self, from: Data("{}".utf8))
        XCTAssertEqual(defaults, GenerationConfiguration())
        XCTAssertEqual([defaults.temperature, defaults.topP, defaults.repetitionPenalty], [0.95, 0.7, 1.0])
        XCTAssertEqual([defaults.topK, defaults.maxNewTokens], [50, 512])
        XCTAssertTrue(defaults.doSample)
        let json = #"{"do_sample": false, "max_new_tokens": 40, "top_k": 0, "top_p": 1.0, "temperature": 0.5, "repetition_penalty": 1.1, "seed": 7, "num_beams": 1}"#
        let decoded = try JSONDecoder().decode(GenerationConfiguration.self, from: Data(json.utf8))
        XCTAssertEqual(decoded, GenerationConfiguration(doSample: false, temperature: 0.5, topP: 1.0, topK: 0, maxNewTokens: 40,
                                                        repetitionPenalty: 1.1, seed: 7))
        let roundTrip = try JSONDecoder().decode(GenerationConfiguration.self, from: JSONEncoder().encode(decoded))
        XCTAssertEqual(roundTrip, decoded)
        for (bad, key) in [(#"{"top_p": 1.5}"#, "top_p"), (#"{"max_new_tokens": 0}"#, "max_new_tokens"),
                           (#"{"top-p": 0.5}"#, "top-p"), (#"{"num_beams": 4}"#, "num_beams")] {
            XCTAssertThrowsError(try JSONDecoder().decode(GenerationConfiguration.self, from: Data(bad.utf8))) { error in
                guard case let DecodingError.dataCorrupted(context) = error else { return XCTFail("\(bad): \(error)") }
                XCTAssertEqual(context.codingPath.last?.stringValue, key, bad)
            }
        }
    }
}

/// A tokenizer whose id n is the letter "a"+n mod 26, enough to check text assembly.
private struct LetterTokenizer: Tokenizer {
    func encode(_ text: String) -> [Int32] { text.unicodeScalars.map { Int32($0.value) - 97 } }
    func decode(_ ids: [Int32]) -> String {
        String(ids.compactMap { Unicode.Scalar(UInt32(97 + Int($0) % 26)).map(Character.init) })
    }
    var vocabularySize: Int { 53 }
    var eosTokenId: Int32 { 52 }
    var bosTokenId: Int32? { nil }
    var padTokenId: Int32? { nil }
    func tokenText(_ id: Int32) -> String? { decode([id]) }
    func tokenBytes(_ id: Int32) -> [UInt8]? { Array(decode([id]).utf8) }
}
