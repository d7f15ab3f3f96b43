// Implements turning ranking (preference) examples into DPO token pairs: prompt, chosen + EOS and rejected + EOS,
// each answer truncated against the prompt on its own with LLaMA-Factory 0.5.3's proportional rule
// (LLaMA-Factory 0.5.3's `preprocess_pairwise_dataset`); does not batch or compute anything.
import Foundation
import KnowTuneModel
import KnowTuneTensor

/// One preference pair, ready for the model: the sequences are `prompt + chosen` and `prompt + rejected`.
public struct EncodedPair: Equatable {
    public var prompt: [Int32]
    /// Chosen answer ids (EOS included unless truncated away).
    public var chosen: [Int32]
    /// Rejected answer ids (EOS included unless truncated away).
    public var rejected: [Int32]
    /// Index in the loaded example list.
    public var index: Int

    public init(prompt: [Int32], chosen: [Int32], rejected: [Int32], index: Int) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.index = index
    }

    /// Tokens of both sequences together (the prompt runs twice).
    public var tokenCount: Int { 2 * prompt.count + chosen.count + rejected.count }
    /// The longer of the two sequences.
    public var longestSequence: Int { prompt.count + max(chosen.count, rejected.count) }
}

public struct PairwiseReport: Equatable {
    public var kept = 0
    /// Pairs where the chosen or the rejected sequence was cut.
    public var truncated = 0
    /// Pairs skipped for an empty prompt, chosen or rejected answer.
    public var skippedEmpty = 0
    /// Pairs kept although chosen and rejected are the same text (their DPO gradient is zero).
    public var identical = 0
}

public struct PairwiseEncoder {
    /// Prompts and answers are encoded, and cut, as for SFT.
    public let supervised: SupervisedEncoder

    public init(template: ChatTemplate, tokenizer: any Tokenizer, cutoffLength: Int = 1024, reservedLabelLength: Int = 1) {
        supervised = SupervisedEncoder(template: template, tokenizer: tokenizer, cutoffLength: cutoffLength,
                                       reservedLabelLength: reservedLabelLength)
    }

    /// LLaMA-Factory refuses `--stage dpo` (and rm) on data that is not ranked ("Please use ranked datasets");
    /// separate chosen/rejected columns count as ranked.
    public static func requireRanking(_ entries: [DatasetEntry]) throws {
        let unranked = entries.filter { !$0.ranking && ($0.chosenColumn == nil || $0.rejectedColumn == nil) }
        guard !unranked.isEmpty else { return }
        throw KnowTuneError.invalidConfiguration(
            "--stage dpo needs ranking datasets, and \(unranked.map { "'\($0.name)'" }.joined(separator: ", ")) "
            + "\(unranked.count == 1 ? "is" : "are") not: mark it \"ranking\": true in dataset_info.json with a [chosen, rejected] "
            + "response list, or map \"chosen\" and \"rejected\" columns")
    }

    /// Encodes the pairs. A response list that is not exactly [chosen, rejected] is an error naming the record
    /// (LLaMA-Factory would silently use the first two, or drop the row); empty texts are skipped and counted.
    public func encode(_ examples: [AlpacaExample]) throws -> (pairs: [EncodedPair], report: PairwiseReport) {
        var report = PairwiseReport()
        var pairs: [EncodedPair] = []
        for (index, example) in examples.enumerated() {
            guard example.responses.count == 2 else {
                throw KnowTuneError.invalidInput(
                    "\(example.source.isEmpty ? "record \(index)" : example.source): a ranking response must be a "
                    + "[chosen, rejected] list of 2 texts, found \(example.responses.count)")
            }
            let content = ChatTemplate.userContent(instruction: example.instruction, input: example.input)
            let (chosenText, rejectedText) = (example.responses[0], example.responses[1])
            let blank = { (text: String) in text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
            if blank(content) || blank(chosenText) || blank(rejectedText) {
                report.skippedEmpty += 1
                continue
            }
            if chosenText == rejectedText { report.identical += 1 }
            let fullPrompt = supervised.encodePrompt(example)
            var chosen = supervised.encodeResponse(chosenText)
            var rejected = supervised.encodeResponse(rejectedText)
            // Each answer is cut against the full prompt on its own; the prompt is the chosen encoding's (LF053).
            let keptChosen = supervised.kept(source: fullPrompt.count, target: chosen.count)
            let keptRejected = supervised.kept(source: fullPrompt.count, target: rejected.count)
            let prompt = Array(fullPrompt.prefix(keptChosen.source))
            if keptChosen.source < fullPrompt.count || keptChosen.target < chosen.count || keptRejected.target < rejected.count {
                report.truncated += 1
                chosen = Array(chosen.prefix(keptChosen.target))
                rejected = Array(rejected.prefix(keptRejected.target))
            }
            guard !prompt.isEmpty, !chosen.isEmpty, !rejected.isEmpty else {
                report.skippedEmpty += 1
                continue
            }
            report.kept += 1
            pairs.append(EncodedPair(prompt: prompt, chosen: chosen, rejected: rejected, index: index))
        }
        return (pairs, report)
    }
}
