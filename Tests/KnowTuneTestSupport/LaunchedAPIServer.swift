// Implements `knowtune api` run as a user runs it, for tests: the process on a free port (`--port 0`), its address
// read from the `listening on` line it prints, and SIGTERM at the end.
import Foundation
import KnowTuneTensor

public final class LaunchedAPIServer {
    public let process = Process()
    /// `http://127.0.0.1:PORT/v1`.
    public private(set) var baseURL = ""
    private let errors = Pipe()
    private let log = LogBuffer()

    public init(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws {
        process.executableURL = URL(fileURLWithPath: try Testkit.executable(named: "knowtune"))
        process.arguments = ["api", "--port", "0"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        let log = self.log
        errors.fileHandleForReading.readabilityHandler = { handle in log.append(handle.availableData) }
        try process.run()
        let start = Date()
        while Date().timeIntervalSince(start) < timeout, process.isRunning {
            if let range = log.text.range(of: #"listening on (http://[0-9.]+:[0-9]+/v1)"#, options: .regularExpression) {
                baseURL = String(log.text[range].dropFirst("listening on ".count))
                return
            }
            usleep(50_000)
        }
        stop()
        throw KnowTuneError.invalidInput("knowtune api did not start: \(log.text)")
    }

    /// What the server printed to stderr so far.
    public var output: String { log.text }

    /// SIGTERM, then the exit status.
    @discardableResult
    public func stop() -> Int32 {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        errors.fileHandleForReading.readabilityHandler = nil
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

private final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
