// Implements `knowtune score`: per-response-token log-probs and mean NLL of a response given a prompt (templated
// or raw), for one pair or a JSONL file; stdout carries one JSON object per scored record, logs go to stderr.
import ArgumentParser
import Foundation
import KnowTuneData
import KnowTuneModel
import KnowTuneTensor

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a response: {\"ids\", \"prompt_length\", \"response_logprobs\", \"nll_mean\"} per record.",
        discussion: """
            One pair: --instruction Q [--input I] (templated, --template alpaca by default) or --prompt RAW, plus \
            --response R. Many: --file records.jsonl whose lines hold "instruction" (+ optional "input") or "prompt", \
            and "response" (or "output"). EOS is appended to the response unless --no_eos.
            """)

    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("template")) var templateName = "alpaca"
    @Option(name: .customLong("instruction")) var instruction: String?
    @Option(name: .customLong("input")) var input: String?
    @Option(name: .customLong("prompt"), help: "A raw prompt, used verbatim (no template).") var rawPrompt: String?
    @Option(name: .customLong("response")) var response: String?
    @Option(name: .customLong("file")) var file: String?
    @Flag(name: .customLong("no_eos")) var noEOS = false

    func validate() throws {
        if file == nil {
            guard (instruction == nil) != (rawPrompt == nil) else {
                throw ValidationError("give exactly one of --instruction and --prompt (or --file)")
            }
            guard response != nil else { throw ValidationError("--response is required (or --file)") }
        } else if instruction != nil || rawPrompt != nil || response != nil {
            throw ValidationError("--file cannot be combined with --instruction, --prompt or --response")
        }
    }

    struct Record {
        var instruction: String?
        var input: String?
        var prompt: String?
        var response: String
    }

    func run() throws {
        try runReportingErrors {
            let template = try ChatTemplate.named(templateName)
            let records = try file.map(Self.readRecords) ?? [Record(instruction: instruction, input: input, prompt: rawPrompt, response: response ?? "")]
            let loaded = try model.load()
            let tokenizer = loaded.tokenizer
            let pairs = records.map { record -> (prompt: [Int32], response: [Int32]) in
                let prompt = record.prompt.map { tokenizer.encode($0) }
                    ?? template.encodePrompt(ChatTemplate.userContent(instruction: record.instruction ?? "", input: record.input),
                                             tokenizer: tokenizer)
                return (prompt, template.encodeResponse(record.response, tokenizer: tokenizer, appendEOS: !noEOS))
            }
            let scorer = SequenceScorer(decoder: LlamaDecoder(weights: loaded.weights), lora: nil)
            let encoder = JSONEncoder()
            for score in try scorer.score(pairs) {
                print(String(decoding: try encoder.encode(score), as: UTF8.self))
            }
        }
    }

    static func readRecords(_ path: String) throws -> [Record] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no such file")
        }
        var records: [Record] = []
        for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw KnowTuneError.badFormat(path: path, reason: "line \(index + 1) is not a JSON object")
            }
            guard let response = (object["response"] ?? object["output"]) as? String else {
                throw KnowTuneError.badFormat(path: path, reason: "line \(index + 1) has no string \"response\" (or \"output\")")
            }
            let instruction = object["instruction"] as? String, prompt = object["prompt"] as? String
            guard (instruction == nil) != (prompt == nil) else {
                throw KnowTuneError.badFormat(path: path, reason: "line \(index + 1) needs exactly one of \"instruction\" and \"prompt\"")
            }
            records.append(Record(instruction: instruction, input: object["input"] as? String, prompt: prompt, response: response))
        }
        guard !records.isEmpty else { throw KnowTuneError.invalidInput("\(path) holds no records") }
        return records
    }
}
