// Implements the prompt templates KnowTune trains and scores with, as text segments that are tokenized
// separately (LLaMA-Factory's `Template._encode`); does not truncate (the data pipeline does) or read datasets.
import Foundation
import KnowTuneModel
import KnowTuneTensor

/// A prompt format: single-turn for training and scoring, multi-turn for the API server.
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

    /// A later user turn, after the first (LLaMA-Factory's `format_user` without the system prefix).
    public func laterTurnSegment(_ content: String) -> String {
        switch kind {
        case .alpaca, .alpacaLF053: return "### Instruction:\n\(content)\n\n### Response:\n"
        case .default: return "Human: \(content)\nAssistant: "
        case .chatml: return "<|im_start|>user\n\(content)<|im_end|>\n<|im_start|>assistant\n"
        case .llama2: return "[INST] \(content) [/INST]"
        }
    }

    /// What separates an answered turn from the next (LLaMA-Factory's `format_separator`).
    public var turnSeparator: String {
        switch kind {
        case .alpaca, .alpacaLF053: return "\n\n"
        case .default, .chatml: return "\n"
        case .llama2: return ""
        }
    }

    /// A multi-turn prompt, as LLaMA-Factory's `Template._encode` builds it: the first turn with the system text,
    /// each earlier answer followed by EOS and the separator, then the next user turn (llama2 starts each with BOS).
    /// With no history it equals `encodePrompt`.
    public func encodeConversation(history: [(user: String, assistant: String)], user: String, system: String? = nil,
                                   tokenizer: any Tokenizer) -> [Int32] {
        guard let first = history.first else { return encodePrompt(user, system: system, tokenizer: tokenizer) }
        var ids = encodePrompt(first.user, system: system, tokenizer: tokenizer)
        let users = history.dropFirst().map(\.user) + [user]
        for (answer, nextUser) in zip(history.map(\.assistant), users) {
            ids += encodeResponse(answer, tokenizer: tokenizer)
            if !turnSeparator.isEmpty { ids += tokenizer.encode(turnSeparator) }
            if addsBOS, let bos = tokenizer.bosTokenId { ids.append(bos) }
            ids += tokenizer.encode(laterTurnSegment(nextUser))
        }
        return ids
    }

    /// The ids that end a chat reply: EOS, and `<|im_end|>` when the vocabulary holds it as one token (chatml ends a
    /// turn with it, which is not always the model's EOS).
    public static func replyStopTokenIds(tokenizer: any Tokenizer) -> [Int32] {
        var stops: [Int32] = [tokenizer.eosTokenId]
        let turnEnd = tokenizer.encode("<|im_end|>")
        if turnEnd.count == 1, !stops.contains(turnEnd[0]) { stops.append(turnEnd[0]) }
        return stops
    }

    /// The response's ids followed by EOS (unless `appendEOS` is false).
    public func encodeResponse(_ response: String, tokenizer: any Tokenizer, appendEOS: Bool = true) -> [Int32] {
        var ids = response.isEmpty ? [] : tokenizer.encode(response)
        if appendEOS { ids.append(tokenizer.eosTokenId) }
        return ids
    }
}
