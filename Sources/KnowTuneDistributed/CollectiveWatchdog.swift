// Implements the collective watchdog: a background thread, armed before each collective and disarmed after, that
// reports a collective still running after the timeout (rank, host, step, operation) and ends the process;
// does not call MPI (under MPI_THREAD_FUNNELED only the main thread may), so it exits with `_exit(1)` and lets
// mpirun/srun take the other ranks down.
import Foundation

/// Turns a silent MPI hang (a rank stuck in `MPI_Allreduce` busy-polls forever) into a message and an exit.
///
/// One thread per watchdog, started on first use; arming and disarming cost one lock each. MPI has no timeout
/// of its own, unlike NCCL's watchdog.
public final class CollectiveWatchdog: @unchecked Sendable {
    /// What the watchdog knows about the collective in flight.
    public struct Collective: Sendable, Equatable {
        public var rank, step: Int
        public var hostname, operation: String
        /// The kind and size, for example "allReduceSum of 1024 floats".
        public var kind: String

        public init(rank: Int, hostname: String, step: Int, operation: String, kind: String) {
            self.rank = rank
            self.hostname = hostname
            self.step = step
            self.operation = operation
            self.kind = kind
        }
    }

    /// Seconds a collective may run; not positive or not finite means never fire.
    public let timeout: TimeInterval
    private let onTimeout: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var armed: Collective?
    private var deadline = Date.distantFuture
    private var generation: UInt64 = 0
    private var stopped = false
    private var thread: Thread?

    /// Creates a watchdog; `onTimeout` receives the report. The default handler writes it to stderr and calls
    /// `_exit(1)`; a handler that returns just leaves the collective disarmed (for tests).
    public init(timeout: TimeInterval, onTimeout: @escaping @Sendable (String) -> Void = CollectiveWatchdog.exitProcess) {
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    deinit {
        stop()
    }

    /// Starts the clock for `collective`.
    public func arm(_ collective: Collective) {
        guard timeout > 0, timeout.isFinite else { return }
        condition.lock()
        if thread == nil, !stopped {
            let thread = Thread { [weak self] in self?.watch() }
            thread.name = "knowtune-collective-watchdog"
            thread.stackSize = 1 << 18
            self.thread = thread
            thread.start()
        }
        armed = collective
        deadline = Date().addingTimeInterval(timeout)
        generation &+= 1
        condition.signal()
        condition.unlock()
    }

    /// Stops the clock: the collective finished (or threw).
    public func disarm() {
        guard timeout > 0, timeout.isFinite else { return }
        condition.lock()
        armed = nil
        condition.unlock()
    }

    /// Ends the watchdog thread (at finalize).
    public func stop() {
        condition.lock()
        stopped = true
        armed = nil
        condition.signal()
        condition.unlock()
    }

    /// The report printed when `collective` exceeds `timeout`.
    public static func report(_ collective: Collective, timeout: TimeInterval) -> String {
        let seconds = timeout >= 10 ? String(Int(timeout)) : String(format: "%.1f", timeout)
        return "[rank \(collective.rank) \(collective.hostname)] error: collective '\(collective.operation)' "
            + "(\(collective.kind)) at step \(collective.step) did not complete within \(seconds) s; another rank "
            + "is probably stuck, has crashed, or is calling a different collective. Aborting the job. "
            + "(KNOWTUNE_COLLECTIVE_TIMEOUT sets the limit; KNOWTUNE_CHECK_COLLECTIVES=1 reports mismatched collectives.)"
    }

    /// The default timeout handler: one write to stderr, then `_exit(1)` (no atexit handlers, no MPI calls).
    public static let exitProcess: @Sendable (String) -> Void = { message in
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        _exit(1)
    }

    private func watch() {
        condition.lock()
        while !stopped {
            guard let collective = armed else {
                condition.wait()
                continue
            }
            if Date() >= deadline {
                let firedGeneration = generation
                let message = Self.report(collective, timeout: timeout)
                condition.unlock()
                onTimeout(message)
                condition.lock()
                if generation == firedGeneration { armed = nil }
                continue
            }
            _ = condition.wait(until: deadline)
        }
        condition.unlock()
    }
}
