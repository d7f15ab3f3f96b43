// Implements an in-process group of N communicators, one per thread, exchanging bytes through shared memory, so
// multi-rank logic (agreement, gathers) can be unit-tested without mpirun; does not model MPI timing or failures.
import Foundation
import KnowTuneDistributed

/// N ranks in one process: each collective is an all-gather of bytes in lockstep, reduced in rank order.
public final class LocalGroup: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var contributions: [[UInt8]?]
    private var results: [[UInt8]] = []
    private var arrived = 0
    private var generation = 0

    public init(size: Int) {
        self.size = size
        self.contributions = Array(repeating: nil, count: size)
    }

    public func exchange(rank: Int, _ bytes: [UInt8]) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        let myGeneration = generation
        contributions[rank] = bytes
        arrived += 1
        if arrived == size {
            results = contributions.map { $0 ?? [] }
            contributions = Array(repeating: nil, count: size)
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == myGeneration { condition.wait() }
        }
        return results
    }

    /// Runs `body` once per rank, each on its own thread, and returns the results in rank order.
    public func run<T>(_ body: @escaping (LocalCommunicator) -> T) -> [T] {
        let outcomes = Outcomes<T>(count: size)
        let done = DispatchGroup()
        for rank in 0..<size {
            done.enter()
            let thread = Thread {
                let value = body(LocalCommunicator(group: self, rank: rank))
                outcomes.lock.lock()
                outcomes.values[rank] = value
                outcomes.lock.unlock()
                done.leave()
            }
            thread.start()
        }
        done.wait()
        return outcomes.values.compactMap { $0 }
    }
}

/// Per-rank results written by the rank threads.
private final class Outcomes<T>: @unchecked Sendable {
    let lock = NSLock()
    var values: [T?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
}

public final class LocalCommunicator: Communicator {
    public let group: LocalGroup
    public let rank: Int
    public var size: Int { group.size }
    public var localRank: Int { rank }
    public var localSize: Int { group.size }
    public var hostname: String { "host\(rank)" }
    public var step = 0

    public init(group: LocalGroup, rank: Int) {
        self.group = group
        self.rank = rank
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: String) throws {
        let mine = Array(UnsafeBufferPointer(start: buffer, count: count))
        let all = group.exchange(rank: rank, encode(mine)).map { decode($0, as: Float.self) }
        for index in 0..<count { buffer[index] = all.reduce(0) { $0 + $1[index] } }
    }

    public func allReduceSum(_ values: inout [Double], operation: String) throws {
        let all = group.exchange(rank: rank, encode(values)).map { decode($0, as: Double.self) }
        values = values.indices.map { index in all.reduce(0) { $0 + $1[index] } }
    }

    public func allReduceMax(_ values: inout [Double], operation: String) throws {
        let all = group.exchange(rank: rank, encode(values)).map { decode($0, as: Double.self) }
        values = values.indices.map { index in all.map { $0[index] }.max() ?? -.infinity }
    }

    public func broadcast(_ bytes: inout [UInt8], root: Int, operation: String) throws {
        bytes = group.exchange(rank: rank, bytes)[root]
    }

    public func allGather(_ bytes: [UInt8], operation: String) throws -> [[UInt8]] {
        group.exchange(rank: rank, bytes)
    }

    public func barrier(operation: String) throws {
        _ = group.exchange(rank: rank, [])
    }

    public func finalize() throws {}

    public func abort(code: Int32) -> Never {
        fatalError("LocalCommunicator.abort(\(code))")
    }

    private func encode<T>(_ values: [T]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    private func decode<T>(_ bytes: [UInt8], as type: T.Type) -> [T] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }
}
