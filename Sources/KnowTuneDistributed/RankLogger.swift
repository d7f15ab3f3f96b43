// Implements rank-aware logging to stderr: INFO from rank 0 only, warnings and errors from every rank prefixed
// "[rank N host]", and a switch for all-rank INFO; does not buffer, rotate or write files.
import Foundation
import KnowTuneTensor

/// A tiny logger that keeps N-rank output readable.
///
/// `KNOWTUNE_LOG_ALL_RANKS=1` turns on INFO from every rank; `KNOWTUNE_LOG_LEVEL=debug|info|warning|error` sets
/// the threshold. Each line is one `write(2)`, so lines from different ranks do not interleave mid-line.
public struct RankLogger: Sendable {
    public enum Level: Int, Comparable, Sendable {
        case debug, info, warning, error

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warning", "warn": self = .warning
            case "error": self = .error
            default: return nil
            }
        }
    }

    public let rank: Int
    public let worldSize: Int
    public let hostname: String
    /// INFO (and DEBUG) from every rank, not only rank 0.
    public let allRanks: Bool
    /// Messages below this level are dropped on every rank.
    public let minimumLevel: Level
    private let sink: @Sendable (String) -> Void

    public init(rank: Int, worldSize: Int, hostname: String, allRanks: Bool = false, minimumLevel: Level = .info,
                sink: @escaping @Sendable (String) -> Void = RankLogger.standardError) {
        self.rank = rank
        self.worldSize = worldSize
        self.hostname = hostname
        self.allRanks = allRanks
        self.minimumLevel = minimumLevel
        self.sink = sink
    }

    /// A logger for `communicator`'s rank, configured from `KNOWTUNE_LOG_ALL_RANKS` and `KNOWTUNE_LOG_LEVEL`.
    public init(communicator: any Communicator,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                sink: @escaping @Sendable (String) -> Void = RankLogger.standardError) throws {
        let allRanks: Bool
        switch environment["KNOWTUNE_LOG_ALL_RANKS"]?.lowercased() {
        case nil, "", "0", "false", "off": allRanks = false
        case "1", "true", "on": allRanks = true
        case let other?: throw KnowTuneError.invalidConfiguration("KNOWTUNE_LOG_ALL_RANKS=\(other) (expected 0 or 1)")
        }
        var level = Level.info
        if let name = environment["KNOWTUNE_LOG_LEVEL"], !name.isEmpty {
            guard let parsed = Level(name: name) else {
                throw KnowTuneError.invalidConfiguration("KNOWTUNE_LOG_LEVEL=\(name) (expected debug, info, warning or error)")
            }
            level = parsed
        }
        self.init(rank: communicator.rank, worldSize: communicator.size, hostname: communicator.hostname,
                  allRanks: allRanks, minimumLevel: level, sink: sink)
    }

    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    /// Whether this rank prints messages of `level`.
    public func shouldLog(_ level: Level) -> Bool {
        guard level >= minimumLevel else { return false }
        return level >= .warning || rank == 0 || allRanks
    }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard shouldLog(level) else { return }
        sink(format(level, message()))
    }

    /// The line for `message`: "[rank 1 host] warning: …" on ranks other than 0 (and on rank 0 too when every
    /// rank logs INFO); warnings and errors carry their level, INFO does not.
    public func format(_ level: Level, _ message: String) -> String {
        let prefix = worldSize > 1 && (rank != 0 || allRanks) ? "[rank \(rank) \(hostname)] " : ""
        let label: String
        switch level {
        case .debug: label = "debug: "
        case .info: label = ""
        case .warning: label = "warning: "
        case .error: label = "error: "
        }
        return prefix + label + message
    }

    /// Writes `line` and a newline to stderr in one `write(2)`.
    public static let standardError: @Sendable (String) -> Void = { line in
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDERR_FILENO, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if written <= 0 { if written < 0 && errno == EINTR { continue }; return }
                offset += written
            }
        }
    }
}
