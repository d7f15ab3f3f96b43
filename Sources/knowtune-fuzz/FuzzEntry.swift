// Implements the fuzzing executable. Built with `-D KNOWTUNE_FUZZ` and libFuzzer + AddressSanitizer (launch/fuzz.sh) it
// runs libFuzzer's driver on the target KNOWTUNE_FUZZ_TARGET names; in a plain build it replays files
// through a target (`knowtune-fuzz replay TARGET FILE…`, what a crash file does without the sanitizers) and writes
// the seed corpora (`knowtune-fuzz seeds MODEL DATA_DIR OUT_DIR`).
import Foundation
import KnowTuneFuzzing

#if KNOWTUNE_FUZZ
/// libFuzzer's driver for programs with their own `main` (SwiftPM gives every executable one).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
enum FuzzMain {
    static let target: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["KNOWTUNE_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("KNOWTUNE_FUZZ_TARGET must be one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return target
    }()

    static func main() {
        _ = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
            FuzzMain.target.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
            return 0
        })
    }
}
#else
@main
enum FuzzTool {
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("knowtune-fuzz: \(message)\n".utf8))
        exit(1)
    }

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let usage = "usage: knowtune-fuzz replay TARGET FILE… | seeds MODEL DATA_DIR OUT_DIR (targets: "
            + FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        switch arguments.first {
        case "replay":
            guard arguments.count >= 3, let target = FuzzTarget(rawValue: arguments[1]) else { fail(usage) }
            for file in arguments.dropFirst(2) {
                guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
                do {
                    try target.check(data)
                    print("\(file): accepted")
                } catch {
                    print("\(file): refused: \(error)")
                }
            }
        case "seeds":
            guard arguments.count == 4 else { fail(usage) }
            do { try FuzzSeeds.write(modelPath: arguments[1], dataDirectory: arguments[2], to: arguments[3]) } catch { fail("\(error)") }
        default:
            fail(usage)
        }
    }
}
#endif
