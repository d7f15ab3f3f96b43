// Checks GGUFDequantizer: every supported type against the `gguf` Python package's dequantisation of random
// blocks (Fixtures/dequant_cases.json, written by Fixtures/make_dequant_fixtures.py), hand-derived Q4_0, Q4_1,
// Q8_0 and Q8_K blocks, and the errors for bad sizes and unsupported types.
//
// Comparisons are bitwise (not within an ulp). The Swift code does the same fp32 operations in the same order as
// ggml's `dequantize_row_*` and gguf-py; moreover, products of an f16 scale (11 significant bits) with the small
// integer scales and quants are exact in fp32 (only the last multiply of Q6_K and Q8_K can round), and no formula
// adds more than one further operation, so each element is its exact value rounded once, whatever the evaluation
// order or an FMA. A signed zero must keep its sign.
import Foundation
import KnowTuneTensor
import XCTest
@testable import KnowTuneModel

final class DequantizerTests: XCTestCase {
    /// One fixture case: raw tensor bytes and the fp32 bit patterns ggml gives for them.
    struct FixtureCase {
        let name: String
        let type: GGUFTensorType
        let blockElements: Int
        let blockBytes: Int
        let elementCount: Int
        let raw: [UInt8]
        let expectedBits: [UInt32]
    }

    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dequant_cases.json")

    struct FixtureError: Error, CustomStringConvertible { let description: String }

    static func hexBytes(_ hex: String, _ label: String) throws -> [UInt8] {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { throw FixtureError(description: "\(label): odd-length hex") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                throw FixtureError(description: "\(label): bad hex at \(index)")
            }
            bytes.append(byte)
            index += 2
        }
        return bytes
    }

    static func loadCases() throws -> [FixtureCase] {
        let data = try Data(contentsOf: fixtureURL)
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = document["cases"] as? [[String: Any]]
        else { throw FixtureError(description: "\(fixtureURL.path) has no cases array") }
        return try cases.map { entry in
            let name = entry["name"] as? String ?? "?"
            guard let code = (entry["type_code"] as? NSNumber)?.uint32Value, let type = GGUFTensorType(rawValue: code),
                  let blockElements = (entry["block_elements"] as? NSNumber)?.intValue,
                  let blockBytes = (entry["block_bytes"] as? NSNumber)?.intValue,
                  let elementCount = (entry["element_count"] as? NSNumber)?.intValue,
                  let rawHex = entry["raw_hex"] as? String, let expectedHex = entry["expected_f32_le_hex"] as? String
            else { throw FixtureError(description: "fixture case \(name) is incomplete") }
            XCTAssertEqual(type.name, entry["type"] as? String, "type code and name of \(name)")
            let expectedBytes = try hexBytes(expectedHex, name)
            let expectedBits = stride(from: 0, to: expectedBytes.count, by: 4).map { (i: Int) -> UInt32 in
                (0..<4).reduce(UInt32(0)) { bits, k in bits | UInt32(expectedBytes[i + k]) << UInt32(8 * k) }
            }
            return FixtureCase(name: name, type: type, blockElements: blockElements, blockBytes: blockBytes,
                               elementCount: elementCount, raw: try hexBytes(rawHex, name), expectedBits: expectedBits)
        }
    }

    /// Dequantises `raw` as `type` into a fresh array.
    static func dequantise(_ type: GGUFTensorType, _ raw: [UInt8], elementCount: Int, tensorName: String = "t",
                           path: String = "memory") throws -> [Float] {
        var output = [Float](repeating: .nan, count: elementCount)
        try raw.withUnsafeBytes { bytes in
            try output.withUnsafeMutableBufferPointer { destination in
                guard let base = destination.baseAddress else { return }
                try GGUFDequantizer.dequantise(type: type, bytes: bytes, elementCount: elementCount, into: base,
                                               tensorName: tensorName, path: path)
            }
        }
        return output
    }

    /// Runs `body`, which must throw a KnowTuneError whose description mentions every one of `phrases`.
    @discardableResult
    static func assertKnowTuneError(
        _ phrases: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
    ) -> KnowTuneError? {
        do {
            try body()
            XCTFail("expected a KnowTuneError mentioning \(phrases), got no error", file: file, line: line)
        } catch let error as KnowTuneError {
            for phrase in phrases {
                XCTAssertTrue(error.description.contains(phrase), "'\(error)' should mention '\(phrase)'", file: file, line: line)
            }
            return error
        } catch {
            XCTFail("expected a KnowTuneError, got \(type(of: error)): \(error)", file: file, line: line)
        }
        return nil
    }

    // MARK: - Fixture cases (gguf-py reference)

    func testFixturesCoverEverySupportedTypeWithMatchingGeometry() throws {
        let cases = try Self.loadCases()
        XCTAssertEqual(Set(cases.map(\.type)), Set(GGUFTensorType.dequantisable), "one fixture case per supported type at least")
        for fixture in cases {
            guard let geometry = fixture.type.blockGeometry else {
                XCTFail("\(fixture.name): no block geometry")
                continue
            }
            // ggml's GGML_QUANT_SIZES, as recorded by the script, against our table.
            XCTAssertEqual(geometry.elements, fixture.blockElements, fixture.name)
            XCTAssertEqual(geometry.bytes, fixture.blockBytes, fixture.name)
            XCTAssertEqual(fixture.expectedBits.count, fixture.elementCount, fixture.name)
            if fixture.blockElements > 1 && fixture.name.hasPrefix("random") {
                XCTAssertTrue((2...4).contains(fixture.raw.count / fixture.blockBytes), "\(fixture.name): 2–4 blocks")
            }
        }
    }

    func testEveryFixtureCaseMatchesGGUFBitwise() throws {
        let cases = try Self.loadCases()
        XCTAssertGreaterThanOrEqual(cases.count, GGUFTensorType.dequantisable.count)
        for fixture in cases {
            let values = try Self.dequantise(fixture.type, fixture.raw, elementCount: fixture.elementCount,
                                             tensorName: fixture.name)
            var mismatches = 0
            for (index, value) in values.enumerated() where value.bitPattern != fixture.expectedBits[index] {
                if mismatches < 5 {
                    XCTFail("\(fixture.name) element \(index) (block \(index / fixture.blockElements)): got \(value) "
                            + "(0x\(String(value.bitPattern, radix: 16))), gguf gives \(Float(bitPattern: fixture.expectedBits[index])) "
                            + "(0x\(String(fixture.expectedBits[index], radix: 16)))")
                }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(fixture.name): \(mismatches) of \(values.count) elements differ")
        }
    }

    func testBlocksDequantiseIndependently() throws {
        // Each block must depend only on its own bytes: dequantising block by block gives the same values.
        for fixture in try Self.loadCases() where fixture.blockElements > 1 {
            let blockCount = fixture.raw.count / fixture.blockBytes
            var joined: [Float] = []
            for block in 0..<blockCount {
                let bytes = Array(fixture.raw[block * fixture.blockBytes..<(block + 1) * fixture.blockBytes])
                joined += try Self.dequantise(fixture.type, bytes, elementCount: fixture.blockElements)
            }
            let differing = zip(joined, fixture.expectedBits).filter { value, bits in value.bitPattern != bits }.count
            XCTAssertEqual(joined.count, fixture.expectedBits.count, fixture.name)
            XCTAssertEqual(differing, 0, "\(fixture.name): elements differ when dequantised block by block")
        }
    }

    // MARK: - Hand-derived blocks

    /// Byte j holds nibble j in its low half and nibble 15 − j in its high half: 0xF0, 0xE1, …, 0x0F.
    static let countingNibbles: [UInt8] = (0..<16).map { j in UInt8(j | (15 - j) << 4) }

    func testHandDerivedQ4_0() throws {
        // block_q4_0: f16 d = 0.5 (bits 0x3800, little-endian 00 38), then the 16 counting-nibble bytes.
        // Element j (0…15) is the low nibble of byte j: x = d·(j − 8) = −4, −3.5, …, 3.5.
        // Element 16 + j is the high nibble of byte j, 15 − j: x = 0.5·(15 − j − 8) = 3.5, 3, …, −4.
        let block: [UInt8] = [0x00, 0x38] + Self.countingNibbles
        let expected: [Float] = [-4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5,
                                 3.5, 3, 2.5, 2, 1.5, 1, 0.5, 0, -0.5, -1, -1.5, -2, -2.5, -3, -3.5, -4]
        XCTAssertEqual(try Self.dequantise(.q4_0, block, elementCount: 32), expected)
    }

    func testHandDerivedQ4_1() throws {
        // block_q4_1: f16 d = 0.25 (0x3400), f16 m = −1.5 (0xBE00), the same 16 counting-nibble bytes.
        // Element j: x = d·j + m = 0.25·j − 1.5 = −1.5, −1.25, …, 2.25.
        // Element 16 + j: x = 0.25·(15 − j) − 1.5 = 2.25, 2, …, −1.5.
        let block: [UInt8] = [0x00, 0x34, 0x00, 0xBE] + Self.countingNibbles
        let expected: [Float] = [-1.5, -1.25, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25,
                                 2.25, 2, 1.75, 1.5, 1.25, 1, 0.75, 0.5, 0.25, 0, -0.25, -0.5, -0.75, -1, -1.25, -1.5]
        XCTAssertEqual(try Self.dequantise(.q4_1, block, elementCount: 32), expected)
    }

    func testHandDerivedQ8_0() throws {
        // block_q8_0: f16 d = 0.125 (0x3000), then int8 q_j = 8j − 128 (bytes 0x80, 0x88, …, 0x78).
        // x = d·q_j = (8j − 128)/8 = j − 16: −16, −15, …, 15.
        let block: [UInt8] = [0x00, 0x30] + (0..<32).map { j in UInt8(truncatingIfNeeded: 8 * j - 128) }
        let expected: [Float] = (0..<32).map { j in Float(j - 16) }
        XCTAssertEqual(expected.first, -16)
        XCTAssertEqual(expected.last, 15)
        XCTAssertEqual(try Self.dequantise(.q8_0, block, elementCount: 32), expected)
    }

    func testHandDerivedQ8_K() throws {
        // block_q8_K: f32 d = 0.5 (0x3F000000, little-endian 00 00 00 3F), int8 q_j = j − 128, int16 bsums[16]
        // (ignored by dequantisation; filled with 0x7F here to show that). x = 0.5·(j − 128) = −64, −63.5, …, 63.5.
        // Hand-derived because gguf-py has no Q8_K dequantiser to compare against.
        let block: [UInt8] = [0x00, 0x00, 0x00, 0x3F] + (0..<256).map { j in UInt8(truncatingIfNeeded: j - 128) }
            + [UInt8](repeating: 0x7F, count: 32)
        let expected: [Float] = (0..<256).map { j in Float(j - 128) / 2 }
        XCTAssertEqual(expected[0], -64)
        XCTAssertEqual(expected[255], 63.5)
        XCTAssertEqual(try Self.dequantise(.q8_K, block, elementCount: 256), expected)
    }

    // MARK: - Errors

    func testElementCountNotWholeBlocksNamesTheTensor() throws {
        for type in GGUFTensorType.dequantisable {
            guard let geometry = type.blockGeometry, geometry.elements > 1 else { continue }
            let elementCount = geometry.elements + 3
            let raw = [UInt8](repeating: 0, count: 2 * geometry.bytes)
            let error = Self.assertKnowTuneError(["blk.7.ffn_up.weight", "model.gguf", type.name]) {
                _ = try Self.dequantise(type, raw, elementCount: elementCount, tensorName: "blk.7.ffn_up.weight",
                                        path: "model.gguf")
            }
            if let error, case .badFormat = error {} else { XCTFail("\(type.name): expected .badFormat, got \(String(describing: error))") }
        }
    }

    func testByteCountMismatchNamesTheTensor() throws {
        for type in GGUFTensorType.dequantisable {
            guard let geometry = type.blockGeometry else { continue }
            let elementCount = 2 * geometry.elements
            for byteCount in [2 * geometry.bytes - 1, 2 * geometry.bytes + 1, geometry.bytes, 0] {
                let raw = [UInt8](repeating: 0, count: byteCount)
                let error = Self.assertKnowTuneError(["token_embd.weight", "model.gguf", "\(byteCount) bytes"]) {
                    _ = try Self.dequantise(type, raw, elementCount: elementCount, tensorName: "token_embd.weight",
                                            path: "model.gguf")
                }
                if let error, case .badFormat = error {} else { XCTFail("\(type.name): expected .badFormat, got \(String(describing: error))") }
            }
        }
    }

    func testNegativeElementCountIsAnError() {
        Self.assertKnowTuneError(["t", "memory"]) {
            _ = try [UInt8]().withUnsafeBytes { bytes in
                var sink: Float = 0
                try GGUFDequantizer.dequantise(type: .q4_K, bytes: bytes, elementCount: -256, into: &sink,
                                               tensorName: "t", path: "memory")
            }
        }
    }

    func testEmptyTensorIsFine() throws {
        XCTAssertEqual(try Self.dequantise(.q6_K, [], elementCount: 0), [])
    }

    func testUnsupportedTypeListsTheSupportedOnes() throws {
        let unsupported = GGUFTensorType.allCases.filter { !GGUFTensorType.dequantisable.contains($0) }
        XCTAssertTrue(unsupported.contains(.q8_1) && unsupported.contains(.iq2_XXS) && unsupported.contains(.i32))
        for type in unsupported {
            let geometry = type.blockGeometry ?? (elements: 256, bytes: 66)
            let raw = [UInt8](repeating: 0, count: geometry.bytes)
            let error = Self.assertKnowTuneError(
                [type.name, "attn_q.weight", "model.gguf", "Q4_0", "Q5_1", "Q2_K", "Q6_K", "Q8_K", "BF16"]
            ) {
                _ = try Self.dequantise(type, raw, elementCount: geometry.elements, tensorName: "attn_q.weight",
                                        path: "model.gguf")
            }
            if let error, case .unsupported = error {} else { XCTFail("\(type.name): expected .unsupported, got \(String(describing: error))") }
        }
    }
}
