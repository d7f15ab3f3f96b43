// Implements the fact-level statistics of `knowtune judge`: atomic facts per predicted and per reference answer
// (the `rules` extractor) and the share of predicted facts that the reference supports by a lexical-overlap
// rule; does not judge truth beyond the reference (no model, no retrieval) and does not read prediction files.
import Foundation
import KnowTuneEvaluation

/// FActScore-style counts without a model: how many facts a prediction states, and how many of them its reference
/// answer supports.
///
/// **Support rule.** A fact's *content words* are its lowercased letter/digit runs (each CJK or Hangul character
/// is its own word) without stop words and without a final "'s", Porter-stemmed (NLTK's stemmer, as METEOR uses).
/// A predicted fact is *supported* when some reference fact holds at least `threshold` (default ½) of
/// its content words. A fact without content words ("Yes.") is compared on all its words; a fact without any
/// words is not counted.
public struct FactStatistics: Codable, Equatable, Sendable {
    public var records: Int
    public var predictedFactsPerAnswer: CountDistribution
    public var referenceFactsPerAnswer: CountDistribution
    public var predictedFacts: Int
    public var supportedFacts: Int
    /// supported / predicted facts over all records (micro average); 0 without predicted facts.
    public var supportedShare: Double
    /// The mean over records with at least one predicted fact of their supported share (macro average).
    public var supportedShareMacro: Double
    /// Predicted facts that are not supported, per answer.
    public var unsupportedFactsPerAnswer: Double
    public var threshold: Double

    /// The statistics of `(prediction, reference)` pairs.
    public static func evaluate(_ pairs: [(prediction: String, reference: String)], threshold: Double = 0.5,
                                splitter: AtomicFactSplitter = AtomicFactSplitter()) -> FactStatistics {
        var predictedCounts: [Int] = [], referenceCounts: [Int] = []
        var predictedTotal = 0, supportedTotal = 0
        var shares: [Double] = []
        for pair in pairs {
            let predicted = splitter.facts(in: pair.prediction).map(contentWords).filter { !$0.isEmpty }
            let reference = splitter.facts(in: pair.reference).map(contentWords).filter { !$0.isEmpty }
            let supported = predicted.filter { isSupported($0, by: reference, threshold: threshold) }.count
            predictedCounts.append(predicted.count)
            referenceCounts.append(reference.count)
            predictedTotal += predicted.count
            supportedTotal += supported
            if !predicted.isEmpty { shares.append(Double(supported) / Double(predicted.count)) }
        }
        return FactStatistics(
            records: pairs.count, predictedFactsPerAnswer: CountDistribution(predictedCounts),
            referenceFactsPerAnswer: CountDistribution(referenceCounts), predictedFacts: predictedTotal, supportedFacts: supportedTotal,
            supportedShare: predictedTotal == 0 ? 0 : Double(supportedTotal) / Double(predictedTotal),
            supportedShareMacro: shares.isEmpty ? 0 : shares.reduce(0, +) / Double(shares.count),
            unsupportedFactsPerAnswer: pairs.isEmpty ? 0 : Double(predictedTotal - supportedTotal) / Double(pairs.count),
            threshold: threshold)
    }

    /// True when one reference fact holds at least `threshold` of `fact`'s words.
    static func isSupported(_ fact: Set<String>, by reference: [Set<String>], threshold: Double) -> Bool {
        reference.contains { Double(fact.intersection($0).count) >= threshold * Double(fact.count) }
    }

    /// The content words of `fact` (all its words when it has no content word).
    public static func contentWords(_ fact: String) -> Set<String> {
        var rawWords: [String] = []
        var current = ""
        func flush() {
            if !current.isEmpty { rawWords.append(current) }
            current = ""
        }
        for character in fact.lowercased() {
            if character.unicodeScalars.contains(where: { $0.value >= 0x2E80 && $0.value <= 0x9FFF || $0.value >= 0xAC00 && $0.value <= 0xD7AF }) {
                flush()
                rawWords.append(String(character))
            } else if character.isLetter || character.isNumber || character == "'" || character == "’" {
                current.append(character)
            } else {
                flush()
            }
        }
        flush()
        let words = rawWords.map { word -> String in
            var word = word
            if word.hasSuffix("'s") || word.hasSuffix("’s") { word.removeLast(2) }
            return word.trimmingCharacters(in: CharacterSet(charactersIn: "'’"))
        }.filter { !$0.isEmpty }
        let content = words.filter { !EnglishWords.stopWords.contains($0) }
        return Set((content.isEmpty ? words : content).map(stemmer.stem))
    }

    static let stemmer = PorterStemmer()

    /// Sorted-key JSON with snake_case names.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
