// Implements HF Trainer's results files in an output folder: `<split>_results.json` with a split's metrics and
// `all_results.json` with every split's metrics merged (as `save_metrics` writes them: sorted keys, indented);
// does not compute metrics.
import Foundation

public enum RunResults {
    /// Writes `<split>_results.json` and merges `metrics` into `all_results.json` in `folder`.
    public static func write(_ metrics: [String: Double], split: String, in folder: String) throws {
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        try writeJSON(metrics, to: path("\(split)_results.json"))
        let allPath = path("all_results.json")
        var all = FileManager.default.contents(atPath: allPath).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        for (key, value) in metrics { all[key] = value }
        try writeJSON(all, to: allPath)
    }

    /// Pretty-printed JSON with sorted keys and a final newline, replaced atomically.
    public static func writeJSON(_ object: Any, to file: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: file), options: .atomic)
    }
}
