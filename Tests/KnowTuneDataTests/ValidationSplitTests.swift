// Checks the held-out split: a count when val_size > 1, a fraction (rounded up) otherwise, disjoint and covering,
// the same for the same seed, and an error when nothing would be left to train on.
import XCTest
@testable import KnowTuneData

final class ValidationSplitTests: XCTestCase {
    func testCountsFractionsAndSeeds() throws {
        let byFraction = try ValidationSplit.split(count: 10, valSize: 0.25, seed: 42)
        XCTAssertEqual(byFraction.validation.count, 3, "ceil(10 × 0.25)")
        XCTAssertEqual(Set(byFraction.train + byFraction.validation), Set(0..<10))
        XCTAssertTrue(Set(byFraction.train).isDisjoint(with: byFraction.validation))
        XCTAssertEqual(try ValidationSplit.split(count: 10, valSize: 4, seed: 42).validation.count, 4)
        XCTAssertEqual(try ValidationSplit.split(count: 10, valSize: 0, seed: 42).train, Array(0..<10), "no split keeps file order")
        XCTAssertEqual(try ValidationSplit.split(count: 10, valSize: 0.25, seed: 42).validation, byFraction.validation)
        XCTAssertNotEqual(ValidationSplit.permutation(count: 50, seed: 1), ValidationSplit.permutation(count: 50, seed: 2))
        XCTAssertEqual(ValidationSplit.permutation(count: 50, seed: 1).sorted(), Array(0..<50))
        XCTAssertThrowsError(try ValidationSplit.split(count: 10, valSize: 10, seed: 42)) {
            XCTAssertTrue("\($0)".contains("leaves no training examples"), "\($0)")
        }
    }
}
