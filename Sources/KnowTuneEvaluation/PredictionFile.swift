// Implements reading LLaMA-Factory 0.5.3's `generated_predictions.jsonl` (one
// `{"label": …, "predict": …}` object per line, "\n"-joined, usually without a trailing newline),
// keeping every good line and reporting each bad one by line number; does not write the file, and
// cannot undo the `clean_up_tokenization_spaces` LF applies to the saved `predict` text (so scores
// recomputed from the file can differ slightly from the ones LF logged).

import Foundation
import KnowTuneTensor

/// One line of `generated_predictions.jsonl`.
public struct PredictionRecord: Codable, Equatable, Sendable {
    public var label: String
    public var predict: String

    public init(label: String, predict: String) {
        self.label = label
        self.predict = predict
    }
}

/// Why one line of a predictions file was skipped (reported, not thrown: the other lines are still scored).
public enum PredictionLineProblem: Equatable, Sendable, CustomStringConvertible {
    case invalidUTF8(line: Int)
    case invalidJSON(line: Int, reason: String)
    case notAnObject(line: Int)
    case missingKey(line: Int, key: String)
    case notAString(line: Int, key: String)

    /// The 1-based line the problem is on.
    public var line: Int {
        switch self {
        case .invalidUTF8(let line), .invalidJSON(let line, _), .notAnObject(let line),
             .missingKey(let line, _), .notAString(let line, _):
            return line
        }
    }

    public var description: String {
        switch self {
        case .invalidUTF8(let line):
            return "line \(line): not valid UTF-8"
        case .invalidJSON(let line, let reason):
            return "line \(line): not valid JSON (\(reason))"
        case .notAnObject(let line):
            return "line \(line): expected a JSON object {\"label\": …, \"predict\": …}"
        case .missingKey(let line, let key):
            return "line \(line): missing key \"\(key)\""
        case .notAString(let line, let key):
            return "line \(line): \"\(key)\" is not a string"
        }
    }
}

/// The readable records of a predictions file, and the lines that were skipped.
public struct PredictionFile: Sendable {
    /// Good records, in file order.
    public var records: [PredictionRecord]
    /// The 1-based line number of each record in `records`.
    public var recordLines: [Int]
    /// One entry per skipped line, in file order.
    public var skipped: [PredictionLineProblem]

    /// How many non-blank lines could not be read (the warning count).
    public var skippedLineCount: Int { skipped.count }

    /// Reads and parses a predictions file.
    ///
    /// - Throws: `KnowTuneError.fileUnreadable` only when the file cannot be read at all;
    ///   bad lines are collected in `skipped` instead.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw KnowTuneError.fileUnreadable(path: url.path, reason: "predictions file: \(error.localizedDescription)")
        }
        self.init(parsing: data)
    }

    /// Parses predictions-file bytes. Lines are split on "\n" only (LF joins with "\n", and text
    /// inside JSON strings may hold U+2028 or "\r"); a trailing "\r" is JSON whitespace and is
    /// accepted. Blank lines, such as a final newline, are ignored rather than reported.
    public init(parsing data: Data) {
        records = []
        recordLines = []
        skipped = []
        let decoder = JSONDecoder()
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let isBlank = line.allSatisfy { [0x20, 0x09, 0x0D].contains($0) }
            if isBlank { continue }
            let lineData = Data(line)
            guard String(data: lineData, encoding: .utf8) != nil else {
                skipped.append(.invalidUTF8(line: lineNumber))
                continue
            }
            do {
                records.append(try decoder.decode(PredictionRecord.self, from: lineData))
                recordLines.append(lineNumber)
            } catch let error as DecodingError {
                skipped.append(Self.lineError(error, line: lineNumber))
            } catch {
                skipped.append(.invalidJSON(line: lineNumber, reason: String(describing: error)))
            }
        }
    }

    /// Maps a decoding failure to the typed problem for that line.
    private static func lineError(_ error: DecodingError, line: Int) -> PredictionLineProblem {
        switch error {
        case .keyNotFound(let key, _):
            return .missingKey(line: line, key: key.stringValue)
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            if let key = context.codingPath.first {
                return .notAString(line: line, key: key.stringValue)
            }
            return .notAnObject(line: line)
        case .dataCorrupted(let context):
            return .invalidJSON(line: line, reason: context.debugDescription)
        @unknown default:
            return .invalidJSON(line: line, reason: String(describing: error))
        }
    }
}
