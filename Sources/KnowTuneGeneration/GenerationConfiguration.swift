// Implements the decoding settings of `predict` and `chat`, decoded from LLaMA-Factory's generating-argument names
// with LLaMA-Factory 0.5.3's defaults (`hparams/generating_args.py`, semantics note §1.4); does not decode or
// sample (Sampler and Generator do).
import Foundation
import KnowTuneData
import KnowTuneTensor

/// How new tokens are chosen. The sampling defaults are LLaMA-Factory 0.5.3's, from `GeneratingArguments`.
public struct GenerationConfiguration: Codable, Equatable {
    /// Multinomial sampling when true; greedy argmax (ties → lowest id, as `torch.argmax`) when false.
    public var doSample: Bool
    /// Logits are divided by this before top-k/top-p (HF `TemperatureLogitsWarper`); sampling only.
    public var temperature: Double
    /// Nucleus mass (HF `TopPLogitsWarper`); 1 turns it off. Sampling only.
    public var topP: Double
    /// Number of highest logits kept (HF `TopKLogitsWarper`); 0 turns it off. Sampling only.
    public var topK: Int
    /// Most tokens generated per prompt (the EOS token, when emitted, counts as one).
    public var maxNewTokens: Int
    /// HF `RepetitionPenaltyLogitsProcessor` factor over prompt and generated ids; 1 turns it off. Greedy too.
    public var repetitionPenalty: Double
    /// Seeds each sequence's generator together with its example index (see `Sampler.generator`).
    public var seed: UInt64
    /// Beam search is not implemented; only LLaMA-Factory's default of 1 is accepted.
    public var beamCount: Int
    /// Only used by beam search, so it has no effect with one beam; kept so LLaMA-Factory configs decode.
    public var lengthPenalty: Double

    enum CodingKeys: String, CodingKey, CaseIterable {
        case doSample = "do_sample", temperature, topP = "top_p", topK = "top_k", maxNewTokens = "max_new_tokens"
        case repetitionPenalty = "repetition_penalty", seed, beamCount = "num_beams", lengthPenalty = "length_penalty"
    }

    public init(doSample: Bool = GeneratingArguments.defaults.doSample,
                temperature: Double = GeneratingArguments.defaults.temperature,
                topP: Double = GeneratingArguments.defaults.topP, topK: Int = GeneratingArguments.defaults.topK,
                maxNewTokens: Int = GeneratingArguments.defaults.maxNewTokens,
                repetitionPenalty: Double = GeneratingArguments.defaults.repetitionPenalty, seed: UInt64 = 42,
                beamCount: Int = 1, lengthPenalty: Double = 1.0) {
        self.doSample = doSample
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.maxNewTokens = maxNewTokens
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
        self.beamCount = beamCount
        self.lengthPenalty = lengthPenalty
    }

    /// The sampling settings of a parsed generating-argument group, with the run's seed.
    public init(_ arguments: GeneratingArguments, seed: UInt64) {
        self.init(doSample: arguments.doSample, temperature: arguments.temperature, topP: arguments.topP,
                  topK: arguments.topK, maxNewTokens: arguments.maxNewTokens,
                  repetitionPenalty: arguments.repetitionPenalty, seed: seed)
    }

    /// Greedy decoding with everything else at its default (what the golden greedy.json uses, with 40 tokens).
    public static func greedy(maxNewTokens: Int = 512) -> GenerationConfiguration {
        GenerationConfiguration(doSample: false, maxNewTokens: maxNewTokens)
    }

    /// Missing keys take the defaults; unknown keys and out-of-range values throw a `DecodingError` naming the key.
    public init(from decoder: Decoder) throws {
        let defaults = GenerationConfiguration()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        doSample = try container.decodeIfPresent(Bool.self, forKey: .doSample) ?? defaults.doSample
        temperature = try container.decodeIfPresent(Double.self, forKey: .temperature) ?? defaults.temperature
        topP = try container.decodeIfPresent(Double.self, forKey: .topP) ?? defaults.topP
        topK = try container.decodeIfPresent(Int.self, forKey: .topK) ?? defaults.topK
        maxNewTokens = try container.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? defaults.maxNewTokens
        repetitionPenalty = try container.decodeIfPresent(Double.self, forKey: .repetitionPenalty) ?? defaults.repetitionPenalty
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? defaults.seed
        beamCount = try container.decodeIfPresent(Int.self, forKey: .beamCount) ?? defaults.beamCount
        lengthPenalty = try container.decodeIfPresent(Double.self, forKey: .lengthPenalty) ?? defaults.lengthPenalty

        let known = Set(CodingKeys.allCases.map(\.stringValue))
        let anyKeys = try decoder.container(keyedBy: AnyCodingKey.self)
        if let unknown = anyKeys.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw DecodingError.dataCorruptedError(
                forKey: unknown, in: anyKeys,
                debugDescription: "unknown generation setting '\(unknown.stringValue)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        if let problem = problems().first {
            throw DecodingError.dataCorruptedError(forKey: problem.key, in: container, debugDescription: problem.message)
        }
    }

    /// Throws `KnowTuneError.invalidConfiguration` for the values HF `generate` rejects.
    public func validate() throws {
        if let problem = problems().first { throw KnowTuneError.invalidConfiguration(problem.message) }
    }

    /// The checks HF's warpers and `GenerationConfig.validate` make; sampling-only values are checked only when
    /// sampling, as HF ignores them under greedy decoding.
    private func problems() -> [(key: CodingKeys, message: String)] {
        var result: [(CodingKeys, String)] = []
        if maxNewTokens <= 0 { result.append((.maxNewTokens, "max_new_tokens must be positive, got \(maxNewTokens)")) }
        if !(repetitionPenalty > 0) {
            result.append((.repetitionPenalty, "repetition_penalty must be strictly positive, got \(repetitionPenalty)"))
        }
        if beamCount != 1 { result.append((.beamCount, "num_beams \(beamCount) is not supported (beam search is not implemented; use 1)")) }
        if doSample {
            if !(temperature > 0) { result.append((.temperature, "temperature must be strictly positive when sampling, got \(temperature)")) }
            if !(topP >= 0 && topP <= 1) { result.append((.topP, "top_p must be in [0, 1], got \(topP)")) }
            if topK < 0 { result.append((.topK, "top_k must be non-negative (0 turns it off), got \(topK)")) }
        }
        return result
    }
}

/// Any key, to list what a JSON object holds.
private struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
