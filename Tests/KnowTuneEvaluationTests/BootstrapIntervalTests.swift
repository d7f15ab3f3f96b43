// Checks the bootstrap intervals: degenerate data give a point, a large normal-like sample gives the normal-theory
// interval mean ± 1.96·s/√n, the percentile uses numpy's linear interpolation (worked by hand on two values), a paired
// difference cancels what the two models share, and the seed makes it reproducible.
import KnowTuneEvaluation
import KnowTuneTensor
import XCTest

final class BootstrapIntervalTests: XCTestCase {
    func testConstantScoresGiveAPoint() throws {
        let interval = try BootstrapInterval(of: [42.5, 42.5, 42.5], resamples: 500)
        XCTAssertEqual(interval.mean, 42.5)
        XCTAssertEqual(interval.lower, 42.5)
        XCTAssertEqual(interval.upper, 42.5)
        XCTAssertTrue(interval.excludesZero)
    }

    /// Two values 0 and 1: a resample's mean is 0, ½ or 1 with probability ¼, ½, ¼, so the 2.5 % and 97.5 %
    /// percentiles of 4,000 resamples are 0 and 1 (about 1,000 of each extreme), and the median resample is ½.
    func testPercentilesOfTwoValues() throws {
        let interval = try BootstrapInterval(of: [0, 1], resamples: 4000)
        XCTAssertEqual(interval.mean, 0.5)
        XCTAssertEqual(interval.lower, 0)
        XCTAssertEqual(interval.upper, 1)
        XCTAssertFalse(interval.excludesZero)
    }

    func testLargeSampleMatchesNormalTheory() throws {
        var generator = SplitMix64(seed: 9)
        // Sums of 12 uniforms: mean 6 + shift, variance 1.
        let values = (0..<400).map { _ in (0..<12).map { _ in Double(generator.nextUnitFloat()) }.reduce(0, +) + 4 }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
        let halfWidth = 1.96 * (variance / Double(values.count)).squareRoot()
        let interval = try BootstrapInterval(of: values, resamples: 4000, seed: 3)
        XCTAssertEqual(interval.mean, mean, accuracy: 1e-12)
        XCTAssertEqual(interval.upper - interval.lower, 2 * halfWidth, accuracy: 0.1 * 2 * halfWidth)
        XCTAssertEqual((interval.upper + interval.lower) / 2, mean, accuracy: 0.1 * halfWidth)
    }

    func testPairedDifferenceCancelsSharedDifficulty() throws {
        var generator = SplitMix64(seed: 5)
        // Question difficulty varies widely; model A is exactly 2 points better on every question.
        let baseline = (0..<50).map { _ in Double(generator.nextUnitFloat()) * 60 }
        let better = baseline.map { $0 + 2 }
        let paired = try BootstrapInterval(pairedDifferenceOf: better, minus: baseline, resamples: 1000)
        XCTAssertEqual(paired.mean, 2, accuracy: 1e-12)
        XCTAssertEqual(paired.lower, 2, accuracy: 1e-9)
        XCTAssertEqual(paired.upper, 2, accuracy: 1e-9)
        // Unpaired, the two intervals overlap widely: the gain would look like noise.
        let a = try BootstrapInterval(of: better, resamples: 1000), b = try BootstrapInterval(of: baseline, resamples: 1000)
        XCTAssertLessThan(a.lower, b.upper)
        XCTAssertThrowsError(try BootstrapInterval(pairedDifferenceOf: [1, 2], minus: [1]))
        XCTAssertThrowsError(try BootstrapInterval(of: []))
    }

    func testSeedMakesItReproducible() throws {
        let values = (0..<30).map { Double(($0 * 37) % 11) }
        XCTAssertEqual(try BootstrapInterval(of: values, seed: 1), try BootstrapInterval(of: values, seed: 1))
        XCTAssertNotEqual(try BootstrapInterval(of: values, seed: 1).lower, try BootstrapInterval(of: values, seed: 2).lower)
    }

    func testEveryMetricGetsAnInterval() throws {
        let scorer = PredictionScorer()
        let labels = ["Paris is the capital of France.", "Water boils at 100 degrees.", "The sun is a star.", "Cats are mammals."]
        let good = labels.map { scorer.score(prediction: $0, label: $0) }
        let poor = labels.map { scorer.score(prediction: "I do not know.", label: $0) }
        let intervals = try MetricIntervals(scores: good, minus: poor, resamples: 500)
        XCTAssertEqual(Set(intervals.intervals.keys), ["predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l", "predict_meteor"])
        for (key, interval) in intervals.intervals {
            XCTAssertGreaterThan(interval.lower, 0, key)
            XCTAssertLessThanOrEqual(interval.lower, interval.mean, key)
            XCTAssertGreaterThanOrEqual(interval.upper, interval.mean, key)
        }
        XCTAssertEqual(intervals.intervals["predict_rouge-1"]?.mean ?? 0,
                       try PredictionMetrics(averaging: good).rouge1 - PredictionMetrics(averaging: poor).rouge1, accuracy: 1e-9)
    }
}
