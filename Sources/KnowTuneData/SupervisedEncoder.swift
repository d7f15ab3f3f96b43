// Implements turning Alpaca examples into SFT token sequences (prompt labels −100, response + EOS labelled) with
// LLaMA-Factory 0.5.3's proportional truncation (`_make_pairs` / `infer_max_len`); does not batch.
import Foundation
import KnowTuneModel
import KnowTuneTensor

public struct EncodedExample: Equatable {
    public var prompt: [Int32]
    /// Response ids (EOS included unless truncated away).
    public var response: [Int32]
    /// Index in the loaded example list.
    public var index: Int
    public var tokenCount: Int { prompt.count + response.count }
}

public struct EncodingReport: Equatable {
    public var kept = 0
    public var truncated = 0
    public var skippedEmpty = 0
}

public struct SupervisedEncoder {
    public let template: ChatTemplate
    public let tokenizer: any Tokenizer
    public let cutoffLength: Int
    public let reservedLabelLength: Int

    public init(template: ChatTemplate, tokenizer: any Tokenizer, cutoffLength: Int = 1024, reservedLabelLength: Int = 1) {
        self.template = template
        self.tokenizer = tokenizer
        self.cutoffLength = cutoffLength
        self.reservedLabelLength = reservedLabelLength
    }

    /// LLaMA-Factory `infer_max_len` for one turn: the budget is split in proportion to the lengths, the label
    /// keeping at least `reserved` tokens; both are cut from the right.
    public static func truncate(source: Int, target: Int, budget: Int, reserved: Int) -> (source: Int, target: Int) {
        guard source + target > budget else { return (source, target) }
        let maxTarget = max(Int(Double(budget) * Double(target) / Double(source + target)), reserved)
        let maxSource = budget - maxTarget
        return (min(source, max(maxSource, 0)), min(target, maxTarget))
    }

    /// How much of a source and a target of these lengths fit the cutoff (`truncate` with this encoder's budget).
    public func kept(source: Int, target: Int) -> (source: Int, target: Int) {
        Self.truncate(source: source, target: target, budget: cutoffLength, reserved: reservedLabelLength)
    }

    public func encodeResponse(_ response: String) -> [Int32] { template.encodeResponse(response, tokenizer: tokenizer) }

    public func encodePrompt(_ example: AlpacaExample) -> [Int32] {
        template.encodePrompt(ChatTemplate.userContent(instruction: example.instruction, input: example.input),
                              system: example.system, tokenizer: tokenizer)
    }

    /// Encodes SFT examples; empty prompts or responses are skipped and counted (KnowTune's rule, as LFDEC).
    public func encode(_ examples: [AlpacaExample]) -> (examples: [EncodedExample], report: EncodingReport) {
        var report = EncodingReport()
        var result: [EncodedExample] = []
        for (index, example) in examples.enumerated() {
            let content = ChatTemplate.userContent(instruction: example.instruction, input: example.input)
            guard let response = example.responses.first,
                  !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                  !response.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                report.skippedEmpty += 1
                continue
            }
            var prompt = encodePrompt(example)
            var answer = encodeResponse(response)
            let fit = kept(source: prompt.count, target: answer.count)
            if fit.source < prompt.count || fit.target < answer.count {
                report.truncated += 1
                prompt = Array(prompt.prefix(fit.source))
                answer = Array(answer.prefix(fit.target))
            }
            guard !prompt.isEmpty, !answer.isEmpty else {
                report.skippedEmpty += 1
                continue
            }
            report.kept += 1
            result.append(EncodedExample(prompt: prompt, response: answer, index: index))
        }
        return (result, report)
    }
}
