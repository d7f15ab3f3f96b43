// Implements the tests of the one-rank communicator: every collective is the identity, arguments are checked
// as under MPI; does not start MPI.
import KnowTuneDistributed
import KnowTuneTensor
import XCTest

final class SingleProcessCommunicatorTests: XCTestCase {
    func testIdentityAndRank() throws {
        let communicator = SingleProcessCommunicator(hostname: "box")
        XCTAssertEqual([communicator.rank, communicator.size, communicator.localRank, communicator.localSize], [0, 1, 0, 1])
        XCTAssertEqual(communicator.hostname, "box")
        XCTAssertTrue(communicator.isMainRank)
        communicator.step = 12
        XCTAssertEqual(communicator.step, 12)
    }

    func testCollectivesLeaveValuesUnchanged() throws {
        let communicator: any Communicator = SingleProcessCommunicator()
        var floats: [Float] = [1.5, -2, 3]
        try communicator.allReduceSum(&floats, operation: "gradients")
        XCTAssertEqual(floats, [1.5, -2, 3])
        var empty: [Float] = []
        try communicator.allReduceSum(&empty, operation: "nothing")
        var doubles = [0.25, 4]
        try communicator.allReduceSum(&doubles)
        XCTAssertEqual(doubles, [0.25, 4])
        try communicator.allReduceMax(&doubles)
        XCTAssertEqual(doubles, [0.25, 4])
        var bytes: [UInt8] = [1, 2, 3]
        try communicator.broadcast(&bytes, root: 0)
        XCTAssertEqual(bytes, [1, 2, 3])
        XCTAssertEqual(try communicator.allGather([7, 8]), [[7, 8]])
        XCTAssertEqual(try communicator.allGather([]), [[]])
        try communicator.barrier()
        XCTAssertEqual(try communicator.broadcast(["best": 3], root: 0, operation: "decision"), ["best": 3])
        try communicator.finalize()
        try communicator.finalize()
    }

    func testBadArgumentsFailAsUnderMPI() {
        let communicator = SingleProcessCommunicator()
        var bytes: [UInt8] = []
        XCTAssertThrowsError(try communicator.broadcast(&bytes, root: 1, operation: "bcast")) { error in
            XCTAssertEqual(error as? KnowTuneError,
                           .invalidInput("collective 'bcast' names root rank 1, but the job has 1 rank(s)"))
        }
        var value: Float = 0
        XCTAssertThrowsError(try communicator.allReduceSum(&value, count: -1, operation: "grads"))
    }
}
