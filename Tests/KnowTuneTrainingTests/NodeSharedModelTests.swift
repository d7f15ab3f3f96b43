// Checks the node-shared weight cache on one rank: an entry per model version with its sidecar, 16-bit entries
// beside the fp32 one, entries of replaced model files removed when the new version is cached, other models' kept.
import Foundation
import KnowTuneDistributed
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneTraining

final class NodeSharedModelTests: XCTestCase {
    func testReplacedModelFilesLeaveNoStaleEntries() throws {
        let folder = TrainingFixtures.outputDirectory("node-shared-cache")
        let cache = folder + "/weights"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let model = folder + "/model.gguf", other = folder + "/other.gguf"
        try FileManager.default.copyItem(atPath: try TrainingFixtures.tinyModel(), toPath: model)
        try FileManager.default.copyItem(atPath: model, toPath: other)
        let communicator = SingleProcessCommunicator()
        let logger = RankLogger(rank: 0, worldSize: 1, hostname: "test")
        func entries() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: cache).sorted() }
        func stems(_ names: [String]) -> Set<String> { Set(names.map { ($0 as NSString).deletingPathExtension }) }

        _ = try NodeSharedModel.load(model, communicator: communicator, logger: logger, cacheDirectory: cache)
        _ = try NodeSharedModel.load(model, precision: .bf16, communicator: communicator, logger: logger, cacheDirectory: cache)
        let first = try entries()
        XCTAssertEqual(first.map { ($0 as NSString).pathExtension }, ["bf16", "f32", "source"])
        XCTAssertEqual(try String(contentsOfFile: cache + "/" + first[2], encoding: .utf8),
                       (model as NSString).resolvingSymlinksInPath + "\n")

        // The same path with new contents (here: a new modification time) is a new entry, and the old one goes.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: model)
        let loaded = try NodeSharedModel.load(model, communicator: communicator, logger: logger, cacheDirectory: cache)
        let second = try entries()
        XCTAssertEqual(second.map { ($0 as NSString).pathExtension }, ["f32", "source"])
        XCTAssertTrue(stems(second).isDisjoint(with: stems(first)), "\(first) → \(second)")
        XCTAssertTrue(loaded.format.contains("node-shared fp32"))

        // Another model's entries are not touched.
        _ = try NodeSharedModel.load(other, communicator: communicator, logger: logger, cacheDirectory: cache)
        let third = try entries()
        XCTAssertEqual(third.count, 4)
        XCTAssertTrue(stems(second).isSubset(of: stems(third)))
    }
}
