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

    public var description: String {
        switch self {
        case let .fileUnreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .badFormat(path, reason): return "\(path): \(reason)"
        case let .unsupported(what, supported): return "unsupported \(what) (supported: \(supported))"
        case let .invalidConfiguration(message): return "invalid configuration: \(message)"
        case let .invalidInput(message): return "invalid input: \(message)"
        case let .numerical(message): return "numerical error: \(message)"
        }
    }
}
