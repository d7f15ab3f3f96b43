// Implements what tests need to kill a job from outside: a background process with its output in files, the process
// ids of a run's ranks (found by output folder and rank number), and the newest published checkpoint.
import Foundation

/// A process started in the background, its output going to files (for the rank-death and soak tests).
public final class BackgroundProcess {
    public let process = Process()
    private let folder: URL
    private let outputURL: URL
    private let errorURL: URL

    public init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("knowtune-launch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        outputURL = folder.appendingPathComponent("stdout")
        errorURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: folder)
    }

    /// Waits at most `timeout` seconds; kills the process (and fails) if it is still running then.
    public func wait(timeout: TimeInterval) -> (status: Int32, output: String, timedOut: Bool) {
        let start = Date()
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                process.terminate()
                usleep(2_000_000)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        let output = ((try? String(contentsOf: outputURL, encoding: .utf8)) ?? "")
            + ((try? String(contentsOf: errorURL, encoding: .utf8)) ?? "")
        return (process.terminationStatus, output, timedOut)
    }
}

/// Process ids of the running `knowtune` ranks whose command line mentions `marker` (a unique output folder) and
/// whose environment says they are rank `rank` (Open MPI's OMPI_COMM_WORLD_RANK, or PMIX_RANK under srun).
public func rankProcesses(marker: String, rank: Int) -> [pid_t] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var found: [pid_t] = []
    for entry in entries {
        guard let pid = pid_t(entry),
              let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { continue }
        let words = commandLine.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let program = words.first, program.hasSuffix("/knowtune"), words.contains(marker),
              let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")) else { continue }
        let variables = Set(environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
        if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") || variables.contains("PMIX_RANK=\(rank)") { found.append(pid) }
    }
    return found
}

/// The highest step among `folder`'s complete checkpoints (checkpoint-<step>/state.h5, published by rename).
public func latestCompleteCheckpoint(in folder: String) -> Int? {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
    return entries.compactMap { name -> Int? in
        guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)),
              FileManager.default.fileExists(atPath: "\(folder)/\(name)/state.h5") else { return nil }
        return step
    }.max()
}
