// Implements the tests of rank-aware logging: who prints what, the "[rank N host]" prefix, the all-ranks switch
// and the level threshold; does not write to stderr (a recording sink is used).
import KnowTuneDistributed
import XCTest

final class RankLoggerTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func append(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
    }

    func emit(_ logger: RankLogger) {
        logger.debug("d")
        logger.info("i")
        logger.warning("w")
        logger.error("e")
    }

    func testRankZeroLogsInfoOthersOnlyWarningsAndErrors() {
        let lines = Lines()
        emit(RankLogger(rank: 0, worldSize: 2, hostname: "a", sink: { lines.append($0) }))
        emit(RankLogger(rank: 1, worldSize: 2, hostname: "b", sink: { lines.append($0) }))
        XCTAssertEqual(lines.all, ["i", "warning: w", "error: e", "[rank 1 b] warning: w", "[rank 1 b] error: e"])
    }

    func testAllRanksSwitchAndLevel() throws {
        let lines = Lines()
        let communicator = SingleProcessCommunicator(hostname: "solo")
        emit(try RankLogger(communicator: communicator, environment: ["KNOWTUNE_LOG_LEVEL": "warning"], sink: { lines.append($0) }))
        emit(RankLogger(rank: 1, worldSize: 2, hostname: "b", allRanks: true, minimumLevel: .debug, sink: { lines.append($0) }))
        emit(RankLogger(rank: 0, worldSize: 2, hostname: "a", allRanks: true, sink: { lines.append($0) }))
        XCTAssertEqual(lines.all, [
            "warning: w", "error: e",
            "[rank 1 b] debug: d", "[rank 1 b] i", "[rank 1 b] warning: w", "[rank 1 b] error: e",
            "[rank 0 a] i", "[rank 0 a] warning: w", "[rank 0 a] error: e",
        ])
        XCTAssertThrowsError(try RankLogger(communicator: communicator, environment: ["KNOWTUNE_LOG_LEVEL": "loud"]))
        XCTAssertThrowsError(try RankLogger(communicator: communicator, environment: ["KNOWTUNE_LOG_ALL_RANKS": "2"]))
    }
}
