// Implements the prompt templates KnowTune trains and scores with, as text segments that are tokenized
// separately (LLaMA-Factory's `Template._encode`); does not truncate (the data pipeline does) or read datasets.
import Foundation
import KnowTuneModel
import KnowTuneTensor

/// A single-turn prompt format.
public struct ChatTemplate: Equatable {
    public enum Kind: String, CaseIterable {
        case alpaca
        case alpacaLF053 = "alpaca_lf053"
        case `default`
        case chatml
        case llama2
    }

    public let kind: Kind
    public var name: String { kind.rawValue }

    public init(kind: Kind) {
        self.kind = kind
    }

    public static let alpacaSystem =
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."

    /// KnowTune's `alpaca`: system, "\n\n", user turn; no BOS; response + EOS (Tests/Fixtures/golden/README.md).
    public static let alpaca = ChatTemplate(kind: .alpaca)
    /// LLaMA-Factory 0.5.3's exact alpaca (no separator between system and user), for replays.
    public static let alpacaLF053 = ChatTemplate(kind: .alpacaLF053)
    public static let all: [ChatTemplate] = Kind.allCases.map { ChatTemplate(kind: $0) }

    public static func named(_ name: String) throws -> ChatTemplate {
        guard let kind = Kind(rawValue: name) else {
            throw KnowTuneError.unsupported(what: "template '\(name)'", supported: Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return ChatTemplate(kind: kind)
    }

    /// The system text used when a record has none (LLaMA-Factory's `default_system`).
    public var defaultSystem: String {
        switch kind {
        case .alpaca, .alpacaLF053: return Self.alpacaSystem
        case .default:
            return "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions."
        case .chatml: return "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
        case .llama2: return ""
        }
    }

    /// LLaMA-Factory `convert_alpaca`: instruction + "\n" + input when input is non-empty.
    public static func userContent(instruction: String, input: String?) -> String {
        guard let input, !input.isEmpty else { return instruction }
        return instruction.isEmpty ? input : instruction + "\n" + input
    }

    /// The prompt as the text segments that are tokenized one by one.
    public func promptSegments(_ content: String, system: String? = nil) -> [String] {
        let system = system ?? defaultSystem
        switch kind {
        case .alpaca:
            // One segment: with byte-level BPE a separately encoded "…\n\n" would end in the merged token "ĊĊ"
            // where the reference prompt has "Ċ", "Ċ" (the golden fixtures' prompt_ids).
            return [system + "\n\n### Instruction:\n\(content)\n\n### Response:\n"]
        case .alpacaLF053: return [system, "### Instruction:\n\(content)\n\n### Response:\n"]
        case .default: return [system + "\n", "Human: \(content)\nAssistant: "]
        case .chatml:
            return ["<|im_start|>system\n\(system)<|im_end|>\n", "<|im_start|>user\n\(content)<|im_end|>\n<|im_start|>assistant\n"]
        case .llama2:
            // LLaMA-Factory's Llama2Template folds the system block into the first user turn.
            let systemBlock = system.isEmpty ? "" : "<<SYS>>\n\(system)\n<</SYS>>\n\n"
            return ["[INST] \(systemBlock)\(content) [/INST]"]
        }
    }

    public var addsBOS: Bool { kind == .llama2 }

    /// The prompt's token ids: [BOS] + each segment encoded on its own.
    public func encodePrompt(_ content: String, system: String? = nil, tokenizer: any Tokenizer) -> [Int32] {
        var ids: [Int32] = []
        if addsBOS, let bos = tokenizer.bosTokenId { ids.append(bos) }
        for segment in promptSegments(content, system: system) where !segment.isEmpty {
            ids += tokenizer.encode(segment)
        }
        return ids
    }

    /// The response's ids followed by EOS (unless `appendEOS` is false).
    public func encodeResponse(_ response: String, tokenizer: any Tokenizer, appendEOS: Bool = true) -> [Int32] {
        var ids = response.isEmpty ? [] : tokenizer.encode(response)
        if appendEOS { ids.append(tokenizer.eosTokenId) }
        return ids
    }
}
