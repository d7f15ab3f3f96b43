// Implements reading NPY v1 float32 arrays and uncompressed (ZIP_STORED) NPZ archives, for golden fixtures;
// does not support compression or other dtypes.
import Foundation

public enum NumpyArchive {
    public struct ArchiveError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses one `.npy` payload: returns (shape, values) for a little-endian float32 C-order array.
    public static func parseNPY(_ data: Data, name: String = "npy") throws -> (shape: [Int], values: [Float]) {
        let bytes = [UInt8](data)
        guard bytes.count > 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
            throw ArchiveError(description: "\(name): not an NPY payload")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False") else {
            throw ArchiveError(description: "\(name): only little-endian float32 C-order arrays are supported: \(header)")
        }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw ArchiveError(description: "\(name): no shape in header")
        }
        let shape = header[open.upperBound..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        guard bytes.count >= dataStart + 4 * count else { throw ArchiveError(description: "\(name): truncated data") }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[dataStart..<(dataStart + 4 * count)]))
            }
        }
        return (shape, values)
    }

    /// Reads every entry of a stored (uncompressed) `.npz`, keyed by entry name without `.npy`.
    public static func readNPZ(path: String) throws -> [String: (shape: [Int], values: [Float])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = [UInt8](data)
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        var result: [String: (shape: [Int], values: [Float])] = [:]
        var offset = 0
        while offset + 30 <= bytes.count, u32(offset) == 0x0403_4B50 {  // local file header
            let method = u16(offset + 8)
            var compressedSize = u32(offset + 18)
            let nameLength = u16(offset + 26), extraLength = u16(offset + 28)
            let name = String(decoding: bytes[(offset + 30)..<(offset + 30 + nameLength)], as: UTF8.self)
            // ZIP64 entries keep the real size in the extra field (id 0x0001).
            if compressedSize == 0xFFFF_FFFF {
                var e = offset + 30 + nameLength
                let end = e + extraLength
                while e + 4 <= end {
                    let id = u16(e), size = u16(e + 2)
                    if id == 1 { compressedSize = u32(e + 12) | u32(e + 16) << 32 }
                    e += 4 + size
                }
            }
            guard method == 0 else { throw ArchiveError(description: "\(path): entry \(name) is compressed") }
            let start = offset + 30 + nameLength + extraLength
            let payload = data.subdata(in: start..<(start + compressedSize))
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            result[key] = try parseNPY(payload, name: name)
            offset = start + compressedSize
        }
        return result
    }
}
