// Implements the settings that guard collectives (watchdog timeout, mismatch check) and their environment
// variables; does not enforce them (CollectiveWatchdog and CollectiveFingerprint do).
import Foundation
import KnowTuneTensor

/// How collectives are guarded: the watchdog timeout and the mismatch check.
public struct CollectiveOptions: Equatable, Sendable {
    /// Seconds a collective may take before the watchdog aborts the job; `nil` disables the watchdog.
    public var timeout: TimeInterval?
    /// Before each collective, gather every rank's (step, operation, kind, count) and fail on a mismatch.
    public var checkCollectives: Bool

    /// 30 minutes, the NCCL watchdog's classic default.
    public static let defaultTimeout: TimeInterval = 30 * 60

    public init(timeout: TimeInterval? = CollectiveOptions.defaultTimeout, checkCollectives: Bool = false) {
        self.timeout = timeout
        self.checkCollectives = checkCollectives
    }

    /// Reads `KNOWTUNE_COLLECTIVE_TIMEOUT` (seconds; `0` or `off` disables) and `KNOWTUNE_CHECK_COLLECTIVES=1`.
    public init(environment: [String: String]) throws {
        self.init()
        if let text = environment["KNOWTUNE_COLLECTIVE_TIMEOUT"], !text.isEmpty {
            if text.lowercased() == "off" {
                timeout = nil
            } else if let seconds = TimeInterval(text), seconds >= 0, seconds.isFinite {
                timeout = seconds == 0 ? nil : seconds
            } else {
                throw KnowTuneError.invalidConfiguration(
                    "KNOWTUNE_COLLECTIVE_TIMEOUT=\(text) (expected seconds >= 0, or off)")
            }
        }
        switch environment["KNOWTUNE_CHECK_COLLECTIVES"]?.lowercased() {
        case nil, "", "0", "false", "off": checkCollectives = false
        case "1", "true", "on": checkCollectives = true
        case let other?:
            throw KnowTuneError.invalidConfiguration("KNOWTUNE_CHECK_COLLECTIVES=\(other) (expected 0 or 1)")
        }
    }
}
