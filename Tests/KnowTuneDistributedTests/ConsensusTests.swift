// Implements the tests of failure agreement on one rank and on three in-process ranks (LocalGroup): the lowest
// failing rank's message reaches every rank, successes cost no gather; does not launch mpirun (MPIJobTests does).
import KnowTuneDistributed
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class ConsensusTests: XCTestCase {
    func testOneRankSuccessAndFailure() throws {
        let communicator = SingleProcessCommunicator()
        try Consensus.agree(.success(()), communicator: communicator)
        XCTAssertEqual(try Consensus.runAgreed(communicator: communicator) { 42 }, 42)
        let original = KnowTuneError.invalidInput("record 3 is empty")
        XCTAssertThrowsError(try Consensus.runAgreed(communicator: communicator) { () -> Int in throw original }) { error in
            guard let agreed = error as? AgreedFailure else { return XCTFail("not agreed: \(error)") }
            // On one rank the message reads exactly as the original error.
            XCTAssertEqual(agreed.description, original.description)
            XCTAssertEqual(agreed.rank, 0)
            XCTAssertEqual(agreed.failingRanks, [0])
            XCTAssertEqual(agreed.localError as? KnowTuneError, original)
        }
    }

    func testEveryRankThrowsTheLowestFailingRanksMessage() {
        let group = LocalGroup(size: 3)
        let outcomes: [String] = group.run { communicator in
            let result: Result<Void, Error>
            switch communicator.rank {
            case 1: result = .failure(KnowTuneError.invalidInput("bad record on rank 1"))
            case 2: result = .failure(KnowTuneError.fileUnreadable(path: "/data/x", reason: "no such file"))
            default: result = .success(())
            }
            do {
                try Consensus.agree(result, communicator: communicator, operation: "validate")
                return "no error"
            } catch let failure as AgreedFailure {
                let local = failure.localError.map { "local \($0)" } ?? "no local"
                return "\(failure.rank) \(failure.failingRanks) \(local) | \(failure.description)"
            } catch {
                return "other \(error)"
            }
        }
        let description = "rank 1 (host1): invalid input: bad record on rank 1 [rank 2 also failed]"
        XCTAssertEqual(outcomes, [
            "1 [1, 2] no local | \(description)",
            "1 [1, 2] local invalid input: bad record on rank 1 | \(description)",
            "1 [1, 2] no local | \(description)",
        ])
    }

    func testSuccessOnEveryRankReturnsValues() {
        let group = LocalGroup(size: 3)
        let values: [Int] = group.run { communicator in
            (try? Consensus.runAgreed(communicator: communicator) { communicator.rank * 2 }) ?? -1
        }
        XCTAssertEqual(values, [0, 2, 4])
    }

    func testAnEarlierAgreementKeepsItsOrigin() {
        let group = LocalGroup(size: 2)
        let descriptions: [String] = group.run { communicator in
            let earlier = AgreedFailure(rank: 1, hostname: "host1", failingRanks: [1], worldSize: 2, message: "first")
            do {
                try Consensus.agree(.failure(earlier), communicator: communicator)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(descriptions, ["rank 1 (host1): first", "rank 1 (host1): first"])
    }
}
