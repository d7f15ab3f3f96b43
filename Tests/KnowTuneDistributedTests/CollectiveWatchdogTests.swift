// Implements the in-process tests of the collective watchdog with a recording handler: it fires with rank, host,
// step and operation after the timeout, and stays quiet when disarmed in time; does not exit the process.
import KnowTuneDistributed
import XCTest

final class CollectiveWatchdogTests: XCTestCase {
    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func append(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
    }

    func testFiresAfterTheTimeout() {
        let reports = Reports()
        let watchdog = CollectiveWatchdog(timeout: 0.2) { reports.append($0) }
        defer { watchdog.stop() }
        watchdog.arm(.init(rank: 3, hostname: "node7", step: 120, operation: "gradients", kind: "allReduceSum of 10 floats"))
        let deadline = Date().addingTimeInterval(3)
        while reports.all.isEmpty, Date() < deadline { usleep(10_000) }
        XCTAssertEqual(reports.all, [
            "[rank 3 node7] error: collective 'gradients' (allReduceSum of 10 floats) at step 120 did not complete "
                + "within 0.2 s; another rank is probably stuck, has crashed, or is calling a different collective. "
                + "Aborting the job. (KNOWTUNE_COLLECTIVE_TIMEOUT sets the limit; KNOWTUNE_CHECK_COLLECTIVES=1 reports "
                + "mismatched collectives.)",
        ])
    }

    func testQuietWhenDisarmedInTime() {
        let reports = Reports()
        let watchdog = CollectiveWatchdog(timeout: 0.3) { reports.append($0) }
        defer { watchdog.stop() }
        for step in 0..<20 {
            watchdog.arm(.init(rank: 0, hostname: "h", step: step, operation: "op", kind: "barrier"))
            usleep(5_000)
            watchdog.disarm()
        }
        usleep(500_000)
        XCTAssertEqual(reports.all, [])
    }

    func testDisabledWatchdogNeverFires() {
        let reports = Reports()
        let watchdog = CollectiveWatchdog(timeout: 0) { reports.append($0) }
        watchdog.arm(.init(rank: 0, hostname: "h", step: 0, operation: "op", kind: "barrier"))
        usleep(100_000)
        XCTAssertEqual(reports.all, [])
        watchdog.stop()
    }
}
