// Implements METEOR as NLTK 3.7 `meteor_score` / `single_meteor_score` define it (alpha 0.9,
// beta 3, gamma 0.5, `str.lower` preprocessing), with the exact-match stage and the Porter-stem
// stage; does not implement the WordNet synonym stage (no WordNet data here), so it equals NLTK
// called with a `wordnet` whose `synsets` returns []. LLaMA-Factory 0.5.3 has no METEOR; KnowTune
// scores it on jieba-style tokens (see `score(prediction:label:…)`).

import Foundation

/// METEOR (Banerjee & Lavie 2005) as NLTK 3.7 computes it.
public enum METEORScore {
    /// The matching stages run, in NLTK's order, before scoring.
    public enum Stages: Sendable, Equatable {
        /// Exact (lowercased) word matches only.
        case exact
        /// Exact matches, then matches of Porter stems among the words left (NLTK's default
        /// without WordNet).
        case exactThenPorterStem
    }

    /// NLTK 3.7's METEOR parameters.
    public struct Parameters: Sendable, Equatable {
        public var alpha: Double
        public var beta: Double
        public var gamma: Double

        public init(alpha: Double = 0.9, beta: Double = 3.0, gamma: Double = 0.5) {
            self.alpha = alpha
            self.beta = beta
            self.gamma = gamma
        }
    }

    /// KnowTune's METEOR for one prediction, in 0...1: NLTK 3.7 `meteor_score([ref], hyp)` where
    /// both token lists are the non-whitespace jieba tokens of the text.
    ///
    /// NLTK wants pre-tokenised input. jieba's tokens split punctuation off words ("mat." →
    /// "mat", ".") much as NLTK's `word_tokenize` would, without needing its Punkt data, and are
    /// the same words ROUGE sees. Reproduce in Python with
    /// `[w for w in jieba.cut(text) if w.strip()]`.
    public static func score(
        prediction: String, label: String, splitter: JiebaStyleWordSplitter = JiebaStyleWordSplitter(),
        stages: Stages = .exactThenPorterStem, parameters: Parameters = Parameters()
    ) -> Double {
        score(
            predictionTokens: splitter.tokens(of: PythonText.codePoints(prediction)),
            labelTokens: splitter.tokens(of: PythonText.codePoints(label)),
            stages: stages, parameters: parameters)
    }

    static func score(
        predictionTokens: [CodePoints], labelTokens: [CodePoints], stages: Stages, parameters: Parameters
    ) -> Double {
        let words: ([CodePoints]) -> [String] = { tokens in
            tokens.filter { PythonText.hasNonWhitespace($0) }.map { PythonText.string($0) }
        }
        return singleMETEOR(
            reference: words(labelTokens), hypothesis: words(predictionTokens), stages: stages,
            parameters: parameters)
    }

    /// NLTK 3.7 `meteor_score(references, hypothesis)`: the best score over the references.
    public static func meteor(
        references: [[String]], hypothesis: [String], stages: Stages = .exactThenPorterStem,
        parameters: Parameters = Parameters()
    ) -> Double {
        references.map {
            singleMETEOR(reference: $0, hypothesis: hypothesis, stages: stages, parameters: parameters)
        }.max() ?? 0
    }

    /// NLTK 3.7 `single_meteor_score(reference, hypothesis)`.
    ///
    /// - Words are lowercased (`str.lower`); matching is then by code points.
    /// - P = matches / |hyp|, R = matches / |ref|, `Fmean = P·R / (α·P + (1−α)·R)`.
    /// - Chunks: runs of matches adjacent in both the hypothesis and the reference, in hypothesis
    ///   order; `penalty = γ·(chunks / matches)^β`; score = `(1 − penalty)·Fmean`.
    /// - 0 when either side is empty or nothing matches (NLTK's ZeroDivisionError branch).
    public static func singleMETEOR(
        reference: [String], hypothesis: [String], stages: Stages = .exactThenPorterStem,
        parameters: Parameters = Parameters()
    ) -> Double {
        let hypothesisWords = hypothesis.map { PythonText.codePoints(PythonText.lowercased($0)) }
        let referenceWords = reference.map { PythonText.codePoints(PythonText.lowercased($0)) }
        let matches = align(hypothesis: hypothesisWords, reference: referenceWords, stages: stages)
        let matchCount = Double(matches.count)
        guard !hypothesisWords.isEmpty, !referenceWords.isEmpty, !matches.isEmpty else { return 0 }
        let precision = matchCount / Double(hypothesisWords.count)
        let recall = matchCount / Double(referenceWords.count)
        let alpha = parameters.alpha
        let fMean = (precision * recall) / (alpha * precision + (1 - alpha) * recall)
        let fragmentation = Double(chunkCount(matches)) / matchCount
        let penalty = parameters.gamma * pow(fragmentation, parameters.beta)
        return (1 - penalty) * fMean
    }

    /// NLTK 3.7 `_enum_align_words` without the WordNet stage: the (hypothesis index, reference
    /// index) pairs of every stage, sorted by hypothesis index.
    static func align(hypothesis: [CodePoints], reference: [CodePoints], stages: Stages) -> [(Int, Int)] {
        var hypothesisLeft = Array(hypothesis.enumerated().map { ($0.offset, $0.element) })
        var referenceLeft = Array(reference.enumerated().map { ($0.offset, $0.element) })
        var matches = matchGreedily(&hypothesisLeft, &referenceLeft)
        if stages == .exactThenPorterStem {
            let stemmer = PorterStemmer()
            // NLTK stems the words left over by the exact stage and matches the stems the same way.
            hypothesisLeft = hypothesisLeft.map { ($0.0, stemmer.stem(codePoints: $0.1)) }
            referenceLeft = referenceLeft.map { ($0.0, stemmer.stem(codePoints: $0.1)) }
            matches += matchGreedily(&hypothesisLeft, &referenceLeft)
        }
        return matches.sorted { $0.0 < $1.0 }
    }

    /// NLTK 3.7 `_match_enums`: from the last hypothesis word to the first, pair it with the last
    /// remaining equal reference word and remove both. The order decides the chunk count.
    static func matchGreedily(
        _ hypothesis: inout [(Int, CodePoints)], _ reference: inout [(Int, CodePoints)]
    ) -> [(Int, Int)] {
        var matches: [(Int, Int)] = []
        for i in hypothesis.indices.reversed() {
            for j in reference.indices.reversed() where hypothesis[i].1 == reference[j].1 {
                matches.append((hypothesis[i].0, reference[j].0))
                hypothesis.remove(at: i)
                reference.remove(at: j)
                break
            }
        }
        return matches
    }

    /// NLTK 3.7 `_count_chunks` on matches sorted by hypothesis index.
    static func chunkCount(_ matches: [(Int, Int)]) -> Int {
        var chunks = 1
        for index in matches.indices.dropLast() {
            let current = matches[index]
            let next = matches[index + 1]
            if !(next.0 == current.0 + 1 && next.1 == current.1 + 1) { chunks += 1 }
        }
        return chunks
    }
}
