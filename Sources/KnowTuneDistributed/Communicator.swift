// Implements the collective-communication interface that every distributed KnowTune component receives as an
// argument; does not launch processes, choose a transport or keep global state (MPICommunicator and
// SingleProcessCommunicator do the work, LaunchEnvironment decides which one a job gets).
import Foundation
import KnowTuneTensor

/// The ranks of one job and the collectives they perform together.
///
/// Every rank must issue the same collectives in the same order with matching sizes. Each call carries an
/// `operation` label (for example `"gradients"` or `"eval-loss"`) that the collective watchdog and the
/// `KNOWTUNE_CHECK_COLLECTIVES=1` debug check print when something goes wrong, together with ``step``.
///
/// Reductions are sums or maxima only: reduce a `(sum, count)` pair and divide once afterwards, so that one rank
/// and N ranks compute the same quantity (house rule 9).
public protocol Communicator: AnyObject {
    /// This process's rank in the job, `0..<size`.
    var rank: Int { get }
    /// The number of ranks in the job.
    var size: Int { get }
    /// This process's rank among the ranks on the same node (shared-memory domain).
    var localRank: Int { get }
    /// The number of ranks on this node.
    var localSize: Int { get }
    /// This node's host name.
    var hostname: String { get }
    /// The training step that the next collectives belong to; used only in diagnostics.
    var step: Int { get set }

    /// Sums `count` floats at `buffer` over all ranks, in place.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: String) throws
    /// Sums each element of `values` over all ranks, in place. Every rank passes the same count.
    func allReduceSum(_ values: inout [Double], operation: String) throws
    /// Takes the element-wise maximum of `values` over all ranks, in place.
    func allReduceMax(_ values: inout [Double], operation: String) throws
    /// Replaces `bytes` on every rank by the bytes of rank `root`; the length may differ (it is sent first).
    func broadcast(_ bytes: inout [UInt8], root: Int, operation: String) throws
    /// Collects one byte string per rank (lengths may differ), ordered by rank, on every rank.
    func allGather(_ bytes: [UInt8], operation: String) throws -> [[UInt8]]
    /// Returns once every rank has called `barrier`.
    func barrier(operation: String) throws
    /// Ends collective communication; call once on every rank before a normal exit. Idempotent.
    func finalize() throws
    /// Terminates every rank of the job with `code`, without waiting for the others (`MPI_Abort`).
    func abort(code: Int32) -> Never
}

extension Communicator {
    /// True on rank 0, the rank that logs, writes checkpoints and decides for the job.
    public var isMainRank: Bool { rank == 0 }

    /// Sums `count` floats at `buffer` over all ranks, in place, labelled `"allReduceSum"`.
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try allReduceSum(buffer, count: count, operation: "allReduceSum")
    }

    /// Sums `values` over all ranks, in place, labelled `"allReduceSum"`.
    public func allReduceSum(_ values: inout [Double]) throws {
        try allReduceSum(&values, operation: "allReduceSum")
    }

    /// Takes the element-wise maximum over all ranks, in place, labelled `"allReduceMax"`.
    public func allReduceMax(_ values: inout [Double]) throws {
        try allReduceMax(&values, operation: "allReduceMax")
    }

    /// Broadcasts rank `root`'s bytes, labelled `"broadcast"`.
    public func broadcast(_ bytes: inout [UInt8], root: Int) throws {
        try broadcast(&bytes, root: root, operation: "broadcast")
    }

    /// Gathers one byte string per rank, labelled `"allGather"`.
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try allGather(bytes, operation: "allGather")
    }

    /// Waits for every rank, labelled `"barrier"`.
    public func barrier() throws {
        try barrier(operation: "barrier")
    }

    /// Sums a float array over all ranks, in place.
    public func allReduceSum(_ values: inout [Float], operation: String) throws {
        let count = values.count
        try values.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else {
                var scratch: Float = 0
                try allReduceSum(&scratch, count: 0, operation: operation)
                return
            }
            try allReduceSum(base, count: count, operation: operation)
        }
    }

    /// Returns rank `root`'s `value` on every rank, sent as JSON (for small decisions such as "best step").
    ///
    /// If `root` cannot encode the value, every rank throws (the failure is sent instead of the value).
    public func broadcast<Value: Codable>(_ value: Value, root: Int, operation: String) throws -> Value {
        var bytes: [UInt8] = []
        if rank == root {
            do {
                bytes = [1] + Array(try JSONEncoder().encode(value))
            } catch {
                bytes = [0] + Array("rank \(root) cannot encode \(Value.self) for '\(operation)': \(error)".utf8)
            }
        }
        try broadcast(&bytes, root: root, operation: operation)
        guard let status = bytes.first, status == 1 else {
            throw KnowTuneError.invalidInput(String(decoding: bytes.dropFirst(), as: UTF8.self))
        }
        do {
            return try JSONDecoder().decode(Value.self, from: Data(bytes.dropFirst()))
        } catch {
            throw KnowTuneError.invalidInput("cannot decode \(Value.self) from broadcast '\(operation)': \(error)")
        }
    }
}
