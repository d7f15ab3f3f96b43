// Implements LLaMA-Factory's dataset registry (`dataset_info.json`): names → file, column mapping, ranking flag;
// does not read the data files (DatasetLoader does).
import Foundation
import KnowTuneTensor

public struct DatasetEntry: Equatable {
    public var name: String
    /// Relative to the dataset folder.
    public var fileName: String
    public var promptColumn: String?
    public var queryColumn: String?
    public var responseColumn: String?
    public var systemColumn: String?
    /// Separate pairwise columns (alternative to a `[chosen, rejected]` response list).
    public var chosenColumn: String?
    public var rejectedColumn: String?
    public var ranking: Bool
    public var formatting: String

    public init(name: String, fileName: String, promptColumn: String? = "instruction", queryColumn: String? = "input",
                responseColumn: String? = "output", systemColumn: String? = nil, chosenColumn: String? = nil,
                rejectedColumn: String? = nil, ranking: Bool = false, formatting: String = "alpaca") {
        self.name = name
        self.fileName = fileName
        self.promptColumn = promptColumn
        self.queryColumn = queryColumn
        self.responseColumn = responseColumn
        self.systemColumn = systemColumn
        self.chosenColumn = chosenColumn
        self.rejectedColumn = rejectedColumn
        self.ranking = ranking
        self.formatting = formatting
    }
}

public struct DatasetRegistry {
    public let directory: String
    public let entries: [String: DatasetEntry]
    /// Entries in file order (JSON object order is not kept by Foundation, so they are sorted by name).
    public var names: [String] { entries.keys.sorted() }

    public static func registryPath(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("dataset_info.json")
    }

    public init(directory: String) throws {
        self.directory = directory
        let path = Self.registryPath(in: directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no dataset_info.json in --dataset_dir \(directory)")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw KnowTuneError.badFormat(path: path, reason: "malformed JSON: \(error.localizedDescription)")
        }
        guard let root = object as? [String: Any] else { throw KnowTuneError.badFormat(path: path, reason: "not a JSON object") }
        var entries: [String: DatasetEntry] = [:]
        for (name, value) in root {
            // A wrong type ("ranking": "yes", a column given as a number) is an error, not a default.
            let fields = try JSONFields(value, path: path, place: "entry \(name)")
            guard let fileName = try fields.string("file_name") else {
                throw KnowTuneError.unsupported(what: "dataset \(name) without file_name (hub datasets) in \(path)",
                                                supported: "local files via file_name")
            }
            var result = DatasetEntry(name: name, fileName: fileName, ranking: try fields.bool("ranking") ?? false,
                                      formatting: try fields.string("formatting") ?? "alpaca")
            if let columns = try fields.fields("columns") {
                // LLaMA-Factory: a present `columns` block maps exactly the keys it names.
                result.promptColumn = try columns.string("prompt")
                result.queryColumn = try columns.string("query")
                result.responseColumn = try columns.string("response")
                result.systemColumn = try columns.string("system")
                result.chosenColumn = try columns.string("chosen")
                result.rejectedColumn = try columns.string("rejected")
            }
            guard result.formatting == "alpaca" else {
                throw KnowTuneError.unsupported(what: "formatting \(result.formatting) of dataset \(name)", supported: "alpaca")
            }
            entries[name] = result
        }
        self.entries = entries
    }

    public func entry(named name: String) throws -> DatasetEntry {
        guard let entry = entries[name] else {
            throw KnowTuneError.invalidConfiguration(
                "dataset '\(name)' is not in \(Self.registryPath(in: directory)) (known: \(names.joined(separator: ", ")))")
        }
        return entry
    }

    public func path(of entry: DatasetEntry) -> String {
        (directory as NSString).appendingPathComponent(entry.fileName)
    }
}
