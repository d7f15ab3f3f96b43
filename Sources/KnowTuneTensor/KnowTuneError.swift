// Implements the one error type every KnowTune layer throws; does not print or exit (the CLI does).
import Foundation

/// An error with context a user can act on: what failed, where, and (when useful) what to do.
public enum KnowTuneError: Error, CustomStringConvertible, Equatable {
    /// A file could not be opened, read or mapped.
    case fileUnreadable(path: String, reason: String)
    /// A file exists but its content is not what its format requires.
    case badFormat(path: String, reason: String)
    /// A feature, type or value KnowTune does not support, with what it does support.
    case unsupported(what: String, supported: String)
    /// A configuration value is missing or wrong.
    case invalidConfiguration(String)
    /// Input data (a record, a prompt, a dataset) is unusable.
    case invalidInput(String)
    /// A numeric failure such as a NaN loss.
    case numerical(String)
    /// A reply (from a teacher model or an HTTP service) that does not have the expected form; the caller may skip
    /// the item it was for and count it.
    case malformedReply(String)
    /// A request to a service that failed; `retryable` when a later attempt may succeed (a timeout, HTTP 429 or 5xx),
    /// not when it cannot (a bad key, a wrong URL).
    case requestFailed(String, retryable: Bool)

    public var description: String {
        switch self {
        case let .fileUnreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .badFormat(path, reason): return "\(path): \(reason)"
        case let .unsupported(what, supported): return "unsupported \(what) (supported: \(supported))"
        case let .invalidConfiguration(message): return "invalid configuration: \(message)"
        case let .invalidInput(message): return "invalid input: \(message)"
        case let .numerical(message): return "numerical error: \(message)"
        case let .malformedReply(message): return "reply not usable: \(message)"
        case let .requestFailed(message, _): return "request failed: \(message)"
        }
    }

    /// A request failure worth another attempt.
    public var isRetryable: Bool {
        if case .requestFailed(_, retryable: true) = self { return true }
        return false
    }
}
