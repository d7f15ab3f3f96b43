// Implements the tests of the collective-mismatch records: fixed-size round trip, long labels, and the message
// naming both ranks; does not gather (MPIJobTests runs the check under mpirun).
import KnowTuneDistributed
import XCTest

final class CollectiveFingerprintTests: XCTestCase {
    func testRoundTripAtFixedSize() {
        let fingerprint = CollectiveFingerprint(step: 41, kind: .allReduceSumFloat, count: 1024, root: 0, operation: "gradients")
        let bytes = fingerprint.encoded()
        XCTAssertEqual(bytes.count, CollectiveFingerprint.encodedSize)
        XCTAssertEqual(CollectiveFingerprint(encoded: bytes[...]), fingerprint)
        XCTAssertNil(CollectiveFingerprint(encoded: bytes.dropLast()))
    }

    func testLongLabelsDifferByHashBeyondTheKeptBytes() {
        let prefix = String(repeating: "x", count: 80)
        let first = CollectiveFingerprint(step: 1, kind: .barrier, count: 0, root: 0, operation: prefix + "a")
        let second = CollectiveFingerprint(step: 1, kind: .barrier, count: 0, root: 0, operation: prefix + "b")
        XCTAssertEqual(first.label, second.label)
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(CollectiveFingerprint(encoded: first.encoded()[...]), first)
    }

    func testSizesThatMayDifferAreNotCompared() {
        let first = CollectiveFingerprint(step: 2, kind: .allGather, count: 10, root: 0, operation: "metrics")
        let second = CollectiveFingerprint(step: 2, kind: .allGather, count: 99, root: 0, operation: "metrics")
        XCTAssertNil(CollectiveFingerprint.firstMismatch([first, second]))
    }

    func testFirstMismatchNamesBothRanks() {
        let agreed = CollectiveFingerprint(step: 3, kind: .allReduceSumDouble, count: 2, root: 0, operation: "eval-loss")
        let stepBehind = CollectiveFingerprint(step: 2, kind: .allReduceSumDouble, count: 2, root: 0, operation: "eval-loss")
        let wrongCount = CollectiveFingerprint(step: 3, kind: .allReduceSumDouble, count: 3, root: 0, operation: "eval-loss")
        XCTAssertNil(CollectiveFingerprint.firstMismatch([agreed, agreed, agreed]))
        let mismatch = CollectiveFingerprint.firstMismatch([agreed, agreed, stepBehind, wrongCount])
        XCTAssertEqual(mismatch?.rank, 2)
        XCTAssertEqual(mismatch?.message,
                       "collective mismatch: rank 0 calls 'eval-loss' (allReduceSum of 2 doubles) at step 3 but rank 2 calls "
                           + "'eval-loss' (allReduceSum of 2 doubles) at step 2; every rank must issue the same collectives in the same order")
        XCTAssertEqual(CollectiveFingerprint.firstMismatch([agreed, wrongCount])?.rank, 1)
    }
}
