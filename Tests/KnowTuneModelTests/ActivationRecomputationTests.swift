// Checks activation recomputation (gradient checkpointing): the LoRA gradients and log-probs equal those of the pass
// that keeps every layer's activations, bit for bit (the same kernels run on the same inputs), with and without
// dropout and with every projection adapted; and the plan keeps C floats per layer and token plus one layer's set.
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class ActivationRecomputationTests: XCTestCase {
    private func gradients(recomputing: Bool, dropoutProbability: Float, targets: [ProjectionKind])
        -> (logProbabilities: [Float], gradients: [Float]) {
        let decoder = LlamaDecoder(weights: TinyModel.weights(), maxPositions: 64)
        let lora = TinyModel.lora(LoRAConfiguration(rank: 2, alpha: 5, dropout: dropoutProbability, targets: targets))
        var batch = PackedBatch()
        batch.append(prompt: TinyModel.randomTokens(5, seed: 1), response: TinyModel.randomTokens(6, seed: 2), exampleIndex: 0)
        batch.append(prompt: TinyModel.randomTokens(8, seed: 3), response: TinyModel.randomTokens(4, seed: 4), exampleIndex: 1)
        let plan = ActivationPlan(model: TinyModel.configuration, loraLayout: lora.layout, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.longestSequence, recomputesLayers: recomputing)
        let dropout = dropoutProbability > 0 ? LoRADropout(probability: dropoutProbability, seed: 3, step: 2) : nil
        let weights = (0..<batch.targetCount).map { Float(1 + $0 % 4) / 8 }
        let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: lora, dropout: dropout,
                                               objective: HeadObjective(weights: weights))
        let gradients = LoRABuffer(layout: lora.layout)
        decoder.backward(batch: batch, plan: plan, lora: lora, gradients: gradients, dropout: dropout)
        return (logProbabilities, Array(UnsafeBufferPointer(start: gradients.values, count: gradients.count)))
    }

    func testRecomputedGradientsEqualSavedOnes() {
        for (dropout, targets) in [(Float(0), [ProjectionKind.query, .value]), (0, ProjectionKind.allCases), (0.3, ProjectionKind.allCases)] {
            let saved = gradients(recomputing: false, dropoutProbability: dropout, targets: targets)
            let recomputed = gradients(recomputing: true, dropoutProbability: dropout, targets: targets)
            XCTAssertEqual(recomputed.logProbabilities, saved.logProbabilities)
            XCTAssertEqual(recomputed.gradients, saved.gradients, "dropout \(dropout), \(targets.count) targets")
            XCTAssertGreaterThan(saved.gradients.map { $0 * $0 }.reduce(0, +), 1e-8)
        }
    }

    /// Saved activations shrink from 4·C + 2·K + 2·F (+ norms, attention LSE, LoRA hidden) per layer and token to C,
    /// plus one layer's full set: the plan's byte count says so exactly.
    func testPlanKeepsOnlyLayerInputs() {
        let c = TinyModel.configuration
        let layout = LoRALayout(model: c, lora: LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value]))
        let N = 40, T = 20, r = 2
        let full = ActivationPlan.byteCount(model: c, loraLayout: layout, tokenCapacity: N, sequenceCapacity: T, recomputesLayers: false)
        let recomputed = ActivationPlan.byteCount(model: c, loraLayout: layout, tokenCapacity: N, sequenceCapacity: T, recomputesLayers: true)
        let perLayerAndToken = 3 * c.hiddenSize + 2 * c.kvDimension + 2 * c.intermediateSize + 2 + c.headCount + 2 * r
        XCTAssertEqual(full - recomputed, 4 * (c.layerCount - 1) * N * perLayerAndToken)
        let allocated = ActivationPlan(model: c, loraLayout: layout, tokenCapacity: N, sequenceCapacity: T, recomputesLayers: true)
        XCTAssertEqual(allocated.byteCount, recomputed)
    }
}
