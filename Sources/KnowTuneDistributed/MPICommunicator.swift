// Implements the Communicator over Open MPI (MPI_COMM_WORLD, MPI_THREAD_FUNNELED, MPI_ERRORS_RETURN), with the
// watchdog and the optional mismatch check around every collective; does not decide whether to use MPI
// (LaunchEnvironment does, via `start`) and never calls MPI from a thread other than the one that initialised it.
import CKnowTuneMPIShims
import CMPI
import Foundation
import KnowTuneTensor

/// The MPI job this process belongs to.
///
/// Start it with ``start(environment:options:)``, which returns a ``SingleProcessCommunicator`` when the process
/// was not launched by mpirun/srun, so `knowtune` without mpirun never touches MPI. Every MPI return code is
/// checked (the error handler is `MPI_ERRORS_RETURN`) and becomes a `KnowTuneError` naming the MPI function, the
/// rank, the step and the operation.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    public let hostname: String
    public var step = 0
    /// The watchdog timeout and mismatch check in force.
    public let options: CollectiveOptions
    /// The launcher detected at start.
    public let launcher: LaunchEnvironment.Launcher

    private let world: MPI_Comm
    private var node: MPI_Comm?
    private let watchdog: CollectiveWatchdog
    private let mpiThread: pthread_t
    private var finalized = false

    /// Largest element count passed to one MPI call (counts are `int`); bigger buffers go in chunks.
    static let maximumChunk = 1 << 30

    /// Starts the job's communication: MPI when launched by mpirun/srun (or `KNOWTUNE_MPI=always`), otherwise a
    /// one-rank ``SingleProcessCommunicator``. `options` default to `KNOWTUNE_COLLECTIVE_TIMEOUT` and
    /// `KNOWTUNE_CHECK_COLLECTIVES`. Call from the main thread; call `finalize()` before exiting.
    public static func start(environment: [String: String] = ProcessInfo.processInfo.environment,
                             options: CollectiveOptions? = nil) throws -> any Communicator {
        let launcher = try LaunchEnvironment.launcher(environment)
        guard launcher != .none else { return SingleProcessCommunicator() }
        let resolved = try options ?? CollectiveOptions(environment: environment)
        let communicator = try MPICommunicator(launcher: launcher, options: resolved)
        if let expected = LaunchEnvironment.expectedWorldSize(environment), expected != communicator.size {
            // Each process may believe it is rank 0 of 1, so no collective can agree on this: every rank reports it.
            try? communicator.finalize()
            throw KnowTuneError.invalidConfiguration(
                "the launcher started \(expected) processes but MPI reports a world of \(communicator.size) on "
                    + "\(communicator.hostname); the launcher does not match this MPI library (under Slurm use "
                    + "`srun --mpi=pmix` or Open MPI's mpirun)")
        }
        return communicator
    }

    private init(launcher: LaunchEnvironment.Launcher, options: CollectiveOptions) throws {
        self.launcher = launcher
        self.options = options
        self.hostname = LaunchEnvironment.currentHostname()
        self.mpiThread = pthread_self()
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            let code = MPI_Init_thread(nil, nil, kt_mpi_thread_funneled(), &provided)
            guard code == kt_mpi_success() else {
                throw KnowTuneError.invalidConfiguration("MPI_Init_thread failed (\(launcher) launch): \(Self.errorString(code))")
            }
            guard provided >= kt_mpi_thread_funneled() else {
                throw KnowTuneError.unsupported(what: "MPI thread level \(provided)", supported: "MPI_THREAD_FUNNELED or higher")
            }
        }
        world = kt_mpi_comm_world()
        try Self.check(MPI_Comm_set_errhandler(world, kt_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var value: Int32 = 0
        try Self.check(MPI_Comm_rank(world, &value), "MPI_Comm_rank")
        rank = Int(value)
        try Self.check(MPI_Comm_size(world, &value), "MPI_Comm_size")
        size = Int(value)
        var node: MPI_Comm?
        try Self.check(MPI_Comm_split_type(world, kt_mpi_comm_type_shared(), Int32(rank), kt_mpi_info_null(), &node),
                       "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)")
        self.node = node
        try Self.check(MPI_Comm_set_errhandler(node, kt_mpi_errors_return()), "MPI_Comm_set_errhandler(node)")
        try Self.check(MPI_Comm_rank(node, &value), "MPI_Comm_rank(node)")
        localRank = Int(value)
        try Self.check(MPI_Comm_size(node, &value), "MPI_Comm_size(node)")
        localSize = Int(value)
        watchdog = CollectiveWatchdog(timeout: options.timeout ?? 0)
    }

    // MARK: Collectives

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, operation: String) throws {
        try SingleProcessCommunicator.checkCount(count, operation: operation)
        try guarded(.allReduceSumFloat, count: count, operation: operation) {
            try chunks(count) { offset, length in
                try check(MPI_Allreduce(kt_mpi_in_place(), buffer + offset, length, kt_mpi_float(), kt_mpi_sum(), world),
                          "MPI_Allreduce", operation)
            }
        }
    }

    public func allReduceSum(_ values: inout [Double], operation: String) throws {
        try reduce(&values, kind: .allReduceSumDouble, op: kt_mpi_sum(), operation: operation)
    }

    public func allReduceMax(_ values: inout [Double], operation: String) throws {
        try reduce(&values, kind: .allReduceMaxDouble, op: kt_mpi_max(), operation: operation)
    }

    public func broadcast(_ bytes: inout [UInt8], root: Int, operation: String) throws {
        try SingleProcessCommunicator.checkRoot(root, size: size, operation: operation)
        try guarded(.broadcast, count: 0, root: root, operation: operation) {
            var length = Int64(rank == root ? bytes.count : 0)
            try check(MPI_Bcast(&length, 1, kt_mpi_int64(), Int32(root), world), "MPI_Bcast(length)", operation)
            guard length >= 0, length <= Int64(Int.max) else {
                throw KnowTuneError.invalidInput("broadcast '\(operation)' received a bad length \(length) from rank \(root)")
            }
            if rank != root { bytes = [UInt8](repeating: 0, count: Int(length)) }
            try bytes.withUnsafeMutableBytes { buffer in
                guard let base = buffer.baseAddress else { return }
                try chunks(buffer.count) { offset, count in
                    try check(MPI_Bcast(base + offset, count, kt_mpi_byte(), Int32(root), world), "MPI_Bcast", operation)
                }
            }
        }
    }

    public func allGather(_ bytes: [UInt8], operation: String) throws -> [[UInt8]] {
        try guarded(.allGather, count: 0, operation: operation) {
            var length = Int64(bytes.count)
            var lengths = [Int64](repeating: 0, count: size)
            try check(MPI_Allgather(&length, 1, kt_mpi_int64(), &lengths, 1, kt_mpi_int64(), world),
                      "MPI_Allgather(lengths)", operation)
            let total = lengths.reduce(0, +)
            guard lengths.allSatisfy({ $0 >= 0 }), total <= Int64(Int32.max) else {
                throw KnowTuneError.unsupported(what: "allGather '\(operation)' of \(total) bytes in total",
                                                supported: "at most \(Int32.max) bytes over all ranks")
            }
            let counts = lengths.map { Int32($0) }
            var displacements = [Int32](repeating: 0, count: size)
            for index in 1..<max(size, 1) { displacements[index] = displacements[index - 1] + counts[index - 1] }
            let send = bytes.isEmpty ? [0] : bytes  // A valid address even when sending nothing.
            var received = [UInt8](repeating: 0, count: max(Int(total), 1))
            try check(MPI_Allgatherv(send, Int32(bytes.count), kt_mpi_byte(), &received, counts, displacements,
                                     kt_mpi_byte(), world), "MPI_Allgatherv", operation)
            return (0..<size).map { index in
                let start = Int(displacements[index])
                return Array(received[start..<(start + Int(counts[index]))])
            }
        }
    }

    public func barrier(operation: String) throws {
        try guarded(.barrier, count: 0, operation: operation) {
            try check(MPI_Barrier(world), "MPI_Barrier", operation)
        }
    }

    // MARK: Lifetime

    public func finalize() throws {
        guard !finalized else { return }
        try requireMPIThread("finalize")
        finalized = true
        watchdog.stop()
        if node != nil {
            MPI_Comm_free(&node)
            node = nil
        }
        var done: Int32 = 0
        MPI_Finalized(&done)
        if done == 0 { try Self.check(MPI_Finalize(), "MPI_Finalize") }
    }

    public func abort(code: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        var done: Int32 = 0
        MPI_Finalized(&done)
        if !finalized, done == 0 { MPI_Abort(world, code) }
        _exit(code)
    }

    // MARK: Guards

    /// Runs one collective: thread check, optional mismatch check, watchdog armed for the duration.
    private func guarded<T>(_ kind: CollectiveKind, count: Int, root: Int = 0, operation: String,
                            _ body: () throws -> T) throws -> T {
        try requireMPIThread(operation)
        if options.checkCollectives { try compareFingerprints(kind, count: count, root: root, operation: operation) }
        watchdog.arm(.init(rank: rank, hostname: hostname, step: step, operation: operation,
                           kind: kind.describe(count: count, root: root)))
        defer { watchdog.disarm() }
        return try body()
    }

    /// Gathers every rank's fingerprint of the coming collective and throws the same error on every rank if any
    /// differs from rank 0's (KNOWTUNE_CHECK_COLLECTIVES=1).
    private func compareFingerprints(_ kind: CollectiveKind, count: Int, root: Int, operation: String) throws {
        let recordSize = CollectiveFingerprint.encodedSize
        let mine = CollectiveFingerprint(step: step, kind: kind, count: count, root: root, operation: operation).encoded()
        var all = [UInt8](repeating: 0, count: recordSize * size)
        watchdog.arm(.init(rank: rank, hostname: hostname, step: step, operation: operation,
                           kind: "collective check before \(kind.describe(count: count, root: root))"))
        defer { watchdog.disarm() }
        try check(MPI_Allgather(mine, Int32(recordSize), kt_mpi_byte(), &all, Int32(recordSize), kt_mpi_byte(), world),
                  "MPI_Allgather(collective check)", operation)
        var fingerprints: [CollectiveFingerprint] = []
        for index in 0..<size {
            guard let fingerprint = CollectiveFingerprint(encoded: all[(index * recordSize)..<((index + 1) * recordSize)]) else {
                throw AgreedFailure(rank: index, hostname: nil, failingRanks: [index], worldSize: size,
                                    message: "collective check: rank \(index) sent an unreadable record before '\(operation)'")
            }
            fingerprints.append(fingerprint)
        }
        if let mismatch = CollectiveFingerprint.firstMismatch(fingerprints) {
            throw AgreedFailure(rank: mismatch.rank, hostname: nil, failingRanks: [mismatch.rank], worldSize: size,
                                message: mismatch.message)
        }
    }

    private func requireMPIThread(_ operation: String) throws {
        guard !finalized else {
            throw KnowTuneError.invalidConfiguration("collective '\(operation)' called after finalize() on rank \(rank)")
        }
        guard pthread_equal(pthread_self(), mpiThread) != 0 else {
            throw KnowTuneError.invalidConfiguration(
                "collective '\(operation)' called from a thread other than the one that started MPI "
                    + "(MPI_THREAD_FUNNELED allows MPI calls from that thread only)")
        }
    }

    private func reduce(_ values: inout [Double], kind: CollectiveKind, op: MPI_Op, operation: String) throws {
        let count = values.count
        try guarded(kind, count: count, operation: operation) {
            guard count > 0 else {
                var scratch: Double = 0  // A valid address for a zero-length reduction.
                try check(MPI_Allreduce(kt_mpi_in_place(), &scratch, 0, kt_mpi_double(), op, world), "MPI_Allreduce", operation)
                return
            }
            try values.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                try chunks(count) { offset, length in
                    try check(MPI_Allreduce(kt_mpi_in_place(), base + offset, length, kt_mpi_double(), op, world),
                              "MPI_Allreduce", operation)
                }
            }
        }
    }

    /// Calls `body(offset, length)` over `count` elements in pieces MPI's `int` counts can hold (at least once).
    private func chunks(_ count: Int, _ body: (Int, Int32) throws -> Void) throws {
        var offset = 0
        repeat {
            let length = min(count - offset, Self.maximumChunk)
            try body(offset, Int32(length))
            offset += length
        } while offset < count
    }

    private func check(_ code: Int32, _ function: String, _ operation: String) throws {
        guard code != kt_mpi_success() else { return }
        throw KnowTuneError.invalidConfiguration(
            "\(function) failed on rank \(rank) of \(size) (\(hostname)) at step \(step), operation '\(operation)': "
                + Self.errorString(code))
    }

    private static func check(_ code: Int32, _ function: String) throws {
        guard code != kt_mpi_success() else { return }
        throw KnowTuneError.invalidConfiguration("\(function) failed: \(errorString(code))")
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(kt_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == kt_mpi_success() else { return "MPI error \(code)" }
        return String(cString: buffer) + " (MPI error \(code))"
    }
}
