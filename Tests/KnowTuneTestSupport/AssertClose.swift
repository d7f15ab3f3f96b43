// Implements tensor comparison for tests: max |Δ|, where it is, and the first mismatches (llm.c `check_tensor`);
// does not decide tolerances (each test states its own, from Tests/Fixtures/golden/README.md).
import XCTest

public struct TensorComparison: CustomStringConvertible {
    public let maxAbsoluteError: Float
    public let maxIndex: Int
    public let relativeL2Error: Double
    public let mismatches: [(index: Int, actual: Float, expected: Float)]

    public var description: String {
        let shown = mismatches.prefix(5).map { "[\($0.index)] \($0.actual) vs \($0.expected)" }.joined(separator: ", ")
        return "max |Δ| \(maxAbsoluteError) at \(maxIndex), rel L2 \(relativeL2Error); first mismatches: \(shown)"
    }
}

public func compareTensors(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float = 0) -> TensorComparison {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    var maxError: Float = 0, maxIndex = 0
    var diffSquares: Double = 0, expectedSquares: Double = 0
    var mismatches: [(Int, Float, Float)] = []
    for i in 0..<actual.count {
        let error = abs(actual[i] - expected[i])
        if !(error <= maxError) { maxError = error; maxIndex = i }
        diffSquares += Double(error) * Double(error)
        expectedSquares += Double(expected[i]) * Double(expected[i])
        if !(error <= atol + rtol * abs(expected[i])), mismatches.count < 10 { mismatches.append((i, actual[i], expected[i])) }
    }
    let relative = expectedSquares > 0 ? (diffSquares / expectedSquares).squareRoot() : diffSquares.squareRoot()
    return TensorComparison(maxAbsoluteError: maxError, maxIndex: maxIndex, relativeL2Error: relative, mismatches: mismatches)
}

/// Fails with the comparison's description when any element is outside atol + rtol·|expected|.
public func assertClose(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float = 0, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(message): sizes differ, \(actual.count) vs \(expected.count)", file: file, line: line)
        return
    }
    let comparison = compareTensors(actual, expected, atol: atol, rtol: rtol)
    if !comparison.mismatches.isEmpty { XCTFail("\(message): \(comparison)", file: file, line: line) }
}
