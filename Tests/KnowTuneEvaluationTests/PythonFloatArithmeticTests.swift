// Implements checks of the CPython/numpy float semantics against values printed by Python 3.11 and
// numpy; does not test the metrics themselves.

import XCTest
@testable import KnowTuneEvaluation

final class PythonFloatArithmeticTests: XCTestCase {
    func testRoundMatchesCPython() {
        // (x, [round(x, 0), …, round(x, 4)]) from CPython 3.11.
        let table: [(Double, [Double])] = [
            (0.00005, [0, 0, 0, 0, 0.0001]),
            (1.00005, [1, 1, 1, 1, 1.0001]),
            (0.12345, [0, 0.1, 0.12, 0.123, 0.1235]),
            (2.67499999, [3, 2.7, 2.67, 2.675, 2.675]),
            (66.66666666666667, [67, 66.7, 66.67, 66.667, 66.6667]),
            (38.75170000000001, [39, 38.8, 38.75, 38.752, 38.7517]),
            (99.99995, [100, 100, 100, 100, 99.9999]),
            (0.000049999999, [0, 0, 0, 0, 0]),
            (1e-300, [0, 0, 0, 0, 0]),
            (12345.67885, [12346, 12345.7, 12345.68, 12345.679, 12345.6789]),
            (Double.leastNonzeroMagnitude, [0, 0, 0, 0, 0]),
            (0.5, [0, 0.5, 0.5, 0.5, 0.5]),
            (1.5, [2, 1.5, 1.5, 1.5, 1.5]),
            (2.5, [2, 2.5, 2.5, 2.5, 2.5]),
        ]
        for (x, expected) in table {
            for digits in 0...4 {
                XCTAssertEqual(PythonFloatArithmetic.round(x, digits: digits), expected[digits], "round(\(x), \(digits))")
            }
        }
        let negative = PythonFloatArithmetic.round(-0.00004, digits: 4)
        XCTAssertEqual(negative, 0)
        XCTAssertEqual(negative.sign, .minus)
    }

    func testFsumMatchesCPython() {
        XCTAssertEqual(PythonFloatArithmetic.fsum([1e100, 1.0, -1e100, 1e-100, 1e-100]), 1.0)
        XCTAssertEqual(PythonFloatArithmetic.fsum(Array(repeating: 0.1, count: 10)), 1.0)
        XCTAssertEqual(PythonFloatArithmetic.fsum([1.0, 1e-16, 1e-16]), 1.0000000000000002)
        XCTAssertEqual(PythonFloatArithmetic.fsum([1e-16, 1e-16, 1.0]), 1.0000000000000002)
        XCTAssertEqual(PythonFloatArithmetic.fsum([0x1p53, 1.0, 0x1p-52]), 9007199254740994.0)
        XCTAssertEqual(PythonFloatArithmetic.fsum([]), 0)
        let logs = [-0.25 * log(0.3), -0.25 * log(1.0 / 7.0), 0.25 * log(1.0 / 64.0), 0.25 * log(0.9)]
        XCTAssertEqual(PythonFloatArithmetic.fsum(logs), -0.27859016140906206)
    }

    func testNumpyMeanUsesPairwiseSummation() {
        // numpy gives 15.003 here where a left-to-right sum gives 15.003000000000004.
        let values = (1..<300).map { 0.1 * Double($0) + 1e-3 * Double($0 % 7) }
        XCTAssertEqual(PythonFloatArithmetic.numpyMean(values), 15.003)
        let short = [66.6667, 100.0, 0.0, 33.3333, 12.3457, 99.9999, 45.4545, 71.4286, 28.5714, 3.3333, 1.1111]
        XCTAssertEqual(PythonFloatArithmetic.numpyMean(short), 42.02222727272727)
    }
}
