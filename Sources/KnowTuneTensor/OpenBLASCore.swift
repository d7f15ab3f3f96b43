// Implements the choice of OpenBLAS's CPU kernels when its own detection failed: OpenBLAS 0.3.21 (Debian 12) does not
// know recent CPUs (e.g. Intel family 6 model 207, Emerald Rapids) and runs them with its Prescott (SSE3) kernels,
// whose sgemm measured 6 × slower than its SkylakeX (AVX-512) ones on such a machine. When OpenBLAS picked a core
// older than AVX2 on a CPU whose kernel reports AVX2+FMA (or AVX-512 F/BW/DQ/VL), KnowTune re-initialises OpenBLAS's
// dynamic kernel table with Haswell (or SkylakeX), as `OPENBLAS_CORETYPE` would; a set `OPENBLAS_CORETYPE`, or
// `KNOWTUNE_OPENBLAS_CORE=keep`, keeps OpenBLAS's own choice. Must run before the first BLAS call; does not touch
// thread counts.
import Foundation
import COpenBLAS

public enum OpenBLASCore {
    public struct Choice: Equatable, Sendable {
        /// The core OpenBLAS detected.
        public let detected: String
        /// The core the process runs (the detected one unless replaced).
        public let running: String

        /// One line for start-up banners.
        public var description: String {
            detected == running ? "OpenBLAS kernels \(running)"
                : "OpenBLAS kernels \(running) (OpenBLAS detected \(detected), which this CPU outgrows; KNOWTUNE_OPENBLAS_CORE=keep keeps it)"
        }
    }

    /// OpenBLAS's cores for CPUs without AVX2.
    static let preAVX2Cores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "sandybridge",
                                            "barcelona", "bobcat", "bulldozer", "piledriver", "opteron", "katmai", "coppermine"]

    /// The core to switch to, or nil to keep `detected`: a pure decision over the detected core, the CPU's flags (as in
    /// /proc/cpuinfo) and the environment.
    static func replacement(detected: String, cpuFlags: Set<String>, environment: [String: String]) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["KNOWTUNE_OPENBLAS_CORE"] != "keep",
              preAVX2Cores.contains(detected.lowercased()) else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The flags of the first processor in /proc/cpuinfo (empty where there is none).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// What `chooseKernels` decided in this process (nil before it runs).
    public private(set) nonisolated(unsafe) static var startupChoice: Choice?

    /// Switches OpenBLAS to the better kernels where `replacement` says so; returns what runs. Call once, first thing in
    /// `main`: OpenBLAS's kernel table is process-wide.
    @discardableResult
    public static func chooseKernels(environment: [String: String] = ProcessInfo.processInfo.environment) -> Choice {
        let detected = BLAS.coreName
        var running = detected
        if let better = replacement(detected: detected, cpuFlags: cpuFlags(), environment: environment),
           let quit = symbol("gotoblas_dynamic_quit"), let initialise = symbol("gotoblas_dynamic_init") {
            // OpenBLAS reads OPENBLAS_CORETYPE when it initialises its table; child processes inherit the choice.
            setenv("OPENBLAS_CORETYPE", better, 1)
            quit()
            initialise()
            running = BLAS.coreName
        }
        let choice = Choice(detected: detected, running: running)
        startupChoice = choice
        return choice
    }

    /// A function of the loaded OpenBLAS (only DYNAMIC_ARCH builds have the table functions).
    private static func symbol(_ name: String) -> (@convention(c) () -> Void)? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: (@convention(c) () -> Void).self)
    }
}
