// Checks each logits processor of the sampler on hand-made logits with kept sets derived by hand from HF's
// definitions (transformers 4.38 `logits_process.py`), greedy tie-breaking, the multinomial draw, and that seeded
// sampling is reproducible.
import KnowTuneTensor
import XCTest
@testable import KnowTuneGeneration

final class SamplerTests: XCTestCase {
    /// Runs one processor on a copy of `values` and returns the result.
    private func processed(_ values: [Float], _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        var copy = values
        copy.withUnsafeMutableBufferPointer { body($0) }
        return copy
    }

    private func kept(_ scores: [Float]) -> [Int] { scores.indices.filter { scores[$0] > -.infinity } }

    /// The sampler's choice for a copy of `logits` (an empty array would be a test bug: −1).
    private func choose(_ sampler: Sampler, _ logits: [Float], previous: Set<Int32> = [],
                        generator: inout SplitMix64) -> Int32 {
        var copy = logits
        return copy.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return -1 }
            return sampler.nextToken(logits: base, vocabularySize: buffer.count, previousTokens: previous, generator: &generator)
        }
    }

    func testTopKKeepsTiesWithTheKthLargest() {
        // 2nd largest of [1, 3, 3, 2, 0] is 3: both 3s stay. 3rd largest is 2: the 3s and the 2 stay.
        XCTAssertEqual(kept(processed([1, 3, 3, 2, 0]) { Sampler.applyTopK($0, k: 2) }), [1, 2])
        XCTAssertEqual(kept(processed([1, 3, 3, 2, 0]) { Sampler.applyTopK($0, k: 3) }), [1, 2, 3])
        XCTAssertEqual(kept(processed([1, 3, 3, 2, 0]) { Sampler.applyTopK($0, k: 1) }), [1, 2])
        // k ≥ V keeps everything; kept values are unchanged.
        XCTAssertEqual(processed([1, 3, 3, 2, 0]) { Sampler.applyTopK($0, k: 50) }, [1, 3, 3, 2, 0])
        XCTAssertEqual(processed([5, 1, 4]) { Sampler.applyTopK($0, k: 2) }, [5, -.infinity, 4])
    }

    func testTopPRemovesTheLowMassTail() {
        // softmax([1,2,3,4]) = [0.0321, 0.0871, 0.2369, 0.6439]; ascending cumulative 0.0321, 0.1192, 0.3561, 1:
        // with p = 0.7 the first two are ≤ 0.3 and go.
        XCTAssertEqual(kept(processed([1, 2, 3, 4]) { Sampler.applyTopP($0, p: 0.7) }), [2, 3])
        // Same logits in another order: the kept set follows the ids.
        XCTAssertEqual(kept(processed([3, 1, 4, 2]) { Sampler.applyTopP($0, p: 0.7) }), [0, 2])
        // p = 0.9 (1 − p = 0.1): only 0.0321 goes.
        XCTAssertEqual(kept(processed([1, 2, 3, 4]) { Sampler.applyTopP($0, p: 0.9) }), [1, 2, 3])
    }

    func testTopPBoundaryRemovesATokenWhoseCumulativeEqualsOneMinusP() {
        // Four equal logits: probabilities 0.25 each, cumulative 0.25, 0.5, 0.75, 1 (all exact in fp32).
        // p = 0.75: 1 − p = 0.25 exactly, and HF removes cumulative ≤ 0.25, so exactly one token goes; equal scores
        // leave from the highest id.
        XCTAssertEqual(kept(processed([0, 0, 0, 0]) { Sampler.applyTopP($0, p: 0.75) }), [0, 1, 2])
        // p = 0.5: cumulative 0.25 and 0.5 are ≤ 0.5, two go.
        XCTAssertEqual(kept(processed([0, 0, 0, 0]) { Sampler.applyTopP($0, p: 0.5) }), [0, 1])
        // p = 0.76: 0.25 > 0.24, nothing goes.
        XCTAssertEqual(kept(processed([0, 0, 0, 0]) { Sampler.applyTopP($0, p: 0.76) }), [0, 1, 2, 3])
    }

    func testTopPAlwaysKeepsTheMostLikelyToken() {
        XCTAssertEqual(kept(processed([0, 10, 3]) { Sampler.applyTopP($0, p: 0) }), [1])
        XCTAssertEqual(kept(processed([0, 0]) { Sampler.applyTopP($0, p: 0) }), [0])
        // Tokens already at −inf (from top-k) have probability 0 and are not counted.
        XCTAssertEqual(kept(processed([-.infinity, 1, 2, 3, 4]) { Sampler.applyTopP($0, p: 0.7) }), [3, 4])
    }

    func testTemperatureRepetitionPenaltyAndInfNanRemoval() {
        XCTAssertEqual(processed([1, -2, 3]) { Sampler.applyTemperature($0, temperature: 0.5) }, [2, -4, 6])
        // Penalty 2 on ids {0, 1}: positive scores halve, negative ones double; id 3 is untouched.
        XCTAssertEqual(processed([2, -2, 1, 4]) { Sampler.applyRepetitionPenalty($0, penalty: 2, tokens: [0, 1]) }, [1, -4, 1, 4])
        XCTAssertEqual(processed([.nan, .infinity, -.infinity, 1]) { Sampler.removeInfinityAndNaN($0) },
                       [0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1])
    }

    func testGreedyTakesTheLowestIdAmongEqualMaxima() {
        var generator = SplitMix64(seed: 1)
        let sampler = Sampler(configuration: .greedy())
        XCTAssertEqual(choose(sampler, [1, 5, 5, 2], generator: &generator), 1)
        XCTAssertEqual(generator, SplitMix64(seed: 1), "greedy decoding draws nothing")
        // A repetition penalty applies to greedy decoding too (HF runs processors in greedy search).
        let penalized = Sampler(configuration: GenerationConfiguration(doSample: false, repetitionPenalty: 4))
        XCTAssertEqual(choose(penalized, [1, 5, 4, 2], previous: [1], generator: &generator), 2)
    }

    func testDrawFollowsTheCumulativeDistribution() {
        // Probabilities [0, 0.5, 0.5]: u below 0.5 picks id 1, above picks id 2, id 0 never.
        let scores: [Float] = [-.infinity, 0, 0]
        XCTAssertEqual(processedDraw(scores, 0.0), 1)
        XCTAssertEqual(processedDraw(scores, 0.25), 1)
        XCTAssertEqual(processedDraw(scores, 0.75), 2)
        XCTAssertEqual(processedDraw(scores, 0.999_999), 2)
    }

    private func processedDraw(_ values: [Float], _ u: Double) -> Int32 {
        var copy = values
        return copy.withUnsafeMutableBufferPointer { Sampler.draw($0, uniform: u) }
    }

    func testDefaultSamplingStaysInTheKeptSetAndIsReproducible() {
        // 60 logits rising by 0.1: top-k 50 removes ids 0…9 whatever the rest does, and top-p 0.7 then keeps a top
        // slice, so draws never fall below id 10.
        let logits = (0..<60).map { Float($0) * 0.1 }
        func draws(seed: UInt64, exampleIndex: Int) -> [Int32] {
            var generator = Sampler.generator(seed: seed, exampleIndex: exampleIndex)
            let sampler = Sampler(configuration: GenerationConfiguration(seed: seed))
            return (0..<400).map { _ in choose(sampler, logits, generator: &generator) }
        }
        let first = draws(seed: 42, exampleIndex: 3)
        XCTAssertEqual(first, draws(seed: 42, exampleIndex: 3))
        XCTAssertNotEqual(first, draws(seed: 42, exampleIndex: 4))
        XCTAssertNotEqual(first, draws(seed: 43, exampleIndex: 3))
        XCTAssertGreaterThanOrEqual(first.min() ?? 0, 10)
        // Top-p then keeps the smallest top set with mass above 0.7 of the temperature-scaled top 50; its lowest id
        // is recomputed here from the definition, and nothing below it is ever drawn.
        let scaled = logits.map { $0 / Float(0.95) }
        let top = scaled[10...].map { exp(Double($0 - scaled[59])) }
        let total = top.reduce(0, +)
        var cumulative = 0.0
        var smallestKept = 10
        for (offset, value) in top.enumerated() {
            cumulative += value / total
            if Float(cumulative) <= Float(1 - 0.7) { smallestKept = 10 + offset + 1 }
        }
        XCTAssertGreaterThan(smallestKept, 10)
        XCTAssertGreaterThanOrEqual(first.min() ?? 0, Int32(smallestKept))
        XCTAssertGreaterThan(Set(first).count, 5, "sampling, not greedy")
    }
}
