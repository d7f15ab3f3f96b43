// Implements the engine benchmark of issue "core engine": LoRA training-step throughput (forward + backward +
// AdamW, every position labelled) with 1 and 2 OpenBLAS threads, achieved model GFLOP/s, peak RSS, and the
// machine's sgemm GFLOP/s on 2048×576×576 for scale; does not assert targets (it reports them).
import Foundation
import KnowTuneData
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTraining

struct EngineBenchmarkResult: Codable {
    var model: String
    var openblasCore: String
    var batchSize: Int
    var sequenceLength: Int
    var loraTargets: [String]
    var loraRank: Int
    var modelFLOPsPerToken: Double
    var sgemm2048x576x576GFLOPs: [String: Double]
    var tokensPerSecond: [String: Double]
    var modelGFLOPs: [String: Double]
    var fractionOfSgemmPeak: [String: Double]
    var stepSeconds: [String: [Double]]
    var finalLoss: Double
    var activationPlanMiB: Double
    /// The same steps with activation recomputation, at the last thread count: its plan and step time over the
    /// saved-activation step's (the target: ≤ 1.5).
    var recomputedActivationPlanMiB: Double
    var recomputedStepSeconds: [Double]
    var recomputedOverSavedStepTime: Double
    var peakRSSMiB: Double

    enum CodingKeys: String, CodingKey {
        case model, openblasCore = "openblas_core", batchSize = "batch_size", sequenceLength = "sequence_length"
        case loraTargets = "lora_targets", loraRank = "lora_rank", modelFLOPsPerToken = "model_flops_per_token"
        case sgemm2048x576x576GFLOPs = "sgemm_2048x576x576_gflops", tokensPerSecond = "tokens_per_second"
        case modelGFLOPs = "model_gflops", fractionOfSgemmPeak = "fraction_of_sgemm_peak", stepSeconds = "step_seconds"
        case finalLoss = "final_loss", activationPlanMiB = "activation_plan_mib", peakRSSMiB = "peak_rss_mib"
        case recomputedActivationPlanMiB = "recomputed_activation_plan_mib", recomputedStepSeconds = "recomputed_step_seconds"
        case recomputedOverSavedStepTime = "recomputed_over_saved_step_time"
    }
}

enum EngineBenchmark {
    /// GFLOP/s of C[2048,576] = A[2048,576]·B[576,576] with the current thread count (best of `repeats`).
    static func sgemmGFLOPs(repeats: Int = 20) -> Double {
        let m = 2048, n = 576, k = 576
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
        var generator = SplitMix64(seed: 1)
        for i in a.indices { a[i] = generator.nextUnitFloat() - 0.5 }
        for i in b.indices { b[i] = generator.nextUnitFloat() - 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
            } } }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2.0 * Double(m * n * k) / best / 1e9
    }

    /// FLOPs of one LoRA training token (frozen base) in sequences of `sequenceLength`, every position a target
    /// (PassWorkload: the head included, attention at that length).
    static func modelFLOPsPerToken(_ c: LlamaConfiguration, sequenceLength T: Int) -> Double {
        PassWorkload(c).flopsPerToken(sequenceLength: T)
    }

    /// Peak resident set size of this process in MiB (ru_maxrss is in KiB on Linux).
    static func peakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    static func run(modelPath: String, dataPath: String, steps: Int, batchSize B: Int, sequenceLength T: Int,
                    threadCounts: [Int]) throws -> EngineBenchmarkResult {
        let model = try ModelLoader.load(modelPath)
        let c = model.configuration
        // Real text: dolly responses tokenized and concatenated, cut into B sequences of T, every position labelled.
        let records = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dataPath))) as? [[String: Any]] ?? []
        var stream: [Int32] = []
        for record in records where stream.count < B * (T + 1) {
            stream += model.tokenizer.encode((record["output"] as? String ?? "") + "\n")
        }
        // T+1 tokens per row give T inputs whose every position has a next-token target.
        guard stream.count >= B * (T + 1) else { throw KnowTuneError.invalidInput("\(dataPath) has too little text") }
        var batch = PackedBatch()
        for b in 0..<B {
            let window = Array(stream[(b * (T + 1))..<((b + 1) * (T + 1))])
            batch.append(ids: Array(window.prefix(T)), targets: Array(window.dropFirst()))
        }
        let lora = LoRAConfiguration(rank: 8, alpha: 16, targets: [.query, .value])
        let layout = LoRALayout(model: c, lora: lora)
        let parameters = LoRABuffer(layout: layout)
        parameters.initializePEFT(seed: 42)
        let gradients = LoRABuffer(layout: layout)
        let optimizer = AdamW(layout: layout)
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: max(T + 1, 512))
        let plan = ActivationPlan(model: c, loraLayout: layout, tokenCapacity: batch.tokenCount, sequenceCapacity: T)
        let M = batch.targetCount
        let weights = [Float](repeating: 1 / Float(M), count: M)

        let flopsPerToken = modelFLOPsPerToken(c, sequenceLength: T)

        var sgemm: [String: Double] = [:], tokensPerSecond: [String: Double] = [:], gflops: [String: Double] = [:]
        var fraction: [String: Double] = [:], stepTimes: [String: [Double]] = [:]
        var loss = 0.0
        func timeSteps(_ plan: ActivationPlan, label: String) -> [Double] {
            var times: [Double] = []
            for step in 0...steps {  // step 0 warms up (page faults, BLAS buffers) and is not timed
                let start = DispatchTime.now().uptimeNanoseconds
                gradients.zero()
                let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: parameters,
                                                       objective: HeadObjective(weights: weights))
                decoder.backward(batch: batch, plan: plan, lora: parameters, gradients: gradients)
                optimizer.step(parameters: parameters, gradients: gradients, learningRate: 1e-4)
                loss = -logProbabilities.reduce(0.0) { $0 + Double($1) } / Double(M)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if step > 0 { times.append(seconds) }
                FileHandle.standardError.write(Data(String(format: "%@ step %d: %.2fs loss %.4f\n", label, step, seconds, loss).utf8))
            }
            return times
        }
        func median(_ times: [Double]) -> Double { times.sorted()[times.count / 2] }
        for threads in threadCounts {
            BLAS.setThreadCount(threads)
            let key = "\(threads)_threads"
            sgemm[key] = sgemmGFLOPs()
            let times = timeSteps(plan, label: "threads \(threads)")
            let median = median(times)
            tokensPerSecond[key] = Double(B * T) / median
            gflops[key] = flopsPerToken * Double(B * T) / median / 1e9
            fraction[key] = (gflops[key] ?? 0) / (sgemm[key] ?? 1)
            stepTimes[key] = times
        }
        // Recomputation at the last thread count, against that count's saved-activation steps.
        let recomputedPlan = ActivationPlan(model: c, loraLayout: layout, tokenCapacity: batch.tokenCount, sequenceCapacity: T,
                                            recomputesLayers: true)
        let recomputedTimes = timeSteps(recomputedPlan, label: "recomputed, threads \(threadCounts.last ?? 1)")
        let savedMedian = median(stepTimes["\(threadCounts.last ?? 1)_threads"] ?? [1])
        return EngineBenchmarkResult(
            model: model.source, openblasCore: BLAS.coreName, batchSize: B, sequenceLength: T,
            loraTargets: lora.targets.map(\.moduleName), loraRank: lora.rank, modelFLOPsPerToken: flopsPerToken,
            sgemm2048x576x576GFLOPs: sgemm, tokensPerSecond: tokensPerSecond, modelGFLOPs: gflops,
            fractionOfSgemmPeak: fraction, stepSeconds: stepTimes, finalLoss: loss,
            activationPlanMiB: Double(plan.byteCount) / 1_048_576,
            recomputedActivationPlanMiB: Double(recomputedPlan.byteCount) / 1_048_576, recomputedStepSeconds: recomputedTimes,
            recomputedOverSavedStepTime: median(recomputedTimes) / savedMedian, peakRSSMiB: peakRSSMiB())
    }
}
