// Implements `knowtune-genbench MODEL [DOLLY_TEST_JSON]`: loads a model (its base in KNOWTUNE_BASE_DTYPE, default
// fp32) and prints GenerationBenchmark's result as JSON; does not check targets (the figures are read by a person;
// run it on a quiet machine).
import Foundation
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor

OpenBLASCore.chooseKernels()  // before any product: OpenBLAS's kernel table is process-wide
let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: knowtune-genbench MODEL [DOLLY_TEST_JSON]\n  (default dataset: data/dolly/dolly_test.json of the repository)\n".utf8))
    exit(2)
}
// The repository's copy, found from the executable (.build/<config>/knowtune-genbench) or the working directory.
let repositoryData = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data").path
let defaultDataset = ["data", repositoryData].map { $0 + "/dolly/dolly_test.json" }
    .first { FileManager.default.fileExists(atPath: $0) } ?? "data/dolly/dolly_test.json"
let datasetPath = arguments.count >= 3 ? arguments[2] : defaultDataset
do {
    let dtype = ProcessInfo.processInfo.environment["KNOWTUNE_BASE_DTYPE"] ?? "fp32"
    guard let precision = BasePrecision(rawValue: dtype) else {
        throw KnowTuneError.invalidConfiguration(BasePrecision.unsupported(dtype, option: "KNOWTUNE_BASE_DTYPE"))
    }
    let model = try ModelLoader.load(arguments[1], precision: precision)
    let result = try GenerationBenchmark.run(model: model, datasetPath: datasetPath)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    FileHandle.standardOutput.write(try encoder.encode(result))
    FileHandle.standardOutput.write(Data("\n".utf8))
} catch {
    FileHandle.standardError.write(Data("knowtune-genbench: \(error)\n".utf8))
    exit(1)
}
