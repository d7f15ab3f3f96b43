// Implements the `knowtune-bench` command: runs a named benchmark and writes its JSON to stdout (or --output).
// Usage: knowtune-bench engine [--model PATH] [--data dolly_train.json] [--steps N] [--threads 1,2] [--output F]
//        knowtune-bench ceiling [--model PATH] [--sequence_length T]: the 1-thread sgemm 2048×576×576 GFLOP/s, the
//        model's training FLOPs per token and the 2-rank × 1-thread ceiling in tokens/s they give (bench-sft.sh).
//        knowtune-bench attention [--lengths 64,150,256,512] [--heads 9 --kv_heads 3 --head_dimension 64]: one
//        layer's attention forward + backward alone (one thread).
//        knowtune-bench products [--encodings q8_0,q4_k,q5_0,q4_1] [--threads 1] [--rounds 3]: training's frozen-weight
//        products with quantized weights against fp32 sgemm on SmolLM2 and Llama-2-7B shapes.
import Foundation
import KnowTuneModel
import KnowTuneTensor

func option(_ name: String, _ arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

OpenBLASCore.chooseKernels()  // before any product: OpenBLAS's kernel table is process-wide
let arguments = Array(CommandLine.arguments.dropFirst())
let repository = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
do {
    if arguments.first == "attention" {
        BLAS.setThreadCount(1)
        let result = AttentionBenchmark.run(
            lengths: (option("--lengths", arguments) ?? "64,150,256,512").split(separator: ",").compactMap { Int($0) },
            heads: Int(option("--heads", arguments) ?? "9") ?? 9, kvHeads: Int(option("--kv_heads", arguments) ?? "3") ?? 3,
            headDimension: Int(option("--head_dimension", arguments) ?? "64") ?? 64, repeats: 20)
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
        exit(0)
    }
    if arguments.first == "products" {
        BLAS.setThreadCount(Int(option("--threads", arguments) ?? "1") ?? 1)
        let names = (option("--encodings", arguments) ?? "q8_0,q4_k,q5_0,q4_1").split(separator: ",").map(String.init)
        let encodings = try names.map { name in
            guard let encoding = WeightEncoding(rawValue: name) else {
                throw KnowTuneError.invalidInput("--encodings: \(name) is not an encoding (\(WeightEncoding.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return encoding
        }
        let result = ProductsBenchmark.run(encodings: encodings, rounds: Int(option("--rounds", arguments) ?? "3") ?? 3)
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
        exit(0)
    }
    guard arguments.first == "engine" || arguments.first == "ceiling" else {
        FileHandle.standardError.write(Data(("usage: knowtune-bench engine [--model PATH] [--data FILE] [--steps N] [--threads 1,2] [--output FILE]\n"
                                             + "       knowtune-bench ceiling [--model PATH] [--sequence_length T]\n"
                                             + "       knowtune-bench attention [--lengths L,…] [--heads H] [--kv_heads G] [--head_dimension D]\n"
                                             + "       knowtune-bench products [--encodings E,…] [--threads N] [--rounds R]\n").utf8))
        exit(2)
    }
    let modelPath = option("--model", arguments) ?? repository.appendingPathComponent("models/smollm2").path
    if arguments.first == "ceiling" {
        let configuration = try ModelLoader.describe(modelPath).configuration
        let sequenceLength = Int(option("--sequence_length", arguments) ?? "256") ?? 256
        BLAS.setThreadCount(1)
        let sgemm = EngineBenchmark.sgemmGFLOPs()
        let flops = EngineBenchmark.modelFLOPsPerToken(configuration, sequenceLength: sequenceLength)
        let result: [String: Any] = ["openblas_core": BLAS.coreName, "sgemm_2048x576x576_gflops_1_thread": sgemm,
                                     "model_flops_per_token": flops, "sequence_length": sequenceLength,
                                     "ceiling_tokens_per_second_2x1": 2 * sgemm * 1e9 / flops]
        print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        exit(0)
    }
    let dataPath = option("--data", arguments) ?? repository.appendingPathComponent("data/dolly/dolly_train.json").path
    let threads = (option("--threads", arguments) ?? "1,2").split(separator: ",").compactMap { Int($0) }
    let result = try EngineBenchmark.run(modelPath: modelPath, dataPath: dataPath, steps: Int(option("--steps", arguments) ?? "3") ?? 3,
                                         batchSize: 8, sequenceLength: 256, threadCounts: threads)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let json = try encoder.encode(result)
    if let output = option("--output", arguments) {
        try json.write(to: URL(fileURLWithPath: output))
    }
    print(String(decoding: json, as: UTF8.self))
} catch {
    FileHandle.standardError.write(Data("knowtune-bench: error: \(error)\n".utf8))
    exit(1)
}
