// Implements the counts a KA/KC build reports (facts per answer, kept facts, pairs, skips by reason) as JSON
// (`<output>.summary.json`, stdout) and as lines for the log; does not compute anything the builders did not record.
import Foundation

/// Min, median, mean and max of a count over records.
public struct CountDistribution: Codable, Equatable, Sendable {
    public var minimum: Int
    public var median: Double
    public var mean: Double
    public var maximum: Int

    public init(_ values: [Int]) {
        let sorted = values.sorted()
        minimum = sorted.first ?? 0
        maximum = sorted.last ?? 0
        mean = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count)
        let n = sorted.count
        median = n == 0 ? 0 : n % 2 == 1 ? Double(sorted[n / 2]) : Double(sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    enum CodingKeys: String, CodingKey { case minimum = "min", median, mean, maximum = "max" }
}

public struct KnowledgeBuildSummary: Codable, Equatable, Sendable {
    public var stage: KnowledgeStage
    /// The registered name (`<dataset>_KA` / `_KC`).
    public var name: String
    public var outputFile: String
    public var teacher: String
    /// Source records (after `--max_samples`).
    public var records: Int
    /// Records whose result came from the cache of an earlier run.
    public var recordsFromCache: Int
    /// Records written to the output file.
    public var outputRecords: Int
    public var emptyAnswers: Int
    /// Answers with exactly one fact.
    public var singleFactAnswers: Int
    public var facts: Int
    public var factsPerAnswer: CountDistribution
    /// KA: facts kept as difficult, over all records.
    public var keptFacts: Int?
    /// KA: new fine-grained pairs.
    public var newPairs: Int?
    /// KC: pairs per disturbance.
    public var pairs: [String: Int]?
    /// "what.reason" → count, e.g. "record.no_facts", "illogical.too_few_facts", "nonfactual.unchanged".
    public var skipped: [String: Int]
    public var seconds: Double

    init(stage: KnowledgeStage, paths: KnowledgeBuildPaths, teacher: String, records: [SourceRecord], factLists: [[String]],
         fromCache: Int, outputRecords: Int) {
        self.stage = stage
        name = paths.name
        outputFile = paths.output
        self.teacher = teacher
        self.records = records.count
        recordsFromCache = fromCache
        self.outputRecords = outputRecords
        emptyAnswers = records.filter { $0.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }.count
        singleFactAnswers = factLists.filter { $0.count == 1 }.count
        facts = factLists.reduce(0) { $0 + $1.count }
        factsPerAnswer = CountDistribution(factLists.map(\.count))
        skipped = [:]
        seconds = 0
    }

    /// Sorted-key JSON with snake_case names.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Human-readable lines for the log.
    public var lines: [String] {
        var lines = [
            "\(name): \(outputRecords) records → \(outputFile) (\(records) source records, \(recordsFromCache) from the cache, "
                + String(format: "%.1f s)", seconds),
            "facts: \(facts) (per answer min \(factsPerAnswer.minimum), median \(factsPerAnswer.median), "
                + String(format: "mean %.2f", factsPerAnswer.mean) + ", max \(factsPerAnswer.maximum)); "
                + "\(singleFactAnswers) single-fact answers, \(emptyAnswers) empty answers",
        ]
        if let keptFacts, let newPairs { lines.append("KA: kept \(keptFacts) difficult facts, \(newPairs) new QA pairs") }
        if let pairs {
            lines.append("KC pairs: " + pairs.keys.sorted().map { "\($0) \(pairs[$0] ?? 0)" }.joined(separator: ", "))
        }
        let skips = skipped.keys.sorted().map { "\($0) \(skipped[$0] ?? 0)" }
        lines.append("skipped: " + (skips.isEmpty ? "none" : skips.joined(separator: ", ")))
        return lines
    }
}
