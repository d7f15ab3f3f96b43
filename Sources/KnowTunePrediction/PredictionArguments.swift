// Implements what the predict stage reads of a run's arguments (model and adapters, data, template and truncation,
// generation, batch and output), so that prediction does not depend on the training module; the CLI fills it from
// `knowtune train`'s arguments. Does not parse or validate.
import KnowTuneData
import KnowTuneGeneration
import KnowTuneTensor

public struct PredictionArguments {
    public var modelNameOrPath = ""
    /// Adapter folders, merged into the base in this order.
    public var adapterPaths: [String] = []
    public var basePrecision = BasePrecision.fp32
    public var datasetNames: [String] = []
    public var datasetDir = "data"
    public var maxSamples: Int?
    public var template = ChatTemplate.Kind.alpaca
    public var cutoffLength = 1024
    public var reservedLabelLength = 1
    public var generation = GenerationConfiguration()
    /// Prompts decoded together on each rank.
    public var batchSize = 8
    public var outputDir = ""

    public init() {}

    /// The comma-joined dataset names, as the user gave them.
    var dataset: String { datasetNames.joined(separator: ",") }
}
