// Checks sequences that continue a shared prefix (PackedBatch.appendPrefix / append(continuing:)): the decoder's
// log-probs and LoRA gradients equal those of the full sequences packed separately (with and without activation
// recomputation, every projection adapted), and SequenceScorer's prompt sharing equals scoring each pair alone.
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class SharedPrefixTests: XCTestCase {
    let prompt = TinyModel.randomTokens(7, seed: 31)
    let responses = [TinyModel.randomTokens(5, seed: 32), TinyModel.randomTokens(8, seed: 33), TinyModel.randomTokens(1, seed: 34)]

    private func lossAndGradients(_ batch: PackedBatch, recomputing: Bool) -> (logProbabilities: [Float], gradients: [Float]) {
        let weights = TinyModel.weights()
        let lora = TinyModel.lora(LoRAConfiguration(rank: 2, alpha: 4, targets: ProjectionKind.allCases))
        let decoder = LlamaDecoder(weights: weights, maxPositions: 64)
        let plan = ActivationPlan(model: TinyModel.configuration, loraLayout: lora.layout, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.longestSequence, recomputesLayers: recomputing)
        let M = batch.targetCount
        let targetWeights = (0..<M).map { Float(1 + $0 % 4) / 10 }
        let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: lora, objective: HeadObjective(weights: targetWeights))
        let gradients = LoRABuffer(layout: lora.layout)
        decoder.backward(batch: batch, plan: plan, lora: lora, gradients: gradients)
        return (logProbabilities, Array(UnsafeBufferPointer(start: gradients.values, count: gradients.count)))
    }

    func testContinuationsOfASharedPrefixEqualTheFullSequences() {
        var separate = PackedBatch()
        for response in responses { separate.append(prompt: prompt, response: response) }
        var shared = PackedBatch()
        var prefixes: [[Int32]: Int] = [:]
        for response in responses { shared.append(prompt: prompt, response: response, sharing: &prefixes) }
        XCTAssertEqual(shared.prefixSequence, [-1, 0, 0, 0])
        XCTAssertEqual(shared.targetCount, separate.targetCount)
        XCTAssertEqual(shared.tokenCount, prompt.count - 1 + responses.reduce(0) { $0 + $1.count })
        XCTAssertEqual(shared.longestSequence, prompt.count + 7)
        XCTAssertEqual(shared.positions[shared.sequenceStarts[2]], Int32(prompt.count - 1))
        for recomputing in [false, true] {
            let expected = lossAndGradients(separate, recomputing: recomputing)
            let actual = lossAndGradients(shared, recomputing: recomputing)
            XCTAssertEqual(actual.logProbabilities.count, expected.logProbabilities.count)
            for (a, e) in zip(actual.logProbabilities, expected.logProbabilities) { XCTAssertEqual(a, e, accuracy: 1e-5 * max(1, abs(e))) }
            let difference = zip(actual.gradients, expected.gradients).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
            let norm = expected.gradients.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            XCTAssertGreaterThan(norm, 1e-3)
            XCTAssertLessThanOrEqual(difference / norm, 1e-5, "recomputing \(recomputing)")
        }
    }

    func testScorerSharingPromptsEqualsScoringEachPairAlone() throws {
        let decoder = LlamaDecoder(weights: TinyModel.weights(), maxPositions: 64)
        let other = TinyModel.randomTokens(4, seed: 35)
        let pairs = responses.map { (prompt: prompt, response: $0) } + [(prompt: other, response: responses[0]),
                                                                         (prompt: [other[0]], response: responses[1])]
        let alone = try pairs.flatMap { try SequenceScorer(decoder: decoder, lora: nil).score([$0]) }
        // A budget that splits the shared prompt's pairs over two forwards, and one that holds everything.
        for budget in [16, 2048] {
            let shared = try SequenceScorer(decoder: decoder, lora: nil, tokenBudget: budget).score(pairs, sharingPrompts: true)
            XCTAssertEqual(shared.count, alone.count)
            for (s, a) in zip(shared, alone) {
                XCTAssertEqual(s.ids, a.ids)
                XCTAssertEqual(s.promptLength, a.promptLength)
                XCTAssertEqual(s.responseLogProbabilities.count, a.responseLogProbabilities.count)
                for (x, y) in zip(s.responseLogProbabilities, a.responseLogProbabilities) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y))) }
                XCTAssertEqual(s.meanNegativeLogLikelihood, a.meanNegativeLogLikelihood, accuracy: 1e-5)
            }
        }
    }
}
