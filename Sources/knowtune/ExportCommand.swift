// Implements `knowtune export`: base + adapter(s) merged (W + s·B·A) and written as an HF safetensors folder and,
// for GGUF sources, an F32 or F16 GGUF.
import ArgumentParser
import Foundation
import KnowTuneModel
import KnowTuneTensor

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Merge adapters into the base and write an HF folder (and a GGUF) to --export_dir.")

    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("export_dir")) var exportDirectory: String
    @Option(name: .customLong("gguf_type"), help: "f32, f16 or none (GGUF sources only).") var ggufType = "f32"

    func validate() throws {
        // The export merges into fp32 weights and writes them (or f16) out; a quantized merge would requantize.
        guard model.baseDtype == "fp32" else {
            throw ValidationError("export merges in fp32: --base_dtype \(model.baseDtype) is not used here (drop it; --gguf_type picks the output type)")
        }
    }

    func run() throws {
        try runReportingErrors {
            let loaded = try model.load()
            try ModelExporter.exportHuggingFace(weights: loaded.weights, source: loaded.source, to: exportDirectory)
            logToStandardError("wrote the merged HF model to \(exportDirectory)")
            guard ggufType != "none" else { return }
            guard let type = ["f32": GGUFTensorType.f32, "f16": .f16][ggufType] else {
                throw KnowTuneError.unsupported(what: "--gguf_type \(ggufType)", supported: "f32, f16, none")
            }
            if case .gguf = try ModelLoader.resolve(loaded.source) {
                let path = (exportDirectory as NSString).appendingPathComponent("model-\(ggufType).gguf")
                try ModelExporter.exportGGUF(weights: loaded.weights, source: loaded.source, type: type, to: path)
                logToStandardError("wrote \(path)")
            }
        }
    }
}
