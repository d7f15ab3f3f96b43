// Implements percentile bootstrap confidence intervals over questions: of the mean of one model's per-question
// scores, and of the mean paired difference between two models scored on the same questions (resampling questions,
// not the two models separately, so that a question's difficulty cancels out). Resampling is seeded, so the interval
// is reproducible. Does not score (PredictionScorer does).
import KnowTuneTensor

public struct BootstrapInterval: Codable, Equatable, Sendable {
    /// The mean over the questions as given.
    public var mean: Double
    public var lower: Double
    public var upper: Double
    public var confidence: Double
    public var resamples: Int

    /// Whether the interval excludes zero (for a paired difference: a gain or a loss, not noise, at this confidence).
    public var excludesZero: Bool { lower > 0 || upper < 0 }

    /// The percentile interval of the mean of `values` over `resamples` resamples with replacement.
    public init(of values: [Double], resamples: Int = 2000, confidence: Double = 0.95, seed: UInt64 = 42) throws {
        guard !values.isEmpty else { throw KnowTuneError.invalidInput("a bootstrap interval needs at least one question") }
        guard resamples >= 1, confidence > 0, confidence < 1 else {
            throw KnowTuneError.invalidConfiguration("bootstrap: resamples must be ≥ 1 and the confidence in (0, 1)")
        }
        var generator = SplitMix64(seed: seed)
        let n = values.count
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += values[Int(generator.next() % UInt64(n))] }
            means[r] = sum / Double(n)
        }
        means.sort()
        let tail = (1 - confidence) / 2
        func percentile(_ q: Double) -> Double {
            // numpy's default (linear) interpolation between the order statistics.
            let position = q * Double(resamples - 1)
            let below = Int(position.rounded(.down)), above = min(below + 1, resamples - 1)
            return means[below] + (means[above] - means[below]) * (position - Double(below))
        }
        mean = values.reduce(0, +) / Double(n)
        lower = percentile(tail)
        upper = percentile(1 - tail)
        self.confidence = confidence
        self.resamples = resamples
    }

    /// The interval of the mean of `a[i] − b[i]` (the same questions, in the same order).
    public init(pairedDifferenceOf a: [Double], minus b: [Double], resamples: Int = 2000, confidence: Double = 0.95,
                seed: UInt64 = 42) throws {
        guard a.count == b.count else {
            throw KnowTuneError.invalidInput("a paired bootstrap needs the same questions: \(a.count) against \(b.count) scores")
        }
        try self.init(of: zip(a, b).map { $0 - $1 }, resamples: resamples, confidence: confidence, seed: seed)
    }
}
