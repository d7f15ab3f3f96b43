// Checks the engine on the real SmolLM2-135M against HF transformers + PEFT (Tests/Fixtures/golden), at the tolerances
// that Tests/Fixtures/golden/README.md gives for an fp32 implementation.
import Foundation
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneData
@testable import KnowTuneModel

final class GoldenModelTests: XCTestCase {
    func testModelShapesAndParameterCount() throws {
        let model = try GoldenFixtures.smolLM2()
        let c = model.configuration
        XCTAssertEqual([c.layerCount, c.hiddenSize, c.headCount, c.kvHeadCount, c.intermediateSize, c.vocabularySize],
                       [30, 576, 9, 3, 1536, 49152])
        XCTAssertEqual(c.ropeTheta, 100000)
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.parameterCount, 134_515_008)
    }

    func testLastPromptLogitsMatchFP64Reference() throws {
        let model = try GoldenFixtures.smolLM2()
        let (prompt, response) = try GoldenFixtures.forwardSequence()
        let reference = try NumpyArchive.parseNPY(
            Data(contentsOf: TestPaths.golden.appendingPathComponent("forward_last_prompt_logits.npy")))
        // Position n_prompt−1 predicts the first response token: it is the first target row.
        var batch = PackedBatch()
        batch.append(prompt: prompt, response: response)
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: 256)
        let plan = ActivationPlan(model: model.configuration, loraLayout: nil, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.tokenCount)
        decoder.forward(batch: batch, plan: plan, lora: nil)
        let logits = decoder.logitsOfLastForward(plan: plan, targetCount: batch.targetCount)
        let first = Array(logits[0..<model.configuration.vocabularySize])
        assertClose(first, reference.values, atol: 1e-3, "logits at the last prompt position")
        XCTAssertEqual(first.indices.max(by: { first[$0] < first[$1] }), 31413)
    }

    func testPerPositionArgmaxAndResponseCrossEntropy() throws {
        let model = try GoldenFixtures.smolLM2()
        let forward = try TestPaths.goldenJSON("forward.json")
        let full = GoldenFixtures.int32Array(forward["full_ids"])
        let expectedArgmax = GoldenFixtures.int32Array(forward["argmax_per_position_fp64"])
        // Every position gets a target (a dummy token closes the sequence so the last real position has one too).
        var batch = PackedBatch()
        batch.append(ids: full + [0], labels: [-100] + Array(full.dropFirst()) + [0])
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: 256)
        let plan = ActivationPlan(model: model.configuration, loraLayout: nil, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.tokenCount)
        let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: nil)
        let V = model.configuration.vocabularySize
        let logits = decoder.logitsOfLastForward(plan: plan, targetCount: full.count)
        var argmax: [Int32] = []
        for row in 0..<full.count {
            let slice = logits[(row * V)..<((row + 1) * V)]
            let best = slice.indices.max(by: { slice[$0] < slice[$1] }) ?? row * V
            argmax.append(Int32(best - row * V))
        }
        XCTAssertEqual(argmax, expectedArgmax, "per-position argmax")
        // Mean CE over the response targets (positions n_prompt−1 … n_full−2).
        let nPrompt = (forward["n_prompt"] as? Int) ?? 0
        let responseLogProbs = Array(logProbabilities[(nPrompt - 1)..<(full.count - 1)])
        let expected = GoldenFixtures.floatArray(forward["target_logprob_per_response_token_fp64"])
        assertClose(responseLogProbs, expected, atol: 2e-3, "per-token response log-probs")
        let meanCE = -responseLogProbs.reduce(0.0) { $0 + Double($1) } / Double(responseLogProbs.count)
        XCTAssertEqual(meanCE, GoldenFixtures.double(forward["mean_response_ce_fp64"]), accuracy: 1e-4)
    }

    func testHiddenStatesAtLastPromptPosition() throws {
        let model = try GoldenFixtures.smolLM2()
        let forward = try TestPaths.goldenJSON("forward.json")
        let (prompt, response) = try GoldenFixtures.forwardSequence()
        var batch = PackedBatch()
        batch.append(prompt: prompt, response: response)
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: 256)
        let plan = ActivationPlan(model: model.configuration, loraLayout: nil, tokenCapacity: batch.tokenCount,
                                  sequenceCapacity: batch.tokenCount)
        decoder.forward(batch: batch, plan: plan, lora: nil)
        let C = model.configuration.hiddenSize, row = prompt.count - 1
        let entries = forward["hidden_states_last_prompt_pos"] as? [[String: Any]] ?? []
        XCTAssertEqual(entries.count, 31)
        for (index, entry) in entries.enumerated() {
            let pointer: UnsafeMutablePointer<Float>
            switch index {
            case 0..<30: pointer = plan.residualInput[index] + row * C
            default: pointer = plan.finalNormed  // the first target row is the last prompt position
            }
            let values = Array(UnsafeBufferPointer(start: pointer, count: C))
            let norm = values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let expectedNorm = GoldenFixtures.double(entry["l2_fp64"])
            XCTAssertEqual(norm, expectedNorm, accuracy: expectedNorm * 1e-4, "hidden state \(index) norm")
            assertClose(Array(values.prefix(8)), GoldenFixtures.floatArray(entry["first8_fp64"]),
                        atol: Float(expectedNorm) * 2e-5, "hidden state \(index) first values")
        }
    }

    func testLoRAQueryValueLossAndGradientsMatchPEFT() throws {
        let model = try GoldenFixtures.smolLM2()
        let golden = try TestPaths.goldenJSON("lora.json")
        let (prompt, response) = try GoldenFixtures.forwardSequence()
        let layout = LoRALayout(model: model.configuration, lora: LoRAConfiguration(rank: 8, alpha: 16, targets: [.query, .value]))
        XCTAssertEqual(layout.totalCount, 460_800)
        let lora = LoRABuffer(layout: layout)
        GoldenFixtures.fillPattern(lora)
        let result = GoldenFixtures.lossAndGradients(model: model, prompt: prompt, response: response, lora: lora)
        XCTAssertEqual(result.loss, GoldenFixtures.double(golden["lora_loss_fp64"]), accuracy: 1e-4)
        guard let gradients = result.gradients else { return XCTFail("no gradients") }
        let reference = try NumpyArchive.readNPZ(path: TestPaths.golden.appendingPathComponent("lora_grads.npz").path)
        XCTAssertEqual(reference.count, 120)
        var all: [Float] = [], allExpected: [Float] = []
        for tensor in layout.namedTensors {
            guard let expected = reference[tensor.name] else { XCTFail("no reference for \(tensor.name)"); continue }
            XCTAssertEqual(expected.shape, tensor.shape, tensor.name)
            let actual = Array(UnsafeBufferPointer(start: gradients.values + tensor.offset, count: expected.values.count))
            let comparison = compareTensors(actual, expected.values, atol: 0)
            XCTAssertLessThanOrEqual(comparison.relativeL2Error, 5e-3, "\(tensor.name): \(comparison)")
            all += actual
            allExpected += expected.values
        }
        XCTAssertLessThanOrEqual(compareTensors(all, allExpected, atol: 0).relativeL2Error, 1e-3, "global gradient")
        let norm = gradients.sumOfSquares().squareRoot()
        XCTAssertEqual(norm, GoldenFixtures.double(golden["grad_global_l2_fp64"]), accuracy: 3.5e-4)
    }

    func testLoRAAllTargetsLossAndGradientNorms() throws {
        let model = try GoldenFixtures.smolLM2()
        let golden = try TestPaths.goldenJSON("lora_all_targets.json")
        let (prompt, response) = try GoldenFixtures.forwardSequence()
        let layout = LoRALayout(model: model.configuration,
                                lora: LoRAConfiguration(rank: 4, alpha: 8, targets: ProjectionKind.allCases))
        XCTAssertEqual(layout.totalCount, 1_221_120)
        let lora = LoRABuffer(layout: layout)
        GoldenFixtures.fillPattern(lora)
        let result = GoldenFixtures.lossAndGradients(model: model, prompt: prompt, response: response, lora: lora)
        XCTAssertEqual(result.loss, GoldenFixtures.double(golden["lora_loss_fp64"]), accuracy: 1e-4)
        guard let gradients = result.gradients else { return XCTFail("no gradients") }
        let perTensor = golden["per_tensor"] as? [String: [String: Any]] ?? [:]
        XCTAssertEqual(perTensor.count, 420)
        for tensor in layout.namedTensors {
            let count = tensor.shape.reduce(1, *)
            var sum = 0.0
            for i in 0..<count { sum += Double(gradients.values[tensor.offset + i]) * Double(gradients.values[tensor.offset + i]) }
            let expected = GoldenFixtures.double(perTensor[tensor.name]?["l2_fp64"])
            XCTAssertEqual(sum.squareRoot(), expected, accuracy: expected * 5e-3, tensor.name)
        }
        let global = gradients.sumOfSquares().squareRoot()
        let expectedGlobal = GoldenFixtures.double(golden["grad_global_l2_fp64"])
        XCTAssertEqual(global, expectedGlobal, accuracy: expectedGlobal * 1e-3)
    }

    func testDPOLogProbabilitySumsMatchReference() throws {
        let model = try GoldenFixtures.smolLM2()
        let golden = try TestPaths.goldenJSON("dpo.json")
        let fp64 = golden["fp64"] as? [String: Any] ?? [:]
        let prompt = GoldenFixtures.int32Array(golden["prompt_ids"])
        let chosen = GoldenFixtures.int32Array(golden["chosen_response_ids"])
        let rejected = GoldenFixtures.int32Array(golden["rejected_response_ids"])
        let eos: [Int32] = chosen.last == 2 ? [] : [2]
        let layout = LoRALayout(model: model.configuration, lora: LoRAConfiguration(rank: 8, alpha: 16, targets: [.query, .value]))
        let lora = LoRABuffer(layout: layout)
        GoldenFixtures.fillPattern(lora)
        func logProbabilitySum(_ response: [Int32], _ adapter: LoRABuffer?) -> Double {
            GoldenFixtures.lossAndGradients(model: model, prompt: prompt, response: response + eos, lora: adapter)
                .logProbabilities.reduce(0.0) { $0 + Double($1) }
        }
        XCTAssertEqual(logProbabilitySum(chosen, lora), GoldenFixtures.double(fp64["policy_chosen_logp"]), accuracy: 5e-3)
        XCTAssertEqual(logProbabilitySum(rejected, lora), GoldenFixtures.double(fp64["policy_rejected_logp"]), accuracy: 5e-3)
        XCTAssertEqual(logProbabilitySum(chosen, nil), GoldenFixtures.double(fp64["ref_chosen_logp"]), accuracy: 5e-3)
        XCTAssertEqual(logProbabilitySum(rejected, nil), GoldenFixtures.double(fp64["ref_rejected_logp"]), accuracy: 5e-3)
    }

    /// Greedy decoding by full recomputation (no KV cache): the reference for the engine's forward. The cached
    /// decoder of the generation layer is checked against the same file.
    func testGreedyTokensByRecomputation() throws {
        let model = try GoldenFixtures.smolLM2()
        let golden = try TestPaths.goldenJSON("greedy.json")
        let cases = golden["cases"] as? [[String: Any]] ?? []
        XCTAssertEqual(cases.count, 2)
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: 256)
        for entry in cases {
            let prompt = GoldenFixtures.int32Array(entry["prompt_ids"])
            let expected = GoldenFixtures.int32Array(entry["generated_ids"])
            var sequence = prompt
            let plan = ActivationPlan(model: model.configuration, loraLayout: nil, tokenCapacity: prompt.count + expected.count + 1,
                                      sequenceCapacity: prompt.count + expected.count + 1)
            for _ in 0..<expected.count {
                var batch = PackedBatch()
                batch.append(ids: sequence + [0], labels: [Int32](repeating: -100, count: sequence.count) + [0])
                decoder.forward(batch: batch, plan: plan, lora: nil)
                let logits = decoder.logitsOfLastForward(plan: plan, targetCount: 1)
                sequence.append(Int32(logits.indices.max(by: { logits[$0] < logits[$1] }) ?? 0))
            }
            XCTAssertEqual(Array(sequence.dropFirst(prompt.count)), expected)
        }
    }
}
