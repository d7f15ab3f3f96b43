// Checks the LoRA backward pass against central finite differences on a tiny random model (all seven projection
// kinds, GQA, untied head, packed sequences of different lengths, with and without dropout), and that packing
// sequences together changes nothing.
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class LoRAGradientTests: XCTestCase {
    private func makeBatch() -> PackedBatch {
        var batch = PackedBatch()
        batch.append(prompt: TinyModel.randomTokens(5, seed: 1), response: TinyModel.randomTokens(6, seed: 2), exampleIndex: 0)
        batch.append(prompt: TinyModel.randomTokens(3, seed: 3), response: TinyModel.randomTokens(9, seed: 4), exampleIndex: 1)
        batch.append(prompt: TinyModel.randomTokens(7, seed: 5), response: TinyModel.randomTokens(2, seed: 6), exampleIndex: 2)
        return batch
    }

    /// Σ w·(−log p) with fixed, unequal per-target weights.
    private func loss(_ decoder: LlamaDecoder, _ plan: ActivationPlan, _ batch: PackedBatch, _ lora: LoRABuffer,
                      _ weights: [Float], _ dropout: LoRADropout?) -> Double {
        let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: lora, dropout: dropout)
        return zip(logProbabilities, weights).reduce(0.0) { $0 - Double($1.0) * Double($1.1) }
    }

    private func checkFiniteDifferences(dropoutProbability: Float) throws {
        let weights = TinyModel.weights()
        let decoder = LlamaDecoder(weights: weights, maxPositions: 64)
        let configuration = LoRAConfiguration(rank: 2, alpha: 5, dropout: dropoutProbability, targets: ProjectionKind.allCases)
        let lora = TinyModel.lora(configuration)
        let batch = makeBatch()
        let plan = ActivationPlan(model: TinyModel.configuration, loraLayout: lora.layout, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.longestSequence)
        let targetWeights = (0..<batch.targetCount).map { Float(1 + $0 % 3) / 10 }
        let dropout = dropoutProbability > 0 ? LoRADropout(probability: dropoutProbability, seed: 3, step: 5) : nil

        _ = decoder.forward(batch: batch, plan: plan, lora: lora, dropout: dropout, objective: HeadObjective(weights: targetWeights))
        let gradients = LoRABuffer(layout: lora.layout)
        decoder.backward(batch: batch, plan: plan, lora: lora, gradients: gradients, dropout: dropout)

        // Every factor of every projection kind and layer, a few entries each.
        var checked = 0
        var worst = 0.0
        for slot in lora.layout.slots {
            let r = configuration.rank
            for offset in [slot.aOffset, slot.aOffset + r * slot.inFeatures - 1, slot.bOffset, slot.bOffset + slot.outFeatures * r - 1] {
                let original = lora.values[offset]
                func centralDifference(_ h: Float) -> Double {
                    lora.values[offset] = original + h
                    let plus = loss(decoder, plan, batch, lora, targetWeights, dropout)
                    lora.values[offset] = original - h
                    let minus = loss(decoder, plan, batch, lora, targetWeights, dropout)
                    lora.values[offset] = original
                    return (plus - minus) / Double(2 * h)
                }
                // Richardson extrapolation cancels the O(h²) truncation term, which fp32 forces to be large.
                let numeric = (4 * centralDifference(1e-2) - centralDifference(2e-2)) / 3
                let analytic = Double(gradients.values[offset])
                let error = abs(numeric - analytic) / max(abs(numeric), 1e-2)
                worst = max(worst, error)
                XCTAssertLessThan(error, 1e-2, "\(slot.kind.moduleName) layer \(slot.layer) offset \(offset): analytic \(analytic) numeric \(numeric)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 2 * 7 * 4)
        // The gradient must not be trivially zero anywhere.
        XCTAssertGreaterThan(gradients.sumOfSquares(), 1e-6)
    }

    func testGradientsMatchFiniteDifferences() throws { try checkFiniteDifferences(dropoutProbability: 0) }

    func testGradientsMatchFiniteDifferencesWithDropout() throws { try checkFiniteDifferences(dropoutProbability: 0.3) }

    func testPackedBatchEqualsSequencesRunAlone() throws {
        let weights = TinyModel.weights()
        let decoder = LlamaDecoder(weights: weights, maxPositions: 64)
        let lora = TinyModel.lora(LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value, .down]))
        let batch = makeBatch()
        let plan = ActivationPlan(model: TinyModel.configuration, loraLayout: lora.layout, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.longestSequence)
        let packedLogProbs = decoder.forward(batch: batch, plan: plan, lora: lora,
                                             objective: HeadObjective(weights: [Float](repeating: 1, count: batch.targetCount)))
        let packedGradients = LoRABuffer(layout: lora.layout)
        decoder.backward(batch: batch, plan: plan, lora: lora, gradients: packedGradients)

        var aloneLogProbs: [Float] = []
        let aloneGradients = LoRABuffer(layout: lora.layout)
        for b in 0..<batch.sequenceCount {
            var single = PackedBatch()
            let range = batch.sequenceStarts[b]..<batch.sequenceStarts[b + 1]
            let ids = Array(batch.tokens[range])
            let labels = [Int32(-100)] + Array(batch.targets[range].dropLast()).map { $0 < 0 ? -100 : $0 }
            single.append(ids: ids, labels: labels)
            let logProbs = decoder.forward(batch: single, plan: plan, lora: lora,
                                           objective: HeadObjective(weights: [Float](repeating: 1, count: single.targetCount)))
            decoder.backward(batch: single, plan: plan, lora: lora, gradients: aloneGradients)
            aloneLogProbs += logProbs
        }
        assertClose(packedLogProbs, aloneLogProbs, atol: 1e-5, "log-probs")
        assertClose(packedGradients.array, aloneGradients.array, atol: 1e-5, rtol: 1e-4, "gradients")
    }

    func testDropoutMaskDoesNotDependOnBatchComposition() {
        let dropout = LoRADropout(probability: 0.5, seed: 9, step: 2)
        let input = [Float](repeating: 1, count: 4 * 8)
        var alone = PackedBatch()
        alone.append(prompt: [1, 2], response: [3, 4], exampleIndex: 5)
        var together = PackedBatch()
        together.append(prompt: [7, 7, 7], response: [7], exampleIndex: 4)
        together.append(prompt: [1, 2], response: [3, 4], exampleIndex: 5)
        var outputAlone = [Float](repeating: 0, count: 4 * 8)
        var outputTogether = [Float](repeating: 0, count: 8 * 8)
        let inputTogether = [Float](repeating: 1, count: 8 * 8)
        outputAlone.withUnsafeMutableBufferPointer { o in
            input.withUnsafeBufferPointer { i in
                dropout.apply(output: o.baseAddress!, input: i.baseAddress!, width: 8, batch: alone, layer: 1, kind: .value)
            }
        }
        outputTogether.withUnsafeMutableBufferPointer { o in
            inputTogether.withUnsafeBufferPointer { i in
                dropout.apply(output: o.baseAddress!, input: i.baseAddress!, width: 8, batch: together, layer: 1, kind: .value)
            }
        }
        XCTAssertEqual(outputAlone, Array(outputTogether[32...]))
        let kept = outputAlone.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { $0 == 2 }, "kept values are scaled by 1/(1−p)")
        XCTAssertGreaterThan(kept.count, 4)
        XCTAssertLessThan(kept.count, 28)
    }
}
