// Implements reading Alpaca-format records (JSON array or JSON lines) through a registry entry's column mapping,
// keeping the first `max_samples` rows (LLaMA-Factory order: before conversion and filtering); does not tokenize.
import Foundation
import KnowTuneTensor

/// One record after column mapping.
public struct AlpacaExample: Equatable {
    public var instruction: String
    public var input: String
    /// For SFT: one response. For ranking data: [chosen, rejected, …].
    public var responses: [String]
    public var system: String?
    /// Dataset name and row, for messages.
    public var source: String

    public init(instruction: String, input: String = "", responses: [String], system: String? = nil, source: String = "") {
        self.instruction = instruction
        self.input = input
        self.responses = responses
        self.system = system
        self.source = source
    }
}

public enum DatasetLoader {
    /// Loads and concatenates `names` (comma list) in order.
    public static func load(names: [String], registry: DatasetRegistry, maxSamples: Int?) throws -> [AlpacaExample] {
        guard !names.isEmpty else { throw KnowTuneError.invalidConfiguration("--dataset is empty") }
        var all: [AlpacaExample] = []
        for name in names {
            let entry = try registry.entry(named: name)
            all += try load(entry: entry, path: registry.path(of: entry), maxSamples: maxSamples)
        }
        return all
    }

    public static func load(entry: DatasetEntry, path: String, maxSamples: Int?) throws -> [AlpacaExample] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "data file of dataset '\(entry.name)' is missing")
        }
        var rows = try parseRows(data, path: path)
        guard !rows.isEmpty else {
            throw KnowTuneError.badFormat(path: path, reason: "dataset '\(entry.name)' has no records")
        }
        if let maxSamples, maxSamples >= 0 { rows = Array(rows.prefix(maxSamples)) }
        return try rows.enumerated().map { index, row in try convert(row, entry: entry, row: index, path: path) }
    }

    static func parseRows(_ data: Data, path: String) throws -> [[String: Any]] {
        let text = String(decoding: data, as: UTF8.self)
        if text.drop(while: { $0.isWhitespace }).first == "[" {
            do {
                guard let array = try JSONSerialization.jsonObject(with: data) as? [Any] else {
                    throw KnowTuneError.badFormat(path: path, reason: "expected a JSON array of records")
                }
                return try array.enumerated().map { index, element in
                    guard let object = element as? [String: Any] else {
                        throw KnowTuneError.badFormat(path: path, reason: "record \(index) is not a JSON object")
                    }
                    return object
                }
            } catch let error as KnowTuneError {
                throw error
            } catch {
                throw KnowTuneError.badFormat(path: path, reason: "malformed JSON: \(error.localizedDescription)")
            }
        }
        var rows: [[String: Any]] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw KnowTuneError.badFormat(path: path, reason: "line \(index + 1) is not a JSON object (expected a JSON array or JSON lines)")
            }
            rows.append(object)
        }
        return rows
    }

    static func convert(_ row: [String: Any], entry: DatasetEntry, row index: Int, path: String) throws -> AlpacaExample {
        let record = JSONFields(row, path: path, place: "record \(index)")
        func string(_ column: String?) throws -> String? { try column.flatMap { try record.string($0) } }
        guard let promptColumn = entry.promptColumn, row[promptColumn] != nil else {
            throw KnowTuneError.badFormat(path: path, reason: "record \(index) has no '\(entry.promptColumn ?? "prompt")' column (dataset \(entry.name))")
        }
        let instruction = try string(promptColumn) ?? ""
        let input = try string(entry.queryColumn) ?? ""
        var responses: [String]
        if let chosen = entry.chosenColumn, let rejected = entry.rejectedColumn {
            guard let c = try string(chosen), let r = try string(rejected) else {
                throw KnowTuneError.badFormat(path: path, reason: "record \(index) lacks '\(chosen)' or '\(rejected)' (dataset \(entry.name))")
            }
            responses = [c, r]
        } else {
            guard let responseColumn = entry.responseColumn, let value = row[responseColumn] else {
                throw KnowTuneError.badFormat(path: path, reason: "record \(index) has no '\(entry.responseColumn ?? "response")' column (dataset \(entry.name))")
            }
            if let text = value as? String {
                responses = [text]
            } else if let list = value as? [Any] {
                guard !list.isEmpty else { throw record.wrongType(responseColumn, expected: "a string or a non-empty list of strings") }
                responses = try list.map { element in
                    guard let text = element as? String else {
                        throw KnowTuneError.badFormat(path: path, reason: "record \(index): '\(responseColumn)' list holds a non-string")
                    }
                    return text
                }
            } else {
                throw KnowTuneError.badFormat(path: path, reason: "record \(index): '\(responseColumn)' is neither a string nor a list")
            }
        }
        if entry.ranking, responses.count < 2 {
            throw KnowTuneError.badFormat(path: path, reason: "record \(index) of ranking dataset \(entry.name) needs a [chosen, rejected] response list")
        }
        return AlpacaExample(instruction: instruction, input: input, responses: responses, system: try string(entry.systemColumn),
                             source: "\(entry.name)[\(index)]")
    }
}
