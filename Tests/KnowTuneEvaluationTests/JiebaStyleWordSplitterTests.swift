// Implements checks of the jieba-style splitter on the rules listed in the notes (§9) and on
// dictionary loading; does not cover the generated token table (see MetricFixtureTests).

import Foundation
import XCTest
@testable import KnowTuneEvaluation
import KnowTuneTensor

final class JiebaStyleWordSplitterTests: XCTestCase {
    private let splitter = JiebaStyleWordSplitter()

    func testNotesRules() {
        XCTAssertEqual(splitter.split("e.g."), ["e", ".", "g", "."])
        XCTAssertEqual(splitter.split("well-known"), ["well", "-", "known"])
        XCTAssertEqual(splitter.split("isn't"), ["isn", "'", "t"])
        XCTAssertEqual(splitter.split("foo_bar"), ["foo", "_", "bar"])
        XCTAssertEqual(splitter.split("3.5 50%"), ["3.5", " ", "50%"])
        XCTAssertEqual(splitter.split("C++ and C#"), ["C++", " ", "and", " ", "C#"])
        XCTAssertEqual(splitter.split("a  b"), ["a", " ", " ", "b"])
    }

    func testCRLFIsOneToken() {
        XCTAssertEqual(codePoints(splitter.split("a\r\nb\n\rc")), codePoints(["a", "\r\n", "b", "\n", "\r", "c"]))
    }

    func testDictionaryRouteSplitsBeforeWord() {
        // "abc++": route a, b, c++ beats five single characters; "ab" is then one regex token.
        XCTAssertEqual(splitter.split("abc++"), ["ab", "c++"])
        XCTAssertEqual(splitter.split("C++11"), ["C++", "11"])
    }

    func testUnknownCJKIsOneTokenPerIdeograph() {
        XCTAssertEqual(splitter.split("我们用C++"), ["我", "们", "用", "C++"])
    }

    func testTokensConcatenateToInput() {
        let text = "Mixed: 中文, C#! e.g. 3.5% ...\r\n\t👍🏽 é"
        XCTAssertEqual(splitter.split(text).joined().unicodeScalars.map(\.value), text.unicodeScalars.map(\.value))
    }

    func testDecomposedAccentsStayDistinctCodePoints() {
        // Swift would call "é" and "e\u{301}" equal; jieba and rouge do not.
        let composed = ROUGEScore.scores(prediction: "caf\u{E9}", label: "cafe\u{301}")
        XCTAssertEqual(composed.rouge1, 0)
    }

    func testLoadedDictionaryJoinsWords() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("knowtune-jieba-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: url) }
        try "我们 1000 r\r\n北京 500 ns\r\n".write(to: url, atomically: true, encoding: .utf8)
        let dictionary = try JiebaDictionary(contentsOf: url)
        XCTAssertEqual(dictionary.total, 1500)
        let words = JiebaStyleWordSplitter(dictionary: dictionary).split("我们在北京")
        XCTAssertEqual(words, ["我们", "在", "北京"])
    }

    func testBadDictionaryLineIsReported() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("knowtune-jieba-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: url) }
        try "好 3\nbroken\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try JiebaDictionary(contentsOf: url)) { error in
            XCTAssertEqual(error as? KnowTuneError, .badFormat(path: url.path, reason: "jieba dictionary line 2: expected `word count [tag]`"))
        }
    }
}
