// Implements the small SFT dataset the training and launch tests share: the first 48 dolly_train records with their
// outputs cut to 160 characters, as `tiny_train.json` with its dataset_info.json entry; does not register it.
import Foundation

public enum TinyDataset {
    /// The dataset_info.json entry for the file `write(in:)` makes.
    public static let registryEntry: [String: Any] = [
        "file_name": "tiny_train.json", "columns": ["prompt": "instruction", "query": "input", "response": "output"],
    ]

    /// Writes `folder/tiny_train.json`.
    public static func write(in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let dolly = TestPaths.repositoryRoot.appendingPathComponent("data/dolly/dolly_train.json")
        let records = try JSONSerialization.jsonObject(with: Data(contentsOf: dolly)) as? [[String: Any]] ?? []
        let small = records.prefix(48).map { record -> [String: Any] in
            var copy = record
            copy["output"] = String((record["output"] as? String ?? "").prefix(160))
            return copy
        }
        try JSONSerialization.data(withJSONObject: Array(small)).write(to: URL(fileURLWithPath: folder + "/tiny_train.json"))
    }
}
