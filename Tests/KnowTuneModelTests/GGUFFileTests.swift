// Checks GGUFFile on small GGUF files written here (a tiny writer following the GGUF v3 spec: header, typed
// metadata, tensor index, alignment padding, tensor data): values, dimensions, offsets and `general.alignment`
// read back, and every malformed file (not GGUF, empty, truncated anywhere, bad version, unknown value type,
// impossible dimensions) fails with a KnowTuneError naming the file.
import Foundation
import KnowTuneTensor
import XCTest
@testable import KnowTuneModel

/// Writes GGUF files for tests; it does not validate what it is given, so tests can write broken files too.
struct TestGGUFWriter {
    enum Value {
        case uint8(UInt8), int32(Int32), uint32(UInt32), uint64(UInt64), float32(Float), float64(Double), bool(Bool)
        case string(String)
        case stringArray([String])
        case int32Array([Int32])
        /// Any type code followed by arbitrary bytes, for values the reader must reject.
        case raw(typeCode: UInt32, bytes: [UInt8])
    }

    struct Tensor {
        var name: String
        var dimensions: [UInt64]
        var type: GGUFTensorType
        var data: [UInt8]
    }

    /// Where the parts of the written file are.
    struct Layout {
        var bytes: [UInt8]
        /// End of the metadata key/value pairs (start of the tensor index).
        var metadataEnd: Int
        /// End of the tensor index, before the alignment padding.
        var indexEnd: Int
        /// Start of the tensor data section (indexEnd rounded up to the alignment).
        var dataStart: Int
        /// Offset of each tensor relative to `dataStart`, as written in the index.
        var relativeOffsets: [Int]
    }

    var version: UInt32 = 3
    var metadata: [(key: String, value: Value)] = []
    var tensors: [Tensor] = []
    /// The alignment used for padding; tests put a matching `general.alignment` entry in the metadata.
    var alignment = 32

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func append(string: String, to bytes: inout [UInt8]) {
        append(UInt64(string.utf8.count), to: &bytes)
        bytes.append(contentsOf: Array(string.utf8))
    }

    private static func append(_ value: Value, to bytes: inout [UInt8]) {
        switch value {
        case let .uint8(v): append(UInt32(0), to: &bytes); append(v, to: &bytes)
        case let .uint32(v): append(UInt32(4), to: &bytes); append(v, to: &bytes)
        case let .int32(v): append(UInt32(5), to: &bytes); append(v, to: &bytes)
        case let .float32(v): append(UInt32(6), to: &bytes); append(v.bitPattern, to: &bytes)
        case let .bool(v): append(UInt32(7), to: &bytes); append(UInt8(v ? 1 : 0), to: &bytes)
        case let .string(v): append(UInt32(8), to: &bytes); append(string: v, to: &bytes)
        case let .stringArray(v):
            append(UInt32(9), to: &bytes); append(UInt32(8), to: &bytes); append(UInt64(v.count), to: &bytes)
            for element in v { append(string: element, to: &bytes) }
        case let .int32Array(v):
            append(UInt32(9), to: &bytes); append(UInt32(5), to: &bytes); append(UInt64(v.count), to: &bytes)
            for element in v { append(element, to: &bytes) }
        case let .uint64(v): append(UInt32(10), to: &bytes); append(v, to: &bytes)
        case let .float64(v): append(UInt32(12), to: &bytes); append(v.bitPattern, to: &bytes)
        case let .raw(typeCode, raw): append(typeCode, to: &bytes); bytes.append(contentsOf: raw)
        }
    }

    static func roundUp(_ value: Int, to alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }

    func layout() -> Layout {
        var bytes: [UInt8] = Array("GGUF".utf8)
        Self.append(version, to: &bytes)
        Self.append(UInt64(tensors.count), to: &bytes)
        Self.append(UInt64(metadata.count), to: &bytes)
        for (key, value) in metadata {
            Self.append(string: key, to: &bytes)
            Self.append(value, to: &bytes)
        }
        let metadataEnd = bytes.count
        var relativeOffsets: [Int] = []
        var nextOffset = 0
        for tensor in tensors {
            Self.append(string: tensor.name, to: &bytes)
            Self.append(UInt32(tensor.dimensions.count), to: &bytes)
            for dimension in tensor.dimensions { Self.append(dimension, to: &bytes) }
            Self.append(tensor.type.rawValue, to: &bytes)
            Self.append(UInt64(nextOffset), to: &bytes)
            relativeOffsets.append(nextOffset)
            nextOffset = Self.roundUp(nextOffset + tensor.data.count, to: alignment)
        }
        let indexEnd = bytes.count
        let dataStart = Self.roundUp(indexEnd, to: alignment)
        bytes += [UInt8](repeating: 0, count: dataStart - indexEnd)
        for (tensor, offset) in zip(tensors, relativeOffsets) {
            bytes += [UInt8](repeating: 0, count: dataStart + offset - bytes.count)
            bytes += tensor.data
        }
        return Layout(bytes: bytes, metadataEnd: metadataEnd, indexEnd: indexEnd, dataStart: dataStart,
                      relativeOffsets: relativeOffsets)
    }
}

final class GGUFFileTests: XCTestCase {
    /// A fresh directory per test (XCTest makes one instance per test method).
    private let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("knowtune-gguf-tests-\(UUID().uuidString)")

    override func setUpWithError() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ bytes: [UInt8], named name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Opening `path` must throw a KnowTuneError whose description names the path (and every phrase given).
    @discardableResult
    private func assertOpenFails(_ path: String, mentioning phrases: [String] = [],
                                 file: StaticString = #filePath, line: UInt = #line) -> KnowTuneError? {
        DequantizerTests.assertKnowTuneError([path] + phrases, file: file, line: line) {
            _ = try GGUFFile(path: path)
        }
    }

    /// The F32 tensor of the sample file: a 4×2 matrix (ggml order: 4 columns, 2 rows).
    static let matrixValues: [Float] = [1, -2, 0.5, 3.25, -0.125, 100, 7, -8]

    /// Three Q8_0 blocks (96 elements): block b has d = 2^−b and q_j = j − 16, so x = (j − 16)·2^−b.
    static let quantBlocks: [UInt8] = (0..<3).flatMap { b -> [UInt8] in
        let scaleBits = HalfPrecision.halfBits(from: Float(1) / Float(1 << b))
        return [UInt8(scaleBits & 0xFF), UInt8(scaleBits >> 8)] + (0..<32).map { j in UInt8(truncatingIfNeeded: j - 16) }
    }

    static let tokens = ["<s>", "hello", "wörld", "", "\u{2581}a"]

    /// A v3 file with several metadata types, a string array, two tensors and `general.alignment` 64, its
    /// `general.name` padded so that the tensor index ends in the first half of a 64-byte line: then rounding to
    /// 32 (the default) and to 64 give different data starts, so the alignment provably comes from the metadata.
    static func sampleWriter() -> TestGGUFWriter {
        for padding in 0..<64 {
            var writer = TestGGUFWriter()
            writer.alignment = 64
            writer.metadata = [
                ("general.architecture", .string("llama")),
                ("general.alignment", .uint32(64)),
                ("general.name", .string("tiny" + String(repeating: "-", count: padding))),
                ("test.int32", .int32(-7)),
                ("test.uint8", .uint8(200)),
                ("test.float32", .float32(0.5)),
                ("test.float64", .float64(0.1)),
                ("test.bool", .bool(true)),
                ("test.uint64", .uint64(1 << 40)),
                ("tokenizer.ggml.tokens", .stringArray(tokens)),
                ("tokenizer.ggml.token_type", .int32Array([1, 3, 1, 1, 6])),
            ]
            writer.tensors = [
                .init(name: "matrix.weight", dimensions: [4, 2], type: .f32,
                      data: matrixValues.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }),
                .init(name: "quant.weight", dimensions: [32, 3], type: .q8_0, data: quantBlocks),
            ]
            let indexEnd = writer.layout().indexEnd
            if (1...32).contains(indexEnd % 64) { return writer }
        }
        return TestGGUFWriter()  // unreachable: some padding of 0..<64 always works
    }

    // MARK: - Reading a good file

    func testReadsMetadataTensorsAndHonoursAlignment() throws {
        let layout = Self.sampleWriter().layout()
        XCTAssertNotEqual(TestGGUFWriter.roundUp(layout.indexEnd, to: 32), layout.dataStart,
                          "precondition: 32- and 64-byte alignment must disagree for this file")
        let path = try write(layout.bytes, named: "sample.gguf")
        let file = try GGUFFile(path: path)

        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.path, path)
        XCTAssertEqual(file.metadata.count, 11)
        XCTAssertEqual(file.metadata["general.architecture"], .string("llama"))
        XCTAssertEqual(file.metadata["general.alignment"], .uint32(64))
        XCTAssertEqual(file.metadata["general.name"]?.stringValue?.hasPrefix("tiny"), true)
        XCTAssertEqual(file.metadata["test.int32"], .int32(-7))
        XCTAssertEqual(file.metadata["test.int32"]?.intValue, -7)
        XCTAssertEqual(file.metadata["test.uint8"], .uint8(200))
        XCTAssertEqual(file.metadata["test.float32"], .float32(0.5))
        XCTAssertEqual(file.metadata["test.float64"], .float64(0.1))
        XCTAssertEqual(file.metadata["test.bool"]?.boolValue, true)
        XCTAssertEqual(file.metadata["test.uint64"]?.intValue, 1 << 40)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.stringArray, Self.tokens)
        XCTAssertEqual(file.metadata["tokenizer.ggml.token_type"]?.intArray, [1, 3, 1, 1, 6])

        XCTAssertEqual(file.tensors.map(\.name), ["matrix.weight", "quant.weight"])
        let matrix = try file.tensor(named: "matrix.weight")
        XCTAssertEqual(matrix.dimensions, [4, 2])
        XCTAssertEqual(matrix.type, .f32)
        XCTAssertEqual(matrix.elementCount, 8)
        XCTAssertEqual(matrix.byteCount, 32)
        XCTAssertEqual(matrix.fileOffset, layout.dataStart)
        let quant = try file.tensor(named: "quant.weight")
        XCTAssertEqual(quant.dimensions, [32, 3])
        XCTAssertEqual(quant.type, .q8_0)
        XCTAssertEqual(quant.byteCount, 3 * 34)
        XCTAssertEqual(quant.fileOffset, layout.dataStart + 64, "the second tensor starts at the next 64-byte boundary")
        for tensor in file.tensors { XCTAssertEqual(tensor.fileOffset % 64, 0, tensor.name) }

        XCTAssertEqual(Array(try file.data(of: quant)), Self.quantBlocks)
        var matrixOut = [Float](repeating: .nan, count: 8)
        try matrixOut.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            try GGUFDequantizer.dequantise(matrix, in: file, into: base)
        }
        XCTAssertEqual(matrixOut, Self.matrixValues)
        var quantOut = [Float](repeating: .nan, count: 96)
        try quantOut.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            try GGUFDequantizer.dequantise(quant, in: file, into: base)
        }
        XCTAssertEqual(quantOut, (0..<96).map { i in Float(i % 32 - 16) / Float(1 << (i / 32)) })

        DequantizerTests.assertKnowTuneError(["missing.weight", path]) { _ = try file.tensor(named: "missing.weight") }
    }

    func testReadsVersion2AndDefaultAlignment() throws {
        var writer = TestGGUFWriter()
        writer.version = 2
        writer.metadata = [("general.architecture", .string("llama"))]
        writer.tensors = [.init(name: "only", dimensions: [3], type: .f16, data: [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x00])]
        let layout = writer.layout()
        let file = try GGUFFile(path: try write(layout.bytes, named: "v2.gguf"))
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(file.alignment, 32)
        XCTAssertEqual(file.tensors.first?.fileOffset, layout.dataStart)
        XCTAssertEqual(layout.dataStart % 32, 0)
    }

    // MARK: - Malformed files

    func testNonGGUFFileIsRejected() throws {
        let path = try write(Array("name,value\nlearning_rate,0.001\n".utf8), named: "not-gguf.csv")
        let error = assertOpenFails(path, mentioning: ["not a GGUF file"])
        if let error, case .badFormat = error {} else { XCTFail("expected .badFormat, got \(String(describing: error))") }
    }

    func testEmptyFileIsRejected() throws {
        assertOpenFails(try write([], named: "empty.gguf"), mentioning: ["truncated"])
    }

    func testMissingFileIsRejected() {
        let path = directory.appendingPathComponent("absent.gguf").path
        let error = assertOpenFails(path)
        if let error, case .fileUnreadable = error {} else { XCTFail("expected .fileUnreadable, got \(String(describing: error))") }
    }

    func testFileTruncatedInTheMetadataIsRejected() throws {
        let layout = Self.sampleWriter().layout()
        // Inside the header counts, inside a key, and inside the string array near the end of the metadata.
        for cut in [12, 30, layout.metadataEnd - 40, layout.metadataEnd - 1] {
            let path = try write(Array(layout.bytes[0..<cut]), named: "truncated-metadata-\(cut).gguf")
            let error = assertOpenFails(path)
            if let error, case .badFormat = error {} else { XCTFail("cut \(cut): expected .badFormat, got \(String(describing: error))") }
        }
    }

    func testFileTruncatedInTheTensorDataIsRejected() throws {
        let layout = Self.sampleWriter().layout()
        for cut in [layout.dataStart + 10, layout.dataStart + 64 + 50, layout.bytes.count - 1] {
            let path = try write(Array(layout.bytes[0..<cut]), named: "truncated-data-\(cut).gguf")
            let error = assertOpenFails(path, mentioning: ["truncated"])
            if let error, case .badFormat = error {} else { XCTFail("cut \(cut): expected .badFormat, got \(String(describing: error))") }
        }
    }

    func testEveryTruncationIsACleanError() throws {
        // No prefix of a valid file may open, crash, or fail with anything but a KnowTuneError naming the file.
        let bytes = Self.sampleWriter().layout().bytes
        let path = directory.appendingPathComponent("prefix.gguf").path
        for cut in 0..<bytes.count {
            try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: path))
            do {
                _ = try GGUFFile(path: path)
                XCTFail("a \(cut)-byte prefix of a \(bytes.count)-byte file opened")
            } catch let error as KnowTuneError {
                XCTAssertTrue(error.description.contains(path), "cut \(cut): '\(error)' should name the file")
            } catch {
                XCTFail("cut \(cut): expected a KnowTuneError, got \(error)")
            }
        }
        XCTAssertNoThrow(try GGUFFile(path: try write(bytes, named: "whole.gguf")))
    }

    func testUnsupportedVersionIsRejected() throws {
        for version: UInt32 in [1, 4, 0x0300_0000] {
            var writer = Self.sampleWriter()
            writer.version = version
            let path = try write(writer.layout().bytes, named: "version-\(version).gguf")
            let error = assertOpenFails(path, mentioning: ["version \(version)", "v2", "v3"])
            if let error, case .unsupported = error {} else { XCTFail("version \(version): expected .unsupported, got \(String(describing: error))") }
        }
    }

    func testUnknownMetadataValueTypeIsRejected() throws {
        var writer = Self.sampleWriter()
        writer.metadata.insert(("test.mystery", .raw(typeCode: 13, bytes: [1, 2, 3, 4])), at: 3)
        let path = try write(writer.layout().bytes, named: "unknown-value-type.gguf")
        let error = assertOpenFails(path, mentioning: ["unknown metadata value type 13"])
        if let error, case .badFormat = error {} else { XCTFail("expected .badFormat, got \(String(describing: error))") }
    }

    func testUnknownMetadataArrayElementTypeIsRejected() throws {
        var writer = Self.sampleWriter()
        // An array (type 9) of element type 99, two elements.
        writer.metadata.append(("test.bad_array", .raw(typeCode: 9, bytes: [99, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])))
        let path = try write(writer.layout().bytes, named: "unknown-array-type.gguf")
        assertOpenFails(path, mentioning: ["unknown metadata value type 99"])
    }

    func testUnknownTensorTypeIsRejected() throws {
        var bytes = Self.sampleWriter().layout().bytes
        // The F32 tensor's type code (0) sits just before its u64 offset, 12 bytes before the second index entry;
        // find it as the u32 after the "matrix.weight" name and its two u64 dimensions.
        let name = Array("matrix.weight".utf8)
        guard let nameStart = (0...(bytes.count - name.count)).first(where: { Array(bytes[$0..<$0 + name.count]) == name }) else {
            return XCTFail("tensor name not found in the sample file")
        }
        let typeOffset = nameStart + name.count + 4 + 2 * 8
        XCTAssertEqual(bytes[typeOffset..<typeOffset + 4], [0, 0, 0, 0])
        bytes[typeOffset] = 99
        let path = try write(bytes, named: "unknown-tensor-type.gguf")
        assertOpenFails(path, mentioning: ["tensor type code 99", "matrix.weight"])
    }

    func testElementCountOverflowIsRejected() throws {
        // Four dimensions of 2^16 multiply to 2^64, which wraps to 0 in unchecked Int arithmetic: the reader must
        // not accept that as an empty tensor. (Each dimension must fit in the file size, hence the 64 KiB of data.)
        var writer = TestGGUFWriter()
        writer.tensors = [.init(name: "huge.weight", dimensions: [65536, 65536, 65536, 65536], type: .f32,
                                data: [UInt8](repeating: 0, count: 65536))]
        let path = try write(writer.layout().bytes, named: "overflow.gguf")
        assertOpenFails(path, mentioning: ["huge.weight"])
    }
}
