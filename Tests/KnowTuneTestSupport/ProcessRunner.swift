// Implements how tests find and run KnowTune's executables (`knowtune`, `knowtune-testkit`), alone or under
// mpirun, with a hard timeout; does not skip anything (a missing mpirun or executable fails the test).
import Foundation
import XCTest

public struct ProcessResult {
    public var status: Int32
    public var reason: Process.TerminationReason
    public var standardOutput: String
    public var standardError: String
    public var seconds: Double
    public var timedOut: Bool

    public var output: String { standardOutput + standardError }

    public func occurrences(of text: String) -> Int {
        output.components(separatedBy: text).count - 1
    }
}

public struct TestkitError: Error, CustomStringConvertible {
    public let description: String
}

public enum Testkit {
    /// `knowtune-testkit` beside the test bundle (both live in SwiftPM's bin folder), or `KNOWTUNE_TESTKIT`.
    public static func executable() throws -> String {
        if let override = ProcessInfo.processInfo.environment["KNOWTUNE_TESTKIT"] { return override }
        return try executable(named: "knowtune-testkit")
    }

    /// A product of this package, found beside the test bundle (SwiftPM's bin folder).
    public static func executable(named name: String) throws -> String {
        let bundle = Bundle.main.bundleURL
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            bundle, bundle.deletingLastPathComponent(),
            Bundle(for: Marker.self).bundleURL.deletingLastPathComponent(),
        ]
        for folder in candidates {
            let path = folder.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestkitError(description: "\(name) not found next to the tests (looked in \(candidates.map(\.path))); "
            + "build with `swift build -c release --build-tests`")
    }

    /// `mpirun` from PATH; a missing mpirun fails the test (openmpi-bin is a required package).
    public static func mpirun() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/mpirun"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestkitError(description: "mpirun not found on PATH (install openmpi-bin; launch/setup.sh does)")
    }

    /// Runs `knowtune-testkit <arguments>` under `mpirun -np <ranks>`, passing `environment` to every rank.
    public static func runUnderMPI(ranks: Int, _ arguments: [String], environment: [String: String] = [:],
                                   timeout: TimeInterval = 20) throws -> ProcessResult {
        try runUnderMPI(executable: try executable(), ranks: ranks, arguments, environment: environment, timeout: timeout)
    }

    /// Runs `executable <arguments>` under `mpirun -np <ranks>`, passing `environment` to every rank.
    public static func runUnderMPI(executable: String, ranks: Int, _ arguments: [String], environment: [String: String] = [:],
                                   timeout: TimeInterval = 20) throws -> ProcessResult {
        var launcher = ["-np", String(ranks), "--oversubscribe", "--bind-to", "none"]
        if getuid() == 0 { launcher.append("--allow-run-as-root") }
        for name in environment.keys.sorted() { launcher += ["-x", name] }
        return try run(try mpirun(), launcher + [executable] + arguments, environment: environment, timeout: timeout)
    }

    /// Runs `executable` with extra `environment`, killing it after `timeout` seconds.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    timeout: TimeInterval = 20) throws -> ProcessResult {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("knowtune-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outputURL = folder.appendingPathComponent("stdout")
        let errorURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        let error = try FileHandle(forWritingTo: errorURL)
        defer {
            try? output.close()
            try? error.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = output
        process.standardError = error
        let start = Date()
        try process.run()
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                process.terminate()
                let grace = Date()
                while process.isRunning, Date().timeIntervalSince(grace) < 3 { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        return ProcessResult(status: process.terminationStatus, reason: process.terminationReason,
                             standardOutput: (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "",
                             standardError: (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "",
                             seconds: seconds, timedOut: timedOut)
    }

    private final class Marker {}
}
