// Implements LLaMA-Factory 0.5.3's generating argument group (the sampling settings of `--do_predict`) and is the one
// home of their defaults, LF's, which the KnowTuning release also uses. It lives in Data, the lowest module that both
// the training flag table and the generator (GenerationConfiguration) see.
public struct GeneratingArguments: Codable, Equatable, Sendable {
    public var doSample = true
    public var temperature = 0.95
    public var topP = 0.7
    public var topK = 50
    public var maxNewTokens = 512
    public var repetitionPenalty = 1.0

    public init() {}

    /// LF's defaults.
    public static let defaults = GeneratingArguments()
}
