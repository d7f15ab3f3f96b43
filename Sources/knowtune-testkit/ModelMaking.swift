// Implements the testkit's model commands: `make-model` writes a random seeded model of a named shape as GGUF
// (SyntheticModel), and `cache-base` builds the node-shared cache entry of a model in a base precision as local
// rank 0 does; both print one JSON line with their time, peak resident memory and bytes written, for
// launch/bench-7b.sh.
import Foundation
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

enum ModelMaking {
    /// `--name value` pairs; a missing value or an unknown name is a usage error.
    static func options(_ arguments: [String], allowed: Set<String>) throws -> [String: String] {
        var result: [String: String] = [:], index = 0
        while index < arguments.count {
            let name = arguments[index]
            guard name.hasPrefix("--"), allowed.contains(String(name.dropFirst(2))), index + 1 < arguments.count else {
                throw KnowTuneError.invalidConfiguration("unexpected argument \(name) (options: \(allowed.sorted().map { "--" + $0 }.joined(separator: " ")))")
            }
            result[String(name.dropFirst(2))] = arguments[index + 1]
            index += 2
        }
        return result
    }

    /// The process's peak resident set (VmHWM), in MiB.
    static func peakResidentMiB() -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    static func printJSON(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func makeModel(_ arguments: [String]) throws {
        let options = try options(arguments, allowed: ["shape", "layers", "type", "seed", "output"])
        guard let shape = options["shape"], let output = options["output"] else {
            throw KnowTuneError.invalidConfiguration("make-model needs --shape and --output")
        }
        let typeName = options["type"] ?? "q4_k"
        guard let encoding = WeightEncoding(rawValue: typeName) else {
            throw KnowTuneError.unsupported(what: "--type \(typeName)", supported: SyntheticModel.matrixEncodings.map(\.rawValue).joined(separator: ", "))
        }
        let layers = try options["layers"].map { text -> Int in
            guard let value = Int(text) else { throw KnowTuneError.invalidConfiguration("--layers \(text) is not a number") }
            return value
        }
        let configuration = try SyntheticModel.configuration(named: shape, layers: layers)
        let started = Date()
        let bytes = try SyntheticModel.write(configuration, name: shape, encoding: encoding, seed: UInt64(options["seed"] ?? "0") ?? 0,
                                             to: output)
        try printJSON(["path": output, "bytes": bytes, "parameters": configuration.parameterCount,
                       "seconds": Date().timeIntervalSince(started), "peak_rss_mib": peakResidentMiB()])
    }

    static func cacheBase(_ arguments: [String]) throws {
        let options = try options(arguments, allowed: ["model", "base_dtype", "cache"])
        guard let model = options["model"], let precision = BasePrecision(rawValue: options["base_dtype"] ?? "") else {
            throw KnowTuneError.invalidConfiguration("cache-base needs --model and --base_dtype (\(BasePrecision.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let cache = options["cache"] ?? NodeSharedModel.cacheDirectory
        let started = Date()
        let loaded = try NodeSharedModel.load(model, precision: precision, communicator: SingleProcessCommunicator(),
                                              logger: RankLogger(rank: 0, worldSize: 1, hostname: "testkit"), cacheDirectory: cache)
        try printJSON(["seconds": Date().timeIntervalSince(started), "peak_rss_mib": peakResidentMiB(),
                       "disk_mib": Double(loaded.weights.storageLayout.byteCount) / 1_048_576, "format": loaded.format])
    }
}
