// Tests the FLOP count ranks are balanced by: each term against the products it stands for, counted by hand.
import XCTest
@testable import KnowTuneModel

final class PassWorkloadTests: XCTestCase {
    /// TinyModel: C 16, K 8 (2 of 4 heads × D 4), F 24, 2 layers, V 37.
    func testTermsCountTheProductsOfAForwardAndInputGradientPass() {
        let workload = PassWorkload(TinyModel.configuration)
        // q, o: 16×16; k, v: 16×8; gate, up, down: 16×24 — per layer 1,920 weights, 4 FLOPs each per row.
        XCTAssertEqual(workload.perToken, 4 * 2 * 1_920)
        XCTAssertEqual(workload.perTarget, 4 * 37 * 16)
        XCTAssertEqual(workload.perAttentionPair, 12 * 2 * 16)
        XCTAssertEqual(PassWorkload.attentionPairs(rows: 3), 6)
        XCTAssertEqual(PassWorkload.attentionPairs(rows: 3, prefix: 4), 18)
    }

    /// A batch of a plain sequence and a continuation of a shared prompt: rows, targets and pairs with the prefix.
    func testABatchCountsItsContinuationsPairsWithThePrefix() {
        var batch = PackedBatch()
        batch.append(prompt: [1, 2, 3], response: [4, 5])  // 5 rows, 2 targets, 15 pairs
        var prefixes: [[Int32]: Int] = [:]
        batch.append(prompt: [6, 7, 8, 9], response: [10, 11, 12], sharing: &prefixes)
        batch.append(prompt: [6, 7, 8, 9], response: [13], sharing: &prefixes)
        var expectedPairs = 15
        for b in 1..<batch.sequenceCount {
            let prefix = batch.prefixSequence[b]
            expectedPairs += PassWorkload.attentionPairs(rows: batch.length(ofSequence: b),
                                                         prefix: prefix >= 0 ? batch.length(ofSequence: prefix) : 0)
        }
        XCTAssertGreaterThan(expectedPairs, 15 + 10)  // the continuations see the prompt's rows
        let workload = PassWorkload(TinyModel.configuration)
        XCTAssertEqual(workload.flops(of: batch),
                       workload.flops(tokens: batch.tokenCount, targets: batch.targetCount, attentionPairs: expectedPairs))
        XCTAssertEqual(batch.targetCount, 2 + 3 + 1)
    }

    /// The per-token measure speeds are compared with: every weight of every product (the head once) at 4 FLOPs, and
    /// attention at 12·L·C per pair, (T+1)/2 pairs per token on average.
    func testFLOPsPerTokenOfFullyLabelledSequences() {
        let c = TinyModel.configuration
        let weights = Double(2 * 1_920 + 37 * 16)
        let expected = 4 * weights + 12 * Double(c.layerCount * c.hiddenSize) * Double(256 + 1) / 2
        XCTAssertEqual(PassWorkload(c).flopsPerToken(sequenceLength: 256), expected, accuracy: 1e-9 * expected)
    }
}
