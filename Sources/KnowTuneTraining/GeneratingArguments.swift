// Implements LLaMA-Factory 0.5.3's generating argument group (the sampling settings of `--do_predict`); holds
// defaults only. LF's defaults, which the KnowTuning release also uses.
public struct GeneratingArguments: Codable, Equatable {
    public var doSample = true
    public var temperature = 0.95
    public var topP = 0.7
    public var topK = 50
    public var maxNewTokens = 512
    public var repetitionPenalty = 1.0

    public init() {}
}
