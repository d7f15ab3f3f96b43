// Implements `knowtune-bench attention`: forward + backward of CausalAttention alone on random data, SmolLM2's heads
// (9 query heads, 3 key/value heads, D 64) by default, at several sequence lengths, interleaved with the machine's
// sgemm 2048×576×576 so the two are measured under the same load. Reports milliseconds per sequence and the attention
// FLOPs the formula counts (12·C per causal pair and layer, PassWorkload) per second over sgemm's; asserts nothing.
import Foundation
import KnowTuneModel
import KnowTuneTensor

enum AttentionBenchmark {
    static func run(lengths: [Int], heads H: Int, kvHeads G: Int, headDimension D: Int, repeats: Int) -> [String: Any] {
        let C = H * D, K = G * D
        var rows: [[String: Any]] = []
        for T in lengths {
            var generator = SplitMix64(seed: UInt64(T))
            func random(_ count: Int) -> [Float] { (0..<count).map { _ in generator.nextUnitFloat() - 0.5 } }
            let query = random(T * C), key = random(T * K), value = random(T * K), upstream = random(T * C)
            let scratch = CausalAttention.scratchCount(sequenceLength: T, heads: H, kvHeads: G, headDimension: D)
            var scores = [Float](repeating: 0, count: scratch), scoreGradients = scores
            var output = [Float](repeating: 0, count: T * C), lse = [Float](repeating: 0, count: T * H)
            var dq = output, dk = [Float](repeating: 0, count: T * K), dv = dk
            var best = Double.infinity
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                CausalAttention.forward(output: &output, logSumExp: &lse, query: query, key: key, value: value, scores: &scores,
                                        positions: T, heads: H, kvHeads: G, headDimension: D, queryStride: C, keyStride: K)
                CausalAttention.backward(queryGradient: &dq, keyGradient: &dk, valueGradient: &dv, outputGradient: upstream,
                                         query: query, key: key, value: value, output: output, logSumExp: lse, scores: &scores,
                                         scoreGradients: &scoreGradients, positions: T, heads: H, kvHeads: G, headDimension: D,
                                         queryStride: C, keyStride: K)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            let sgemm = EngineBenchmark.sgemmGFLOPs(repeats: 5)
            let flops = 12 * Double(C) * Double(PassWorkload.attentionPairs(rows: T))
            rows.append(["sequence_length": T, "milliseconds": best * 1000, "formula_gflops": flops / best / 1e9,
                         "sgemm_gflops": sgemm, "fraction_of_sgemm": flops / best / 1e9 / sgemm])
        }
        return ["heads": H, "kv_heads": G, "head_dimension": D, "openblas_core": BLAS.coreName, "lengths": rows]
    }
}
