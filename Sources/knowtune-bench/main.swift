// Implements the `knowtune-bench` command: runs a named benchmark and writes its JSON to stdout (or --output).
// Usage: knowtune-bench engine [--model PATH] [--data dolly_train.json] [--steps N] [--threads 1,2] [--output F]
import Foundation
import KnowTuneTensor

func option(_ name: String, _ arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

let arguments = Array(CommandLine.arguments.dropFirst())
let repository = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
do {
    guard arguments.first == "engine" else {
        FileHandle.standardError.write(Data("usage: knowtune-bench engine [--model PATH] [--data FILE] [--steps N] [--threads 1,2] [--output FILE]\n".utf8))
        exit(2)
    }
    let modelPath = option("--model", arguments) ?? repository.appendingPathComponent("models/smollm2").path
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
