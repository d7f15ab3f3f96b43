// Tests KnowTune across two "hosts" (the lab's network namespaces kt-h1 and kt-h2, Open MPI over TCP, remote ranks
// started through an rsh agent with a bare environment): the short SFT with one rank per host gives plain
// `mpirun -np 2`'s adapter bit for bit, and still completes (with the same adapter) over a 2 ms / 1 Gbit link.
import Foundation
import KnowTuneTestSupport
import XCTest

final class NamespaceHostTests: XCTestCase {
    override class func tearDown() {
        LaunchLab.stopHosts()
        super.tearDown()
    }

    private func runAcrossHosts(_ name: String, delay: String? = nil, rate: String? = nil) throws -> (ProcessResult, String) {
        let launcher = try LaunchLab.startHosts(delay: delay, rate: rate)
        let output = LaunchFixtures.outputDirectory(name)
        // Remote ranks get only what -x forwards: the thread count and any BLAS/KnowTune settings of this process.
        let environment = LaunchFixtures.rankEnvironment()
        var arguments = ["-np", "2"]
        for variable in environment.keys.sorted() { arguments += ["-x", variable] }
        arguments += [try LaunchFixtures.knowtune()] + (try LaunchFixtures.trainArguments(output: output, perRankBatch: 4))
        let result = try Testkit.run(launcher, arguments, environment: environment, timeout: 150)
        XCTAssertFalse(result.timedOut, result.output)
        XCTAssertEqual(result.status, 0, result.output)
        // One rank on each host.
        XCTAssertTrue(result.standardError.contains("world_size=2 nodes=2 ranks_per_node=1"), result.standardError)
        return (result, output)
    }

    func testOneRankPerHostMatchesPlainMPIRun() throws {
        let (_, output) = try runAcrossHosts("two-hosts")
        try assertSameAdapterAsReference(output, "kt-mpirun, one rank on each of kt-h1 and kt-h2")
    }

    func testOneRankPerHostCompletesOverASlowLink() throws {
        let (result, output) = try runAcrossHosts("two-hosts-slow-link", delay: "2ms", rate: "1gbit")
        print("two hosts over a 2 ms / 1 Gbit link: \(String(format: "%.1f", result.seconds)) s")
        try assertSameAdapterAsReference(output, "kt-mpirun over KT_DELAY=2ms KT_RATE=1gbit")
    }
}
