// Implements the LoRA hyper-parameters (PEFT `LoraConfig` subset) and their validation; does not hold weights.
import Foundation
import KnowTuneTensor

public struct LoRAConfiguration: Codable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    public var targets: [ProjectionKind]
    /// rsLoRA scales by alpha/√r instead of alpha/r.
    public var useRSLoRA: Bool

    /// LLaMA-Factory 0.5.3 defaults: r 8, alpha 2r, dropout 0, q_proj and v_proj.
    public init(rank: Int = 8, alpha: Float? = nil, dropout: Float = 0, targets: [ProjectionKind] = [.query, .value],
                useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha ?? Float(2 * rank)
        self.dropout = dropout
        self.targets = targets.sorted { $0.rawValue < $1.rawValue }
        self.useRSLoRA = useRSLoRA
    }

    /// PEFT `scaling`: alpha/r, or alpha/√r under rsLoRA.
    public var scaling: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// Parses `q_proj,v_proj` or `all` (every projection, as LLaMA-Factory's `--lora_target all`).
    public static func parseTargets(_ text: String) throws -> [ProjectionKind] {
        let names = text.commaSeparatedItems
        if names == ["all"] { return ProjectionKind.allCases }
        var kinds: [ProjectionKind] = []
        for name in names {
            guard let kind = ProjectionKind(moduleName: name) else {
                throw KnowTuneError.unsupported(what: "LoRA target '\(name)'",
                                                supported: ProjectionKind.allCases.map(\.moduleName).joined(separator: ", ") + ", all")
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        guard !kinds.isEmpty else { throw KnowTuneError.invalidConfiguration("lora_target is empty") }
        return kinds.sorted { $0.rawValue < $1.rawValue }
    }

    public static let maximumRank = 65536

    public func validate() throws {
        guard rank > 0 else { throw KnowTuneError.invalidConfiguration("lora_rank must be positive, got \(rank)") }
        // Far above any useful rank (LoRA ranks are ≤ the hidden size), and low enough that layout sizes cannot
        // overflow: a rank read from a damaged file must fail here, not in an allocation.
        guard rank <= Self.maximumRank else {
            throw KnowTuneError.invalidConfiguration("lora_rank \(rank) is larger than \(Self.maximumRank)")
        }
        guard alpha > 0, alpha.isFinite else { throw KnowTuneError.invalidConfiguration("lora_alpha must be positive, got \(alpha)") }
        guard dropout >= 0, dropout < 1 else {
            throw KnowTuneError.invalidConfiguration("lora_dropout must be in [0, 1), got \(dropout)")
        }
        guard !targets.isEmpty else { throw KnowTuneError.invalidConfiguration("lora_target is empty") }
    }
}
