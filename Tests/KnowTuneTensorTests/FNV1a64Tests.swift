// FNV-1a 64 against the published test vectors, and the byte-buffer path against the byte-at-a-time one.
import KnowTuneTensor
import XCTest

final class FNV1a64Tests: XCTestCase {
    func testPublishedVectors() {
        XCTAssertEqual(FNV1a64.hash("".utf8), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(FNV1a64.hash("a".utf8), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(FNV1a64.hash("foobar".utf8), 0x8594_4171_f739_67e8)
    }

    func testBufferAndBytesAgree() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var hasher = FNV1a64()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        XCTAssertEqual(hasher.value, FNV1a64.hash(bytes))
        XCTAssertNotEqual(FNV1a64.hash(bytes.dropLast()), FNV1a64.hash(bytes))
    }
}
