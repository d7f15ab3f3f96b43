// Implements the one-rank Communicator, so that a job without mpirun runs the same code path as N ranks;
// does not touch MPI (every collective is the identity on one rank).
import Foundation
import KnowTuneTensor

/// A job of exactly one rank: sums and maxima leave values unchanged, a gather returns this rank's bytes.
///
/// It still checks its arguments as ``MPICommunicator`` does, so a bug that would fail under mpirun (a negative
/// count, a root outside the job) also fails in a one-rank run.
public final class SingleProcessCommunicator: Communicator {
    public let rank = 0
    public let size = 1
    public let localRank = 0
    public let localSize = 1
    public let hostname: String
    public var step = 0

    /// Creates the one-rank job; `hostname` defaults to this machine's name.
    public init(hostname: String = LaunchEnvironment.currentHostname()) {
        self.hostname = hostname
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: String) throws {
        try Self.checkCount(count, operation: operation)
    }

    public func allReduceSum(_ values: inout [Double], operation: String) throws {}

    public func allReduceMax(_ values: inout [Double], operation: String) throws {}

    public func broadcast(_ bytes: inout [UInt8], root: Int, operation: String) throws {
        try Self.checkRoot(root, size: size, operation: operation)
    }

    public func allGather(_ bytes: [UInt8], operation: String) throws -> [[UInt8]] {
        [bytes]
    }

    public func barrier(operation: String) throws {}

    public func finalize() throws {}

    public func abort(code: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        exit(code)
    }

    static func checkCount(_ count: Int, operation: String) throws {
        guard count >= 0 else {
            throw KnowTuneError.invalidInput("collective '\(operation)' called with a negative count \(count)")
        }
    }

    static func checkRoot(_ root: Int, size: Int, operation: String) throws {
        guard (0..<size).contains(root) else {
            throw KnowTuneError.invalidInput("collective '\(operation)' names root rank \(root), but the job has \(size) rank(s)")
        }
    }
}
