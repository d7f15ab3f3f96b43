// Tests the stop-text filter: a stop text split over pieces is never shown, the tail that could start one is held
// back only while it could, the earliest of several stop texts wins, and text without one passes whole.
import KnowTuneServing
import XCTest

final class StopTextFilterTests: XCTestCase {
    func testAStopTextSplitOverPiecesIsNeverShown() {
        var filter = StopTextFilter(stops: ["END", "##"])
        XCTAssertEqual(filter.append("Paris is E"), "Paris is ", "\"E\" could start END: held")
        XCTAssertEqual(filter.append("N"), "")
        XCTAssertEqual(filter.append("X more"), "ENX more", "not END after all: released")
        XCTAssertEqual(filter.append(" #"), " ")
        XCTAssertEqual(filter.append("# tail"), "")
        XCTAssertTrue(filter.isStopped)
        XCTAssertEqual(filter.append("after"), "", "nothing after the stop")
        XCTAssertEqual(filter.flush(), "")
    }

    func testTheEarliestStopWinsAndTextWithoutOnePassesWhole() {
        XCTAssertEqual(StopTextFilter.cut("a ## b END c", stops: ["END", "##"]).text, "a ")
        XCTAssertEqual(StopTextFilter.cut("no stop here", stops: ["END"]).text, "no stop here")
        XCTAssertFalse(StopTextFilter.cut("no stop here E", stops: ["END"]).stopped)
        XCTAssertEqual(StopTextFilter.cut("no stop here E", stops: ["END"]).text, "no stop here E", "a held tail is flushed at the end")
        XCTAssertEqual(StopTextFilter.cut("naïve ☃ text", stops: ["☃"]).text, "naïve ")
        var none = StopTextFilter(stops: [])
        XCTAssertEqual(none.append("E"), "E")
    }
}
