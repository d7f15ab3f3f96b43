// Implements the tiny random model the CLI, training and launch tests run: a 2-layer, hidden-32 LLaMA (GQA 4/2 heads,
// tied head) with SmolLM2's real 49152-token tokenizer, written once per folder as a GGUF file; does not train.
import Foundation
import KnowTuneModel
import KnowTuneTensor

public enum TinyGGUFModel {
    private static let lock = NSLock()
    private static var written: [String: String] = [:]

    public static let configuration = LlamaConfiguration(
        vocabularySize: 49152, hiddenSize: 32, intermediateSize: 48, layerCount: 2, headCount: 4, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true, maxPositionEmbeddings: 512)

    /// `folder/tiny.gguf`, written on first use in this process (weights uniform in ±0.25, norms 1 ± 0.1, seed 2024).
    public static func path(in folder: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path = written[folder] { return path }
        let source = try GGUFFile(path: try TestPaths.require(TestPaths.smolLM2))
        let weights = LlamaWeights(configuration: configuration)
        var generator = SplitMix64(seed: 2024)
        for tensor in weights.namedTensors() {
            let isNorm = tensor.shape.count == 1
            for i in 0..<tensor.shape.reduce(1, *) {
                let u = 2 * generator.nextUnitFloat() - 1
                tensor.pointer[i] = isNorm ? 1 + 0.1 * u : u * 0.25
            }
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/tiny.gguf"
        try GGUFModelWriter.write(weights, tokenizerMetadata: GGUFModelWriter.tokenizerMetadata(of: source), name: "tiny", to: path)
        written[folder] = path
        return path
    }
}
