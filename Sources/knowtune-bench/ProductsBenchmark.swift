// Implements `knowtune-bench products`: training's two frozen-weight products (Y = X·Wᵀ and dX = dY·W) with the
// weight in fp32 (sgemm) and in each requested encoding (tiles dequantized for sgemm, FrozenLinear), on the
// projection shapes of SmolLM2-135M and Llama-2-7B, interleaved so that every encoding is measured under the same
// load (an encoding whose blocks do not divide a shape's rows is skipped there). Reports each encoding's speed as a fraction of fp32's on the same shape (issue 15's target: ≥ 0.85 for
// quantized bases); asserts nothing.
import Dispatch
import Foundation
import KnowTuneTensor

enum ProductsBenchmark {
    struct Shape {
        let name: String
        let rows: Int
        let inFeatures: Int
        let outFeatures: Int
    }

    /// Rows: one micro-batch of 2,048 tokens for SmolLM2, 1,024 for 7B (bench-7b's sequences).
    static let shapes = [
        Shape(name: "smollm2 q,k,v", rows: 2048, inFeatures: 576, outFeatures: 960),
        Shape(name: "smollm2 gate,up", rows: 2048, inFeatures: 576, outFeatures: 3072),
        Shape(name: "smollm2 down", rows: 2048, inFeatures: 1536, outFeatures: 576),
        Shape(name: "llama2-7b q", rows: 1024, inFeatures: 4096, outFeatures: 4096),
        Shape(name: "llama2-7b gate", rows: 1024, inFeatures: 4096, outFeatures: 11008),
        Shape(name: "llama2-7b down", rows: 1024, inFeatures: 11008, outFeatures: 4096),
    ]

    static func run(encodings: [WeightEncoding], rounds: Int) -> [String: Any] {
        var results: [[String: Any]] = []
        for shape in shapes {
            let (N, I, O) = (shape.rows, shape.inFeatures, shape.outFeatures)
            var generator = SplitMix64(seed: UInt64(I * 31 + O))
            func random(_ count: Int) -> [Float] { (0..<count).map { _ in generator.nextUnitFloat() - 0.5 } }
            let weight = random(O * I), input = random(N * I), upstream = random(N * O)
            var output = [Float](repeating: 0, count: N * O), inputGradient = [Float](repeating: 0, count: N * I)
            let all = [WeightEncoding.fp32] + encodings.filter { $0 != .fp32 && $0.fits(rowLength: I) }
            let stored: [UnsafeMutableRawPointer] = all.map { encoding in
                let bytes = UnsafeMutableRawPointer.allocate(byteCount: encoding.byteCount(elements: weight.count), alignment: 64)
                weight.withUnsafeBufferPointer { encoding.encode($0.baseAddress!, count: weight.count, into: bytes) }
                return bytes
            }
            defer { stored.forEach { $0.deallocate() } }
            // Best of `rounds`, each encoding once per round in turn.
            var best = [Double](repeating: .infinity, count: all.count)
            for _ in 0..<rounds {
                for (index, encoding) in all.enumerated() {
                    let matrix = FrozenMatrix(encoding: encoding, address: UnsafeRawPointer(stored[index]))
                    let start = DispatchTime.now().uptimeNanoseconds
                    FrozenLinear.linear(output: &output, input: input, weight: matrix, rows: N, inFeatures: I, outFeatures: O)
                    FrozenLinear.linearInputGradient(inputGradient: &inputGradient, outputGradient: upstream, weight: matrix,
                                                     rows: N, inFeatures: I, outFeatures: O, accumulate: false)
                    best[index] = min(best[index], Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
            }
            let flops = 4 * Double(N) * Double(I) * Double(O)
            var row: [String: Any] = ["shape": shape.name, "rows": N, "in": I, "out": O]
            for (index, encoding) in all.enumerated() {
                row["\(encoding.rawValue)_gflops"] = flops / best[index] / 1e9
                if index > 0 { row["\(encoding.rawValue)_over_fp32"] = best[0] / best[index] }
            }
            results.append(row)
        }
        return ["openblas_core": BLAS.coreName, "threads": BLAS.threadCount, "rounds": rounds, "shapes": results]
    }
}
