// Implements the `mpi-selftest` scenarios run under `mpirun -np 2` (or alone, as a one-rank job): collectives,
// agreement on a failure, a local failure that aborts the job, the collective-mismatch check and the watchdog;
// does not launch mpirun (KnowTuneDistributedTests does) and prints `selftest-ok <scenario>` on success.
import Foundation
import KnowTuneDistributed
import KnowTuneTensor

enum MPISelfTest {
    enum Scenario: String {
        /// Every collective with known results; exit 0 and "selftest-ok collectives world_size=N" from rank 0.
        case collectives
        /// Rank 1 (the last rank) fails validation; every rank agrees, rank 0 prints it once, all exit 1.
        case consensus
        /// The last rank fails alone while the others wait in a barrier: it prints and aborts the job.
        case localError = "local-error"
        /// Rank 0 calls allReduceSum while the others call barrier (run with KNOWTUNE_CHECK_COLLECTIVES=1).
        case mismatch
        /// Rank 0 waits in a barrier that the others never reach (run with KNOWTUNE_COLLECTIVE_TIMEOUT=2).
        case watchdog
    }

    /// The validation message of the consensus scenario (the test counts its occurrences).
    static let consensusMessage = "selftest: record 7 of train.jsonl has no \"output\" field"

    static func run(_ scenario: Scenario) -> Never {
        let communicator: any Communicator
        let logger: RankLogger
        do {
            communicator = try MPICommunicator.start()
            logger = try RankLogger(communicator: communicator)
        } catch {
            FileHandle.standardError.write(Data("mpi-selftest: cannot start: \(error)\n".utf8))
            exit(1)
        }
        do {
            switch scenario {
            case .collectives: try collectives(communicator, logger: logger)
            case .consensus: try consensus(communicator)
            case .localError: try localError(communicator)
            case .mismatch: try mismatch(communicator)
            case .watchdog: try watchdog(communicator)
            }
            try communicator.finalize()
            exit(0)
        } catch {
            say("selftest: rank \(communicator.rank) exiting with status 1")
            Consensus.terminate(after: error, communicator: communicator, logger: logger)
        }
    }

    /// One line to stdout, flushed (stdout is a pipe under mpirun).
    static func say(_ line: String) {
        print(line)
        fflush(stdout)
    }

    // MARK: Scenarios

    static func collectives(_ communicator: any Communicator, logger: RankLogger) throws {
        let rank = communicator.rank
        let size = communicator.size
        var problems: [String] = []
        func expect(_ condition: Bool, _ what: @autoclosure () -> String) {
            if !condition { problems.append(what()) }
        }
        if let launched = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] {
            expect(Int(launched) == size, "size \(size) but mpirun started \(launched)")
        }
        expect((0..<size).contains(communicator.localRank) && communicator.localSize >= 1, "local rank/size")
        communicator.step = 1

        // Floats, in place: element i on rank r is i + r/2, so the sum is size*i + size*(size-1)/4.
        let count = 1000
        var floats = (0..<count).map { Float($0) + Float(rank) / 2 }
        try communicator.allReduceSum(&floats, operation: "float sum")
        let floatErrors = (0..<count).filter { floats[$0] != Float(size * $0) + Float(size * (size - 1)) / 4 }
        expect(floatErrors.isEmpty, "float sum wrong at \(floatErrors.prefix(3)): \(floatErrors.prefix(3).map { floats[$0] })")
        var none: [Float] = []
        try communicator.allReduceSum(&none, operation: "empty float sum")

        // Doubles: (sum, count) pairs, reduced and divided once.
        var sums = [Double(rank + 1) * 1.5, Double(rank + 1), 1e-3 * Double(rank)]
        try communicator.allReduceSum(&sums, operation: "double sum")
        let n = Double(size)
        expect(sums == [1.5 * n * (n + 1) / 2, n * (n + 1) / 2, 1e-3 * n * (n - 1) / 2], "double sum \(sums)")
        var maxima = [Double(rank), -Double(rank)]
        try communicator.allReduceMax(&maxima, operation: "double max")
        expect(maxima == [Double(size - 1), 0], "double max \(maxima)")

        // Broadcast of different lengths from the first and the last rank.
        for root in Set([0, size - 1]).sorted() {
            var bytes = rank == root ? Array(repeating: UInt8(40 + root), count: 3 + 5 * root) : Array(repeating: 1, count: 17)
            try communicator.broadcast(&bytes, root: root, operation: "broadcast from \(root)")
            expect(bytes == Array(repeating: UInt8(40 + root), count: 3 + 5 * root), "broadcast from \(root) gave \(bytes)")
        }
        var empty: [UInt8] = rank == 0 ? [] : [9, 9]
        try communicator.broadcast(&empty, root: 0, operation: "empty broadcast")
        expect(empty.isEmpty, "empty broadcast gave \(empty)")
        let decision = try communicator.broadcast(["best_step": rank == 0 ? 40 : -1], root: 0, operation: "decision")
        expect(decision == ["best_step": 40], "Codable broadcast \(decision)")

        // All-gather of lengths 0, 4, 8, … (rank 0 sends nothing).
        let gathered = try communicator.allGather(Array(repeating: UInt8(rank), count: 4 * rank), operation: "gather")
        expect(gathered == (0..<size).map { Array(repeating: UInt8($0), count: 4 * $0) }, "allGather \(gathered)")

        try communicator.barrier(operation: "barrier")
        try Consensus.agree(.success(()), communicator: communicator, operation: "all ranks fine")
        let value = try Consensus.runAgreed(communicator: communicator, operation: "runAgreed") { rank * 10 }
        expect(value == rank * 10, "runAgreed value")

        let topology = try NodeTopology.gather(communicator: communicator, threads: NodeTopology.configuredThreads())
        expect(topology.placements.map(\.rank) == Array(0..<size), "topology ranks")
        logger.info("topology: \(topology.summary)")

        // Everyone learns whether anyone saw a problem; every rank lists its own.
        var failures = [Double(problems.count)]
        try communicator.allReduceSum(&failures, operation: "selftest verdict")
        for problem in problems { logger.error("selftest: \(problem)") }
        guard failures[0] == 0 else {
            throw AgreedFailure(rank: rank, hostname: nil, failingRanks: [], worldSize: size,
                                message: "selftest collectives: \(Int(failures[0])) problem(s)")
        }
        if rank == 0 { say("selftest-ok collectives world_size=\(size)") }
    }

    static func consensus(_ communicator: any Communicator) throws {
        let failing = communicator.size - 1
        let result: Result<Void, Error> = communicator.rank == failing
            ? .failure(KnowTuneError.invalidInput(consensusMessage)) : .success(())
        try Consensus.agree(result, communicator: communicator, operation: "validate data")
        say("selftest: consensus did not fail")
    }

    static func localError(_ communicator: any Communicator) throws {
        if communicator.rank == communicator.size - 1 {
            throw KnowTuneError.invalidInput("selftest: local failure on the last rank")
        }
        try communicator.barrier(operation: "wait for the failing rank")
        say("selftest: barrier returned although a rank failed")
    }

    static func mismatch(_ communicator: any Communicator) throws {
        communicator.step = 3
        try communicator.barrier(operation: "aligned barrier")
        if communicator.rank == 0 {
            var values = [1.0, 2.0, 3.0, 4.0]
            try communicator.allReduceSum(&values, operation: "gradients")
        } else {
            try communicator.barrier(operation: "eval-sync")
        }
        say("selftest: mismatched collectives completed")
    }

    static func watchdog(_ communicator: any Communicator) throws {
        communicator.step = 7
        if communicator.rank == 0 {
            try communicator.barrier(operation: "stuck-barrier")
        } else {
            sleep(30)
        }
        say("selftest: watchdog did not fire")
    }
}
