// Implements the "finish this step, checkpoint, exit 0" request that SIGTERM and SIGUSR1 (Slurm's warning before
// a time limit) raise; does not act on it (the trainer agrees on it with every rank at the end of each step).
#if canImport(Glibc)
import Glibc
#endif

/// Set asynchronously by the signal handler; read once per step. A plain global is the only thing a C signal
/// handler may touch; it is written by nothing else.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

public enum StopSignal {
    /// Installs the handlers for SIGTERM and SIGUSR1.
    public static func install() {
        signal(SIGTERM) { _ in stopRequested = 1 }
        signal(SIGUSR1) { _ in stopRequested = 1 }
    }

    public static var isRequested: Bool { stopRequested != 0 }
}
