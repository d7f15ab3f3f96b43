// Implements the launch tests' use of the repository's launch lab (launch/lab/): the Debian packages it needs, a
// real single-node Slurm and network-namespace "hosts" started and stopped idempotently, Slurm job submission and
// waiting; does not skip: a missing lab,
// package or daemon fails the test.
import Foundation
import KnowTuneTestSupport
import XCTest

enum LaunchLab {
    struct LabError: Error, CustomStringConvertible {
        let description: String
    }

    /// The checkout's `launch/lab/` (slurm.sh, hosts.sh, lab.sh).
    static func tools() throws -> String {
        let path = TestPaths.repositoryRoot.appendingPathComponent("launch/lab").path
        guard FileManager.default.isExecutableFile(atPath: path + "/slurm.sh") else {
            throw LabError(description: "the launch lab is missing: \(path)/slurm.sh")
        }
        return path
    }

    /// Where the lab writes its files (kt-mpirun, the hostfile, Slurm state), as its scripts compute it.
    static var directory: String {
        let environment = ProcessInfo.processInfo.environment
        if let folder = environment["KT_LAB_DIR"] { return folder }
        return (environment["TMPDIR"] ?? "/tmp") + "/kt-lab"
    }

    private static let lock = NSLock()
    private static var packagesReady = false
    private static var slurmStartedHere = false
    private static var hostsConfiguration: String?

    /// Runs `command` with bash, failing the test when it fails.
    @discardableResult
    static func shell(_ command: String, environment: [String: String] = [:], timeout: TimeInterval = 120,
                      _ what: String) throws -> ProcessResult {
        let result = try Testkit.run("/bin/bash", ["-c", command], environment: environment, timeout: timeout)
        guard result.status == 0, !result.timedOut else {
            throw LabError(description: "\(what) failed (status \(result.status)\(result.timedOut ? ", timed out" : "")): "
                + result.output)
        }
        return result
    }

    /// Runs a lab script in the lab's folder. The scripts leave daemons running (slurmd, munged, the delayed link) that
    /// inherit every open descriptor: Foundation's Process learns that a child ended when its end of a socket pair
    /// closes, and our output pipes wait for EOF, so the script runs with descriptors above 2 closed and its output
    /// in a file that is printed afterwards.
    static func runRecipe(_ command: String, environment: [String: String] = [:], timeout: TimeInterval) throws {
        let log = directory + "/script.log"
        let closeInherited = #"for fd in /proc/$BASHPID/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null; done"#
        try shell("mkdir -p '\(directory)' && cd '\(try tools())' && ( \(closeInherited); \(command) ) > '\(log)' 2>&1 < /dev/null; "
                      + "status=$?; cat '\(log)'; exit $status", environment: environment, timeout: timeout, command)
    }

    /// Installs what the lab needs and a fresh Debian may lack, through `lab.sh install` (`apt-get update` first):
    /// Slurm and munge, iproute2 (`ip netns`, `tc`) and python3 (the delayed link); the list below only decides
    /// whether to call it and must name the same packages as LAB_PACKAGES in launch/lab/common.sh. About 15 s on a
    /// fresh machine, nothing when present.
    static func ensurePackages() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !packagesReady else { return }
        guard getuid() == 0 else {
            throw LabError(description: "the launch tests start Slurm daemons and network namespaces: run them as root")
        }
        let packages = ["slurm-wlm", "munge", "iproute2", "python3"]
        let check = try Testkit.run("/bin/bash", ["-c", """
            for p in \(packages.joined(separator: " ")); do
              dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
            done
            """], timeout: 30)
        let missing = check.standardOutput.split(separator: "\n").map(String.init)
        if !missing.isEmpty {
            let start = Date()
            // Package scripts may start daemons (munged): same output redirection as the other lab scripts.
            try runRecipe("./lab.sh install", timeout: 900)
            print("launch-lab: installed \(missing.joined(separator: " ")) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
        packagesReady = true
    }

    // MARK: Slurm

    /// Starts the lab's single-node Slurm unless it already answers (`slurm.sh start` is idempotent).
    static func startSlurm() throws {
        try ensurePackages()
        lock.lock()
        defer { lock.unlock() }
        let running = (try? Testkit.run("/bin/bash", ["-c", "scontrol ping | grep -q UP"], timeout: 20))?.status == 0
        let start = Date()
        try runRecipe("./slurm.sh start", timeout: 300)
        if !running {
            slurmStartedHere = true
            print("launch-lab: Slurm started in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }

    /// Stops Slurm if these tests started it.
    static func stopSlurmIfStartedHere() {
        lock.lock()
        defer { lock.unlock() }
        guard slurmStartedHere, let tools = try? tools() else { return }
        _ = try? shell("cd '\(tools)' && ./slurm.sh stop", timeout: 60, "slurm.sh stop")
        slurmStartedHere = false
    }

    /// Outcome of a batch job.
    struct Job {
        var id: String
        var state: String
        var exitCode: String
        var output: String
        var seconds: Double
    }

    /// Submits `script` with `sbatch --parsable` and returns its id.
    static func submit(_ script: String, sbatchOptions: [String], arguments: [String], environment: [String: String]) throws -> String {
        let result = try Testkit.run("/usr/bin/sbatch", ["--parsable"] + sbatchOptions + [script] + arguments,
                                     environment: environment, timeout: 30)
        let id = result.standardOutput.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard result.status == 0, !id.isEmpty else { throw LabError(description: "sbatch failed: \(result.output)") }
        return id
    }

    /// The job's state and exit code from `scontrol show job` (no accounting in the lab; finished jobs stay visible
    /// for MinJobAge, 300 s).
    static func jobState(_ id: String) throws -> (state: String, exitCode: String) {
        let result = try Testkit.run("/usr/bin/scontrol", ["show", "job", "-o", id], timeout: 20)
        func field(_ name: String) -> String {
            guard let range = result.standardOutput.range(of: " \(name)=") else { return "" }
            return String(result.standardOutput[range.upperBound...].prefix { !$0.isWhitespace })
        }
        return (field("JobState"), field("ExitCode"))
    }

    /// Waits until job `id` has ended (polling every 0.2 s; `sbatch --wait` polls far slower) and reads its output file.
    static func wait(forJob id: String, outputFile: String, timeout: TimeInterval = 120) throws -> Job {
        let start = Date()
        let ended: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                                  "BOOT_FAIL", "DEADLINE"]
        while true {
            let (state, exitCode) = try jobState(id)
            if ended.contains(state) {
                let output = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? "(no output file \(outputFile))"
                return Job(id: id, state: state, exitCode: exitCode, output: output, seconds: Date().timeIntervalSince(start))
            }
            if Date().timeIntervalSince(start) > timeout {
                _ = try? Testkit.run("/usr/bin/scancel", [id], timeout: 20)
                let output = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? ""
                throw LabError(description: "job \(id) still \(state) after \(Int(timeout)) s; cancelled. Output so far:\n\(output)")
            }
            usleep(200_000)
        }
    }

    // MARK: Network-namespace hosts

    /// Two "hosts" kt-h1 and kt-h2 (network namespaces), optionally joined by a slow link; rebuilt only when the
    /// link changes. Returns the lab's `kt-mpirun`.
    static func startHosts(delay: String? = nil, rate: String? = nil) throws -> String {
        try ensurePackages()
        lock.lock()
        defer { lock.unlock() }
        let configuration = "delay=\(delay ?? "none") rate=\(rate ?? "none")"
        let launcher = directory + "/kt-mpirun"
        if hostsConfiguration == configuration, FileManager.default.isExecutableFile(atPath: launcher) { return launcher }
        var environment = ["KT_NHOSTS": "2"]
        if let delay { environment["KT_DELAY"] = delay }
        if let rate { environment["KT_RATE"] = rate }
        // `hosts.sh start` clears a previous set-up itself; unset knobs must not leak in from the caller's environment.
        let unset = ["KT_DELAY", "KT_RATE", "KT_MTU", "KT_SLOTS"].filter { environment[$0] == nil }
            .map { "-u \($0)" }.joined(separator: " ")
        try runRecipe("env \(unset) ./hosts.sh start", environment: environment, timeout: 60)
        hostsConfiguration = configuration
        return launcher
    }

    static func stopHosts() {
        lock.lock()
        defer { lock.unlock() }
        guard hostsConfiguration != nil, let tools = try? tools() else { return }
        _ = try? shell("cd '\(tools)' && ./hosts.sh stop", timeout: 60, "hosts.sh stop")
        hostsConfiguration = nil
    }
}
