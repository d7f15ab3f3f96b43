// Implements the weight files of an HF model folder opened together (`model.safetensors`, or the shards of its
// index) with the file holding each tensor; does not parse the files (SafeTensorsFile) or choose which tensors to read.
import Foundation
import KnowTuneTensor

public struct SafeTensorsShards {
    public let folder: String
    public let files: [SafeTensorsFile]
    private let owner: [String: SafeTensorsFile]

    public init(folder: String) throws {
        self.folder = folder
        files = try ModelLoader.safetensorsShards(folder).map { try SafeTensorsFile(path: $0) }
        var owner: [String: SafeTensorsFile] = [:]
        for file in files { for name in file.tensors.keys { owner[name] = file } }
        self.owner = owner
    }

    /// Reads tensor `name` (of `shape`) as fp32 from whichever file holds it, or names the files that do not.
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>, expectedShape shape: [Int]) throws {
        guard let file = owner[name] else {
            throw KnowTuneError.badFormat(path: folder, reason: "tensor \(name) is in none of \(files.map { ($0.path as NSString).lastPathComponent })")
        }
        try file.read(name, into: destination, expectedShape: shape)
    }
}
