// Implements the LLaMA decoder's training-time forward pass and a backward pass that computes only the LoRA
// gradients (frozen weights get none), over a PackedBatch with no padding, in fp32 with every large product
// through sgemm (FrozenLinear's bf16 / f16 products for a 16-bit base); does not own activation memory
// (ActivationPlan) or do incremental decoding (generation).
//
// Semantics follow transformers `LlamaForCausalLM` + PEFT LoRA: pre-norm blocks, RMSNorm, RoPE (rotate_half),
// grouped-query attention, SwiGLU MLP, y = W·x + s·B·(A·dropout(x)) on adapted projections, and a cross-entropy
// head whose logits are computed only for rows that have a target.
import Foundation
import KnowTuneTensor

/// What the head does with the targets' log-probabilities.
public struct HeadObjective {
    /// Per-target weights w (target order) of the loss Σ w·(−log p). nil: compute log-probs only (backward must
    /// then be given weights, and recomputes the logits).
    public var weights: [Float]?
    public init(weights: [Float]?) { self.weights = weights }
}

public final class LlamaDecoder {
    public let configuration: LlamaConfiguration
    public let weights: LlamaWeights
    public let rotary: RotaryEmbedding

    public init(weights: LlamaWeights, maxPositions: Int? = nil) {
        configuration = weights.configuration
        self.weights = weights
        rotary = RotaryEmbedding(headDimension: weights.configuration.headDimension,
                                 theta: weights.configuration.ropeTheta,
                                 maxPositions: maxPositions ?? max(weights.configuration.maxPositionEmbeddings, 1))
    }

    // MARK: - Projections with optional LoRA

    /// out[N, o] (+)= in[N, i]·Wᵀ + s·(dropout(in)·Aᵀ)·Bᵀ, saving u = dropout(in)·Aᵀ. With `savingOnly`, computes u
    /// alone (what backward needs of a projection whose output a recomputation does not need).
    private func project(_ kind: ProjectionKind, layer: Int, input: UnsafeMutablePointer<Float>,
                         output: UnsafeMutablePointer<Float>, accumulate: Bool, rows: Int,
                         plan: ActivationPlan, lora: LoRABuffer?, dropout: LoRADropout?, batch: PackedBatch,
                         savingOnly: Bool = false) {
        let (outFeatures, inFeatures) = kind.shape(configuration)
        if !savingOnly {
            FrozenLinear.linear(output: output, input: input, weight: weights.frozenProjection(layer, kind), rows: rows,
                                inFeatures: inFeatures, outFeatures: outFeatures, accumulate: accumulate)
        }
        guard let lora, let slot = lora.layout.slot(layer: layer, kind: kind),
              let hiddenBuffer = plan.loraHidden[layer][kind.rawValue] else { return }
        let r = lora.layout.configuration.rank
        var loraInput = UnsafePointer(input)
        if let dropout, dropout.isActive {
            dropout.apply(output: plan.dropoutInput, input: input, width: inFeatures, batch: batch, layer: layer, kind: kind)
            loraInput = UnsafePointer(plan.dropoutInput)
        }
        BLAS.linear(output: hiddenBuffer, input: loraInput, weight: lora.values + slot.aOffset, rows: rows,
                    inFeatures: inFeatures, outFeatures: r)
        if savingOnly { return }
        BLAS.linear(output: output, input: hiddenBuffer, weight: lora.values + slot.bOffset, rows: rows,
                    inFeatures: r, outFeatures: outFeatures, alpha: lora.layout.configuration.scaling, accumulate: true)
    }

    /// dIn (+)= dOut·W + (s·dOut·B)·A (masked under dropout); dA, dB accumulate into `gradients`.
    private func projectBackward(_ kind: ProjectionKind, layer: Int, input: UnsafeMutablePointer<Float>,
                                 outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>,
                                 accumulate: Bool, rows: Int, plan: ActivationPlan, lora: LoRABuffer?,
                                 gradients: LoRABuffer?, dropout: LoRADropout?, batch: PackedBatch) {
        let (outFeatures, inFeatures) = kind.shape(configuration)
        FrozenLinear.linearInputGradient(inputGradient: inputGradient, outputGradient: outputGradient,
                                         weight: weights.frozenProjection(layer, kind), rows: rows, inFeatures: inFeatures,
                                         outFeatures: outFeatures, accumulate: accumulate)
        guard let lora, let gradients, let slot = lora.layout.slot(layer: layer, kind: kind),
              let hiddenBuffer = plan.loraHidden[layer][kind.rawValue] else { return }
        let r = lora.layout.configuration.rank
        let s = lora.layout.configuration.scaling
        var loraInput = UnsafePointer(input)
        let dropoutActive = dropout?.isActive ?? false
        if let dropout, dropoutActive {
            dropout.apply(output: plan.dropoutInput, input: input, width: inFeatures, batch: batch, layer: layer, kind: kind)
            loraInput = UnsafePointer(plan.dropoutInput)
        }
        // dB[o, r] += s·dOutᵀ·u
        BLAS.linearWeightGradient(weightGradient: gradients.values + slot.bOffset, outputGradient: outputGradient,
                                  input: hiddenBuffer, rows: rows, inFeatures: r, outFeatures: outFeatures, alpha: s)
        // dU[N, r] = s·dOut·B
        BLAS.linearInputGradient(inputGradient: plan.loraScratch, outputGradient: outputGradient,
                                 weight: lora.values + slot.bOffset, rows: rows, inFeatures: r, outFeatures: outFeatures,
                                 alpha: s, accumulate: false)
        // dA[r, i] += dUᵀ·dropout(x)
        BLAS.linearWeightGradient(weightGradient: gradients.values + slot.aOffset, outputGradient: plan.loraScratch,
                                  input: loraInput, rows: rows, inFeatures: inFeatures, outFeatures: r)
        if let dropout, dropoutActive {
            // dx += mask/(1−p) ⊙ (dU·A): the same mask applied to the gradient.
            BLAS.linearInputGradient(inputGradient: plan.dropoutGradient, outputGradient: plan.loraScratch,
                                     weight: lora.values + slot.aOffset, rows: rows, inFeatures: inFeatures, outFeatures: r,
                                     accumulate: false)
            dropout.apply(output: plan.dropoutInput, input: plan.dropoutGradient, width: inFeatures, batch: batch,
                          layer: layer, kind: kind)
            let n = rows * inFeatures
            for i in 0..<n { inputGradient[i] += plan.dropoutInput[i] }
        } else {
            BLAS.linearInputGradient(inputGradient: inputGradient, outputGradient: plan.loraScratch,
                                     weight: lora.values + slot.aOffset, rows: rows, inFeatures: inFeatures, outFeatures: r,
                                     accumulate: true)
        }
    }

    // MARK: - Forward

    /// Runs the decoder over `batch` and the head over its target rows. Returns the target log-probs in target
    /// order. With `objective.weights`, also computes the gradient of the head so `backward` can follow.
    @discardableResult
    public func forward(batch: PackedBatch, plan: ActivationPlan, lora: LoRABuffer?, dropout: LoRADropout? = nil,
                        objective: HeadObjective = HeadObjective(weights: nil)) -> [Float] {
        let c = configuration
        let N = batch.tokenCount, C = c.hiddenSize
        precondition(plan.fits(batch), "batch of \(N) tokens / longest \(batch.longestSequence) exceeds the activation plan")
        precondition(lora == nil || lora?.layout == plan.loraLayout, "LoRA layout differs from the plan's")

        // Embedding lookup.
        let x0 = plan.residualInput[0]
        for (row, token) in batch.tokens.enumerated() {
            precondition(token >= 0 && Int(token) < c.vocabularySize, "token id \(token) outside the vocabulary")
            weights.copyEmbeddingRow(Int(token), into: x0 + row * C)
        }
        batch.positions.withUnsafeBufferPointer { positionBuffer in
            guard let positions = positionBuffer.baseAddress else { return }
            for layer in 0..<c.layerCount {
                layerForward(layer, batch: batch, positions: positions, plan: plan, lora: lora, dropout: dropout,
                             recomputing: false)
            }
        }
        return headForward(batch: batch, plan: plan, weights: objective.weights)
    }

    /// One decoder layer from `plan.residualInput[layer]` into the next layer's input (or `residualFinal`), saving
    /// what backward reads. `recomputing` (backward under activation recomputation) refills the saved values only:
    /// the layer's output, which backward does not read, is not written.
    private func layerForward(_ layer: Int, batch: PackedBatch, positions: UnsafePointer<Int32>, plan: ActivationPlan,
                              lora: LoRABuffer?, dropout: LoRADropout?, recomputing: Bool) {
        let c = configuration
        let N = batch.tokenCount, C = c.hiddenSize, K = c.kvDimension, F = c.intermediateSize
        let H = c.headCount, G = c.kvHeadCount, D = c.headDimension
        let x = plan.residualInput[layer]
        let middle = plan.residualMiddle[layer]
        let next = layer + 1 < c.layerCount ? plan.residualInput[layer + 1] : plan.residualFinal
        // Attention block.
        RMSNorm.forward(output: plan.normed, reciprocalRMS: plan.attentionRSTD[layer], input: x,
                        weight: weights.attentionNorm(layer), rows: N, channels: C, epsilon: c.rmsNormEpsilon)
        for (kind, output) in [(ProjectionKind.query, plan.query[layer]), (.key, plan.key[layer]), (.value, plan.value[layer])] {
            project(kind, layer: layer, input: plan.normed, output: output, accumulate: false, rows: N,
                    plan: plan, lora: lora, dropout: dropout, batch: batch)
        }
        rotary.apply(plan.query[layer], rows: N, heads: H, rowStride: C, positions: positions)
        rotary.apply(plan.key[layer], rows: N, heads: G, rowStride: K, positions: positions)
        for b in 0..<batch.sequenceCount {
            let start = batch.sequenceStarts[b], T = batch.sequenceStarts[b + 1] - start
            CausalAttention.forward(
                output: plan.attentionOutput[layer] + start * C, logSumExp: plan.attentionLSE[layer] + start * H,
                query: plan.query[layer] + start * C, key: plan.key[layer] + start * K,
                value: plan.value[layer] + start * K, prefix: attentionPrefix(of: b, batch: batch, layer: layer, plan: plan),
                scores: plan.scores, positions: T, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
        }
        middle.update(from: x, count: N * C)
        project(.output, layer: layer, input: plan.attentionOutput[layer], output: middle, accumulate: true,
                rows: N, plan: plan, lora: lora, dropout: dropout, batch: batch)
        // MLP block.
        RMSNorm.forward(output: plan.normed, reciprocalRMS: plan.feedForwardRSTD[layer], input: middle,
                        weight: weights.feedForwardNorm(layer), rows: N, channels: C, epsilon: c.rmsNormEpsilon)
        project(.gate, layer: layer, input: plan.normed, output: plan.gate[layer], accumulate: false, rows: N,
                plan: plan, lora: lora, dropout: dropout, batch: batch)
        project(.up, layer: layer, input: plan.normed, output: plan.up[layer], accumulate: false, rows: N,
                plan: plan, lora: lora, dropout: dropout, batch: batch)
        SwiGLU.forward(output: plan.hidden, gate: plan.gate[layer], up: plan.up[layer], count: N * F)
        if !recomputing { next.update(from: middle, count: N * C) }
        project(.down, layer: layer, input: plan.hidden, output: next, accumulate: true, rows: N,
                plan: plan, lora: lora, dropout: dropout, batch: batch, savingOnly: recomputing)
    }

    /// The keys and values (and in backward their gradients) of the prefix sequence b continues, if any.
    private func attentionPrefix(of b: Int, batch: PackedBatch, layer: Int, plan: ActivationPlan,
                                 withGradients: Bool = false) -> AttentionPrefix? {
        let prefix = batch.prefixSequence[b]
        guard prefix >= 0 else { return nil }
        let offset = batch.sequenceStarts[prefix] * configuration.kvDimension
        return AttentionPrefix(key: plan.key[layer] + offset, value: plan.value[layer] + offset,
                               keyGradient: withGradients ? plan.keyGradient + offset : nil,
                               valueGradient: withGradients ? plan.valueGradient + offset : nil,
                               length: batch.length(ofSequence: prefix))
    }

    /// Final RMSNorm on target rows, logits chunk by chunk, target log-probs; with weights, the head gradient.
    private func headForward(batch: PackedBatch, plan: ActivationPlan, weights gradientWeights: [Float]?) -> [Float] {
        let c = configuration, C = c.hiddenSize, V = c.vocabularySize
        let targetRows = batch.targetRows
        let M = targetRows.count
        if let gradientWeights { precondition(gradientWeights.count == M, "one weight per target is required") }
        for (m, entry) in targetRows.enumerated() {
            RMSNorm.forward(output: plan.finalNormed + m * C, reciprocalRMS: plan.finalRSTD + m,
                            input: plan.residualFinal + entry.row * C, weight: weights.finalNorm, rows: 1, channels: C,
                            epsilon: c.rmsNormEpsilon)
            plan.targetIds[m] = entry.target
            plan.targetWeights[m] = gradientWeights?[m] ?? 0
        }
        forEachLogitChunk(plan: plan, targetCount: M, computesGradient: gradientWeights != nil) { start, rows in
            CrossEntropy.forward(logits: plan.logits, targets: plan.targetIds + start, rows: rows, vocabularySize: V,
                                 logProbabilities: plan.targetLogProbabilities + start, logSumExp: plan.targetLSE + start,
                                 gradientWeights: gradientWeights == nil ? nil : UnsafePointer(plan.targetWeights + start))
        }
        return Array(UnsafeBufferPointer(start: plan.targetLogProbabilities, count: M))
    }

    /// Recomputes the head's logits to turn weights chosen after the forward (e.g. DPO's) into its gradient.
    private func headGradient(batch: PackedBatch, plan: ActivationPlan, weights gradientWeights: [Float]) {
        let V = configuration.vocabularySize
        let M = batch.targetCount
        precondition(gradientWeights.count == M, "one weight per target is required")
        for m in 0..<M { plan.targetWeights[m] = gradientWeights[m] }
        forEachLogitChunk(plan: plan, targetCount: M, computesGradient: true) { start, rows in
            CrossEntropy.gradient(logits: plan.logits, targets: plan.targetIds + start, logSumExp: plan.targetLSE + start,
                                  weights: plan.targetWeights + start, rows: rows, vocabularySize: V)
        }
    }

    /// Logits of the target rows chunk by chunk (never all at once): `body(start, rows)` works on `plan.logits`; with
    /// `computesGradient` the chunk, turned into dlogits by `body`, is back-propagated into `finalNormedGradient`.
    private func forEachLogitChunk(plan: ActivationPlan, targetCount M: Int, computesGradient: Bool,
                                   _ body: (_ start: Int, _ rows: Int) -> Void) {
        let C = configuration.hiddenSize, V = configuration.vocabularySize
        var start = 0
        while start < M {
            let rows = min(plan.logitRowsPerChunk, M - start)
            FrozenLinear.linear(output: plan.logits, input: plan.finalNormed + start * C, weight: weights.frozenLMHead,
                                rows: rows, inFeatures: C, outFeatures: V)
            body(start, rows)
            if computesGradient {
                FrozenLinear.linearInputGradient(inputGradient: plan.finalNormedGradient + start * C,
                                                 outputGradient: plan.logits, weight: weights.frozenLMHead, rows: rows,
                                                 inFeatures: C, outFeatures: V, accumulate: false)
            }
            start += rows
        }
    }

    // MARK: - Backward

    /// Accumulates into `gradients` the gradient of Σ w·(−log p) with respect to the LoRA factors. Pass `weights`
    /// only when the forward ran without them. Must follow `forward` on the same batch and plan.
    public func backward(batch: PackedBatch, plan: ActivationPlan, lora: LoRABuffer, gradients: LoRABuffer,
                         dropout: LoRADropout? = nil, weights gradientWeights: [Float]? = nil) {
        let c = configuration
        let N = batch.tokenCount, C = c.hiddenSize, K = c.kvDimension, F = c.intermediateSize
        let H = c.headCount, G = c.kvHeadCount, D = c.headDimension
        precondition(gradients.layout == lora.layout, "gradient layout differs")
        if let gradientWeights { headGradient(batch: batch, plan: plan, weights: gradientWeights) }

        let dResidual = plan.residualGradient
        dResidual.update(repeating: 0, count: N * C)
        for (m, entry) in batch.targetRows.enumerated() {
            RMSNorm.backward(inputGradient: dResidual + entry.row * C, outputGradient: plan.finalNormedGradient + m * C,
                             input: plan.residualFinal + entry.row * C, weight: weights.finalNorm,
                             reciprocalRMS: plan.finalRSTD + m, rows: 1, channels: C)
        }
        batch.positions.withUnsafeBufferPointer { positionBuffer in
            guard let positions = positionBuffer.baseAddress else { return }
            for layer in stride(from: c.layerCount - 1, through: 0, by: -1) {
                if plan.recomputesLayers {
                    layerForward(layer, batch: batch, positions: positions, plan: plan, lora: lora, dropout: dropout,
                                 recomputing: true)
                }
                let x = plan.residualInput[layer]
                let middle = plan.residualMiddle[layer]
                // MLP block: its input norm and activation (the recomputed layer left both in place), then back
                // through down, SwiGLU, gate/up.
                if !plan.recomputesLayers {
                    RMSNorm.forward(output: plan.normed, reciprocalRMS: nil, input: middle, weight: weights.feedForwardNorm(layer),
                                    rows: N, channels: C, epsilon: c.rmsNormEpsilon)
                    SwiGLU.forward(output: plan.hidden, gate: plan.gate[layer], up: plan.up[layer], count: N * F)
                }
                projectBackward(.down, layer: layer, input: plan.hidden, outputGradient: dResidual,
                                inputGradient: plan.hiddenGradient, accumulate: false, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                SwiGLU.backward(gateGradient: plan.gateGradient, upGradient: plan.upGradient, outputGradient: plan.hiddenGradient,
                                gate: plan.gate[layer], up: plan.up[layer], count: N * F)
                projectBackward(.gate, layer: layer, input: plan.normed, outputGradient: plan.gateGradient,
                                inputGradient: plan.normedGradient, accumulate: false, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                projectBackward(.up, layer: layer, input: plan.normed, outputGradient: plan.upGradient,
                                inputGradient: plan.normedGradient, accumulate: true, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                RMSNorm.backward(inputGradient: dResidual, outputGradient: plan.normedGradient, input: middle,
                                 weight: weights.feedForwardNorm(layer), reciprocalRMS: plan.feedForwardRSTD[layer],
                                 rows: N, channels: C)
                // Attention block.
                projectBackward(.output, layer: layer, input: plan.attentionOutput[layer], outputGradient: dResidual,
                                inputGradient: plan.attentionGradient, accumulate: false, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                plan.keyGradient.update(repeating: 0, count: N * K)
                plan.valueGradient.update(repeating: 0, count: N * K)
                for b in 0..<batch.sequenceCount {
                    let start = batch.sequenceStarts[b], T = batch.sequenceStarts[b + 1] - start
                    CausalAttention.backward(
                        queryGradient: plan.queryGradient + start * C, keyGradient: plan.keyGradient + start * K,
                        valueGradient: plan.valueGradient + start * K, outputGradient: plan.attentionGradient + start * C,
                        query: plan.query[layer] + start * C, key: plan.key[layer] + start * K,
                        value: plan.value[layer] + start * K, output: plan.attentionOutput[layer] + start * C,
                        logSumExp: plan.attentionLSE[layer] + start * H,
                        prefix: attentionPrefix(of: b, batch: batch, layer: layer, plan: plan, withGradients: true), scores: plan.scores,
                        scoreGradients: plan.scoreGradients, positions: T, heads: H, kvHeads: G, headDimension: D,
                        queryStride: C, keyStride: K)
                }
                rotary.apply(plan.queryGradient, rows: N, heads: H, rowStride: C, positions: positions, inverse: true)
                rotary.apply(plan.keyGradient, rows: N, heads: G, rowStride: K, positions: positions, inverse: true)
                RMSNorm.forward(output: plan.normed, reciprocalRMS: nil, input: x, weight: weights.attentionNorm(layer),
                                rows: N, channels: C, epsilon: c.rmsNormEpsilon)
                projectBackward(.query, layer: layer, input: plan.normed, outputGradient: plan.queryGradient,
                                inputGradient: plan.normedGradient, accumulate: false, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                projectBackward(.key, layer: layer, input: plan.normed, outputGradient: plan.keyGradient,
                                inputGradient: plan.normedGradient, accumulate: true, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                projectBackward(.value, layer: layer, input: plan.normed, outputGradient: plan.valueGradient,
                                inputGradient: plan.normedGradient, accumulate: true, rows: N, plan: plan, lora: lora,
                                gradients: gradients, dropout: dropout, batch: batch)
                RMSNorm.backward(inputGradient: dResidual, outputGradient: plan.normedGradient, input: x,
                                 weight: weights.attentionNorm(layer), reciprocalRMS: plan.attentionRSTD[layer],
                                 rows: N, channels: C)
            }
        }
    }
}

extension LlamaDecoder {
    /// Full logits [M, V] of the target rows of the last `forward` (for checks and inspection; training never
    /// materialises them all).
    public func logitsOfLastForward(plan: ActivationPlan, targetCount M: Int) -> [Float] {
        let C = configuration.hiddenSize, V = configuration.vocabularySize
        var result = [Float](repeating: 0, count: M * V)
        result.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            FrozenLinear.linear(output: base, input: plan.finalNormed, weight: weights.frozenLMHead, rows: M, inFeatures: C,
                                outFeatures: V)
        }
        return result
    }
}
