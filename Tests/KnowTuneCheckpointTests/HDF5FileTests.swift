// Implements the tests of the HDF5 wrapper: every element type and shape, nested names, attributes on the root
// and on datasets (including a string larger than 64 KiB), listings, and errors that name the file; does not
// test checksums (CheckpointStoreTests does).
import KnowTuneCheckpoint
import KnowTuneTensor
import XCTest

final class HDF5FileTests: XCTestCase {
    var folder: TestFolder!

    override func setUpWithError() throws { folder = try TestFolder() }
    override func tearDown() { folder.remove() }

    func testDatasetsRoundTrip() throws {
        let path = folder.appending("values.h5")
        let file = try HDF5File.create(path)
        try file.write([Float](arrayLiteral: 1, -2.5, 3, 4, 5, 6), shape: [2, 3], to: "lora/q_proj.lora_A.weight")
        try file.write([0.1, 0.2] as [Double], shape: [2], to: "metrics")
        try file.write([Int64.min, 0, Int64.max], shape: [3], to: "rng/rank_0")
        try file.write([UInt64.max], shape: [], to: "scalar")
        try file.write([Float](), shape: [0, 4], to: "empty")
        try file.close()

        let reader = try HDF5File.open(path)
        XCTAssertEqual(try reader.datasetNames(), ["empty", "lora/q_proj.lora_A.weight", "metrics", "rng/rank_0", "scalar"])
        let tensor = try reader.read("lora/q_proj.lora_A.weight", as: Float.self)
        XCTAssertEqual(tensor.shape, [2, 3])
        XCTAssertEqual(tensor.values, [1, -2.5, 3, 4, 5, 6])
        XCTAssertEqual(try reader.read("metrics", as: Double.self).values, [0.1, 0.2])
        XCTAssertEqual(try reader.read("rng/rank_0", as: Int64.self).values, [Int64.min, 0, Int64.max])
        let scalar = try reader.read("scalar", as: UInt64.self)
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.values, [UInt64.max])
        XCTAssertEqual(try reader.read("empty", as: Float.self).shape, [0, 4])
        XCTAssertEqual(try reader.elementType(of: "metrics"), .float64)
        XCTAssertEqual(try reader.shape(of: "lora/q_proj.lora_A.weight"), [2, 3])
        XCTAssertTrue(try reader.contains("rng"))
        XCTAssertFalse(try reader.contains("rng/rank_1"))
        XCTAssertFalse(try reader.contains("nothing/here"))
        try reader.close()
    }

    func testAttributesOnRootAndDatasets() throws {
        let path = folder.appending("attributes.h5")
        let large = String(repeating: "{\"loss\": 1.25}, ", count: 20_000)  // ~320 KB: beyond compact storage.
        let file = try HDF5File.create(path)
        try file.write([Float](repeating: 0, count: 4), shape: [4], to: "weights")
        try file.setAttribute("config", string: "{\"lora_rank\": 8, \"name\": \"ünïcødé\"}")
        try file.setAttribute("empty", string: "")
        try file.setAttribute("history", string: large)
        try file.setAttribute("world_size", Int64(4))
        try file.setAttribute("learning_rate", 2e-4)
        try file.setAttribute("checksum", UInt64(0xdead_beef_cafe_f00d), on: "weights")
        try file.setAttribute("note", string: "first")
        try file.setAttribute("note", string: "replaced")
        try file.close()

        let reader = try HDF5File.open(path)
        XCTAssertEqual(try reader.attributeNames(), ["config", "empty", "history", "learning_rate", "note", "world_size"])
        XCTAssertEqual(try reader.stringAttribute("config"), "{\"lora_rank\": 8, \"name\": \"ünïcødé\"}")
        XCTAssertEqual(try reader.stringAttribute("empty"), "")
        XCTAssertEqual(try reader.stringAttribute("history"), large)
        XCTAssertEqual(try reader.stringAttribute("note"), "replaced")
        XCTAssertEqual(try reader.attribute("world_size", as: Int64.self), 4)
        XCTAssertEqual(try reader.attribute("learning_rate", as: Double.self), 2e-4)
        XCTAssertEqual(try reader.attribute("checksum", on: "weights", as: UInt64.self), 0xdead_beef_cafe_f00d)
        XCTAssertEqual(try reader.attributeNames(on: "weights"), ["checksum"])
        XCTAssertTrue(try reader.hasAttribute("checksum", on: "weights"))
        XCTAssertFalse(try reader.hasAttribute("checksum"))
    }

    func testErrorsNameTheFile() throws {
        let missing = folder.appending("missing.h5")
        XCTAssertThrowsError(try HDF5File.open(missing)) { error in
            XCTAssertEqual(error as? KnowTuneError, .fileUnreadable(path: missing, reason: "no such file"))
        }
        let notHDF5 = folder.appending("text.h5")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notHDF5))
        XCTAssertThrowsError(try HDF5File.open(notHDF5)) { error in
            guard case let .badFormat(path, reason)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, notHDF5)
            XCTAssertTrue(reason.hasPrefix("not a readable HDF5 file (truncated or corrupt?): "), reason)
        }

        let path = folder.appending("typed.h5")
        let file = try HDF5File.create(path)
        try file.write([1, 2] as [Double], shape: [2], to: "doubles")
        XCTAssertThrowsError(try file.write([1, 2, 3] as [Float], shape: [2], to: "bad")) { error in
            XCTAssertEqual(error as? KnowTuneError, .invalidInput("dataset 'bad' for \(path): shape [2] does not hold 3 values"))
        }
        XCTAssertThrowsError(try file.write([1] as [Float], shape: [1], to: "a//b"))
        XCTAssertThrowsError(try file.read("doubles", as: Float.self)) { error in
            XCTAssertEqual(error as? KnowTuneError, .badFormat(path: path, reason: "dataset 'doubles' holds float64, expected float32"))
        }
        XCTAssertThrowsError(try file.read("absent", as: Float.self)) { error in
            XCTAssertEqual(error as? KnowTuneError, .badFormat(path: path, reason: "no dataset 'absent'"))
        }
        XCTAssertThrowsError(try file.stringAttribute("nope")) { error in
            XCTAssertEqual(error as? KnowTuneError, .badFormat(path: path, reason: "the file has no attribute 'nope'"))
        }
        XCTAssertThrowsError(try file.write([1] as [Float], shape: [1], to: "doubles")) { error in
            guard case let .fileUnreadable(errorPath, reason)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.hasPrefix("cannot write: cannot create dataset 'doubles'"), reason)
        }
        try file.close()
        let readOnly = try HDF5File.open(path)
        XCTAssertThrowsError(try readOnly.setAttribute("x", string: "y")) { error in
            XCTAssertEqual(error as? KnowTuneError, .invalidInput("\(path) is open read-only"))
        }
    }
}
