// Implements LLaMA-Factory 0.5.3's data argument group (datasets, template, lengths, validation split); holds
// defaults only (TrainingArgumentParser parses, TrainingArguments validates).
import KnowTuneData
import KnowTuneTensor

public struct DataArguments: Codable, Equatable {
    public var dataset = ""
    public var datasetDir = "data"
    public var template = ChatTemplate.Kind.alpaca
    public var cutoffLength = 1024
    public var reservedLabelLength = 1
    public var valSize = 0.0
    public var maxSamples: Int?
    public var trainOnPrompt = false

    public init() {}

    public var datasetNames: [String] { dataset.commaSeparatedItems }
}
