// Implements the `knowtune-bf16bench` command: GFLOP/s of the bf16 frozen-weight products (BF16BLAS) against fp32
// `cblas_sgemm` on the same shapes, for SmolLM2-135M's projections and head, with 1 and 2 threads, as JSON on
// stdout; does not assert targets (it reports them).
// Usage: knowtune-bf16bench [--threads 1,2] [--seconds S] [--fallback]
// Run it on an idle machine (the figures are best-of-repeats wall times) with `unset OPENBLAS_CORETYPE`.
import Foundation
import KnowTuneTensor

struct ShapeResult: Codable {
    var product: String  // "linear" (Y = X·Wᵀ) or "input_gradient" (dX = dY·W)
    var rows: Int
    var inFeatures: Int
    var outFeatures: Int
    var threads: Int
    var bf16GFLOPs: Double
    var sgemmGFLOPs: Double
    var speedup: Double
    var bf16FallbackGFLOPs: Double?

    enum CodingKeys: String, CodingKey {
        case product, rows, inFeatures = "in", outFeatures = "out", threads, bf16GFLOPs = "bf16_gflops"
        case sgemmGFLOPs = "sgemm_gflops", speedup = "speedup", bf16FallbackGFLOPs = "bf16_fallback_gflops"
    }
}

struct BenchmarkReport: Codable {
    var openblasCore: String
    var nativeKernel: Bool
    var bf16Path: String
    var results: [ShapeResult]

    enum CodingKeys: String, CodingKey {
        case openblasCore = "openblas_core", nativeKernel = "native_kernel", bf16Path = "bf16_path", results
    }
}

func option(_ name: String, _ arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

/// Best wall time of `body` over repeats filling about `seconds` (at least 5, after one warm-up call).
func bestSeconds(_ seconds: Double, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity, total = 0.0, repeats = 0
    while repeats < 5 || total < seconds {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        best = min(best, elapsed)
        total += elapsed
        repeats += 1
    }
    return best
}

let arguments = Array(CommandLine.arguments.dropFirst())
let threadCounts = (option("--threads", arguments) ?? "1,2").split(separator: ",").compactMap { Int($0) }
let seconds = Double(option("--seconds", arguments) ?? "0.5") ?? 0.5
let measureFallback = arguments.contains("--fallback")

// SmolLM2-135M: hidden 576, kv 192, intermediate 1536, vocabulary 49152; 2048 tokens per step, head chunks of 128.
let shapes: [(rows: Int, inFeatures: Int, outFeatures: Int)] = [
    (2048, 576, 576), (2048, 576, 192), (2048, 576, 1536), (2048, 1536, 576), (128, 576, 49152),
]

var generator = SplitMix64(seed: 2024)
func randomFloats(_ count: Int) -> [Float] { (0..<count).map { _ in 2 * generator.nextUnitFloat() - 1 } }

var results: [ShapeResult] = []
for threads in threadCounts {
    BLAS.setThreadCount(threads)
    for shape in shapes {
        let (rows, inFeatures, outFeatures) = shape
        let weight = BF16Matrix(rows: outFeatures, columns: inFeatures, converting: randomFloats(outFeatures * inFeatures))
        let weight32 = weight.floats()
        let flops = 2.0 * Double(rows) * Double(inFeatures) * Double(outFeatures)
        for product in ["linear", "input_gradient"] {
            let isLinear = product == "linear"
            let depth = isLinear ? inFeatures : outFeatures, columns = isLinear ? outFeatures : inFeatures
            let activations = randomFloats(rows * depth)
            var output = [Float](repeating: 0, count: rows * columns)
            func bf16(_ path: BF16BLAS.Path) -> Double {
                activations.withUnsafeBufferPointer { a in output.withUnsafeMutableBufferPointer { c in
                    bestSeconds(seconds) {
                        if isLinear {
                            BF16BLAS.linear(output: c.baseAddress!, input: a.baseAddress!, weight: weight, rows: rows,
                                            threads: threads, path: path)
                        } else {
                            BF16BLAS.linearInputGradient(inputGradient: c.baseAddress!, outputGradient: a.baseAddress!,
                                                         weight: weight, rows: rows, accumulate: false, threads: threads,
                                                         path: path)
                        }
                    }
                } }
            }
            let bf16Seconds = bf16(.automatic)
            let fallbackSeconds = measureFallback ? bf16(.fallback) : nil
            let sgemmSeconds = activations.withUnsafeBufferPointer { a in weight32.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { c in
                    bestSeconds(seconds) {
                        if isLinear {
                            BLAS.linear(output: c.baseAddress!, input: a.baseAddress!, weight: w.baseAddress!, rows: rows,
                                        inFeatures: inFeatures, outFeatures: outFeatures)
                        } else {
                            BLAS.linearInputGradient(inputGradient: c.baseAddress!, outputGradient: a.baseAddress!,
                                                     weight: w.baseAddress!, rows: rows, inFeatures: inFeatures,
                                                     outFeatures: outFeatures, accumulate: false)
                        }
                    }
                }
            } }
            let rounded = { (value: Double) in (value * 10).rounded() / 10 }
            results.append(ShapeResult(
                product: product, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, threads: threads,
                bf16GFLOPs: rounded(flops / bf16Seconds * 1e-9), sgemmGFLOPs: rounded(flops / sgemmSeconds * 1e-9),
                speedup: (sgemmSeconds / bf16Seconds * 100).rounded() / 100,
                bf16FallbackGFLOPs: fallbackSeconds.map { rounded(flops / $0 * 1e-9) }))
        }
    }
}

let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
let report = BenchmarkReport(openblasCore: BLAS.coreName, nativeKernel: BF16BLAS.hasNativeKernel,
                             bf16Path: BF16BLAS.resolvedPath() == .native ? "native" : "fallback", results: results)
do {
    let data = try encoder.encode(report)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
} catch {
    FileHandle.standardError.write(Data("knowtune-bf16bench: \(error)\n".utf8))
    exit(1)
}
