// Implements reading the safetensors format (8-byte header length, JSON header, raw little-endian data) over a
// memory mapping, converting F32/F16/BF16 to fp32; does not know model names.
import Foundation
import KnowTuneTensor

public struct SafeTensorInfo {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    /// Absolute byte range in the file.
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

public final class SafeTensorsFile {
    public let file: MappedFile
    public let tensors: [String: SafeTensorInfo]
    public let metadata: [String: String]
    public var path: String { file.path }

    static let elementSizes = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]

    public init(path: String) throws {
        file = try MappedFile(path: path)
        let lengthBytes = try file.bytes(at: 0, count: 8)
        let headerLength = Int(UInt64(littleEndian: lengthBytes.loadUnaligned(as: UInt64.self)))
        guard headerLength > 1, headerLength <= file.byteCount - 8 else {
            throw KnowTuneError.badFormat(path: path, reason: "not a safetensors file (header length \(headerLength) does not fit in \(file.byteCount) bytes)")
        }
        let headerBytes = try file.bytes(at: 8, count: headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
            throw KnowTuneError.badFormat(path: path, reason: "safetensors header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        var tensors: [String: SafeTensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw KnowTuneError.badFormat(path: path, reason: "tensor \(name): header entry lacks dtype, shape or data_offsets")
            }
            guard let size = Self.elementSizes[dtype] else {
                throw KnowTuneError.unsupported(what: "safetensors dtype \(dtype) (tensor \(name) in \(path))", supported: "F32, F16, BF16")
            }
            let byteCount = offsets[1] - offsets[0]
            guard offsets[0] >= 0, byteCount == shape.reduce(1, *) * size else {
                throw KnowTuneError.badFormat(path: path, reason: "tensor \(name): data_offsets \(offsets) do not match shape \(shape) of \(dtype)")
            }
            _ = try file.bytes(at: dataStart + offsets[0], count: byteCount)  // truncation check
            tensors[name] = SafeTensorInfo(name: name, dtype: dtype, shape: shape, fileOffset: dataStart + offsets[0], byteCount: byteCount)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Converts a tensor to fp32 into `destination` (which must hold `elementCount` floats).
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>, expectedShape: [Int]? = nil) throws {
        guard let info = tensors[name] else {
            throw KnowTuneError.badFormat(path: path, reason: "tensor \(name) is missing")
        }
        if let expectedShape, expectedShape != info.shape {
            throw KnowTuneError.badFormat(path: path, reason: "tensor \(name) has shape \(info.shape), expected \(expectedShape)")
        }
        let bytes = try file.bytes(at: info.fileOffset, count: info.byteCount)
        guard let base = bytes.baseAddress else { return }
        let n = info.elementCount
        switch info.dtype {
        case "F32":
            UnsafeMutableRawPointer(destination).copyMemory(from: base, byteCount: n * 4)
        case "F16":
            for i in 0..<n { destination[i] = HalfPrecision.float(fromHalfBits: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case "BF16":
            for i in 0..<n { destination[i] = HalfPrecision.float(fromBFloat16Bits: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        default:
            throw KnowTuneError.unsupported(what: "safetensors dtype \(info.dtype) for tensor \(name) in \(path)", supported: "F32, F16, BF16")
        }
    }

    public func readArray(_ name: String, expectedShape: [Int]? = nil) throws -> [Float] {
        guard let info = tensors[name] else {
            throw KnowTuneError.badFormat(path: path, reason: "tensor \(name) is missing")
        }
        var result = [Float](repeating: 0, count: info.elementCount)
        try result.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            try read(name, into: base, expectedShape: expectedShape)
        }
        return result
    }
}

/// Writes fp32 tensors as a safetensors file (tensors sorted by name, as the reference writer does).
public enum SafeTensorsWriter {
    public static func write(_ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String] = ["format": "pt"], to path: String) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in sorted {
            precondition(tensor.shape.reduce(1, *) == tensor.values.count, "shape does not match values for \(tensor.name)")
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format).
        while (8 + headerData.count) % 8 != 0 { headerData.append(0x20) }
        var output = Data()
        output.reserveCapacity(8 + headerData.count + offset)
        withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(headerData)
        for tensor in sorted { output.append(UnsafeRawBufferPointer(tensor.values).bindMemory(to: UInt8.self)) }
        do {
            try output.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
