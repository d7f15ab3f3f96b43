// Implements agreement on failure: every rank learns whether any rank failed, and all of them throw the same
// error, carrying the message of the lowest failing rank; plus the exit path that prints it once (rank 0) and
// exits non-zero on every rank. Does not decide what is an error (callers validate), and does not print
// anything except in `terminate`.
import Foundation
import KnowTuneTensor

/// An error that every rank of the job holds: the same message on every rank, so rank 0 alone prints it.
///
/// On one rank its description is exactly the original error's, so a one-rank run reads the same as before.
public struct AgreedFailure: Error, CustomStringConvertible {
    /// The lowest rank that failed; its message is the one reported.
    public let rank: Int
    /// The host of ``rank``, when known; without it the description carries no "rank N (host):" prefix.
    public let hostname: String?
    /// Every failing rank, ascending.
    public let failingRanks: [Int]
    /// The number of ranks in the job.
    public let worldSize: Int
    /// The failing rank's error description.
    public let message: String
    /// The original error, on the rank that raised it (nil elsewhere).
    public let localError: Error?

    public init(rank: Int, hostname: String?, failingRanks: [Int], worldSize: Int, message: String, localError: Error? = nil) {
        self.rank = rank
        self.hostname = hostname
        self.failingRanks = failingRanks
        self.worldSize = worldSize
        self.message = message
        self.localError = localError
    }

    public var description: String {
        guard worldSize > 1, let hostname else { return message }
        var text = "rank \(rank) (\(hostname)): \(message)"
        let others = failingRanks.filter { $0 != rank }
        if !others.isEmpty {
            let listed = others.prefix(8).map(String.init).joined(separator: ", ")
            text += " [rank\(others.count == 1 ? "" : "s") \(listed)\(others.count > 8 ? ", …" : "") also failed]"
        }
        return text
    }
}

/// Agreement helpers: turn "rank 1 found a bad record" into "every rank throws, rank 0 prints, all exit 1".
///
/// Use them around validation before the first training collective (house rule 12): without agreement, the
/// failing rank exits while the others wait in the next collective until the watchdog fires.
public enum Consensus {
    /// Every rank reports whether it failed; if any did, every rank throws the same ``AgreedFailure``.
    ///
    /// One `allReduceSum` of a flag when all succeed; one more `allGather` of the messages when some fail.
    public static func agree(_ localResult: Result<Void, Error>, communicator: any Communicator,
                             operation: String = "agree") throws {
        var failed: [Double] = [0]
        if case .failure = localResult { failed[0] = 1 }
        try communicator.allReduceSum(&failed, operation: "\(operation): any rank failed?")
        guard failed[0] > 0 else { return }

        var payload: [UInt8] = []
        var localError: Error?
        if case let .failure(error) = localResult {
            localError = error
            payload = FailureReport(error, rank: communicator.rank, hostname: communicator.hostname).encoded()
        }
        let gathered = try communicator.allGather(payload, operation: "\(operation): failure messages")
        let reports = gathered.indices.map { FailureReport(encoded: gathered[$0], sender: $0) }
        // A rank re-raising an earlier agreement reports that agreement's origin, not itself.
        let failingRanks = Set(reports.compactMap { $0?.rank }).sorted()
        guard let lowest = failingRanks.first, let report = reports.compactMap({ $0 }).first(where: { $0.rank == lowest }) else {
            throw AgreedFailure(rank: 0, hostname: communicator.hostname, failingRanks: [], worldSize: communicator.size,
                                message: "a rank reported a failure but sent no message", localError: localError)
        }
        throw AgreedFailure(rank: report.rank, hostname: report.hostname, failingRanks: failingRanks,
                            worldSize: communicator.size, message: report.message,
                            localError: lowest == communicator.rank ? localError : nil)
    }

    /// Runs `body` on every rank and agrees on the outcome: returns its value only if no rank threw.
    public static func runAgreed<T>(communicator: any Communicator, operation: String = "runAgreed",
                                    _ body: () throws -> T) throws -> T {
        let result = Result { try body() }
        try agree(result.map { _ in () }, communicator: communicator, operation: operation)
        switch result {
        case let .success(value): return value
        case let .failure(error): throw error  // Unreachable: agree threw for this rank's failure.
        }
    }

    /// The exit path for a failed job: prints the error once and exits non-zero on every rank.
    ///
    /// An ``AgreedFailure`` is known to every rank, so rank 0 prints it, every rank finalizes MPI and exits 1.
    /// Any other error is this rank's alone, while the others may be waiting in a collective: this rank prints
    /// it (prefixed with its rank) and aborts the whole job.
    public static func terminate(after error: Error, communicator: any Communicator, logger: RankLogger) -> Never {
        if let agreed = error as? AgreedFailure {
            if communicator.rank == 0 { logger.error(agreed.description) }
            try? communicator.finalize()
            fflush(stdout)
            fflush(stderr)
            exit(1)
        }
        logger.error(String(describing: error))
        communicator.abort(code: 1)
    }
}

/// What a failing rank sends: the rank and host the error came from and its description, as
/// "rank" NUL "host" NUL "message" in UTF-8. An ``AgreedFailure`` (from an earlier agreement) keeps its origin.
private struct FailureReport {
    var rank: Int
    var hostname: String?
    var message: String

    init(_ error: Error, rank: Int, hostname: String) {
        if let agreed = error as? AgreedFailure {
            (self.rank, self.hostname, self.message) = (agreed.rank, agreed.hostname, agreed.message)
        } else {
            let text = String(describing: error)
            (self.rank, self.hostname, self.message) = (rank, hostname, text.isEmpty ? "\(type(of: error))" : text)
        }
    }

    /// Decodes a report; `nil` for the empty payload of a rank that succeeded.
    init?(encoded bytes: [UInt8], sender: Int) {
        guard !bytes.isEmpty else { return nil }
        let fields = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        rank = fields.count > 0 ? Int(String(decoding: fields[0], as: UTF8.self)) ?? sender : sender
        hostname = fields.count > 1 && !fields[1].isEmpty ? String(decoding: fields[1], as: UTF8.self) : nil
        message = fields.count > 2 ? String(decoding: fields[2], as: UTF8.self) : "(no message)"
    }

    func encoded() -> [UInt8] {
        Array(String(rank).utf8) + [0] + Array((hostname ?? "").utf8) + [0] + Array(message.utf8)
    }
}
