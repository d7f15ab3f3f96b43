// Implements `knowtune tokenize`: the model's token ids for a text, as one JSON object on stdout.
import ArgumentParser
import Foundation
import KnowTuneModel

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print {\"ids\": [...]} for a text.")

    @Option(name: .customLong("model_name_or_path")) var modelPath: String
    @Option(name: .customLong("text")) var text: String

    func run() throws {
        try runReportingErrors {
            let tokenizer = try TokenizerLoader.load(modelPath)
            let ids = tokenizer.encode(text)
            let data = try JSONSerialization.data(withJSONObject: ["ids": ids.map(Int.init)])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
