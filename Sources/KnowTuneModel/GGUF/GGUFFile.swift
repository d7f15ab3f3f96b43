// Implements a reader for GGUF v2/v3 files (header, metadata of every type, tensor index, alignment) over a
// memory mapping; does not dequantise (GGUFDequantizer) or interpret the model (GGUFModelLoader).
import Foundation
import KnowTuneTensor

/// One entry of a GGUF tensor index.
public struct GGUFTensorInfo {
    public let name: String
    /// ggml order: `dimensions[0]` is the fastest-varying (for a weight matrix, the input features).
    public let dimensions: [Int]
    public let type: GGUFTensorType
    /// Absolute byte offset of the tensor's data in the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A parsed GGUF file: metadata and tensor index, with the tensor bytes left in the mapping.
public final class GGUFFile {
    public let file: MappedFile
    public let version: Int
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let tensorsByName: [String: GGUFTensorInfo]
    public let alignment: Int

    public var path: String { file.path }

    public init(path: String) throws {
        file = try MappedFile(path: path)
        var reader = GGUFByteReader(file: file)
        let magic = try reader.readUInt32()
        guard magic == 0x4655_4747 else {  // "GGUF" little-endian
            throw KnowTuneError.badFormat(path: path, reason: "not a GGUF file (bad magic number)")
        }
        let version = Int(try reader.readUInt32())
        guard version == 2 || version == 3 else {
            throw KnowTuneError.unsupported(what: "GGUF version \(version) in \(path)", supported: "GGUF v2, v3")
        }
        self.version = version
        let tensorCount = try reader.readCount()
        let metadataCount = try reader.readCount()

        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<metadataCount {
            let key = try reader.readString()
            let typeCode = try reader.readUInt32()
            metadata[key] = try reader.readValue(typeCode: typeCode, depth: 0)
        }
        self.metadata = metadata
        let alignment = metadata["general.alignment"]?.intValue ?? 32
        guard alignment > 0, alignment % 8 == 0 else {
            throw KnowTuneError.badFormat(path: path, reason: "general.alignment \(alignment) is not a positive multiple of 8")
        }
        self.alignment = alignment

        var pending: [(String, [Int], GGUFTensorType, Int)] = []
        // A count is only bounded by the file size; each tensor entry takes at least 32 bytes of it.
        pending.reserveCapacity(min(tensorCount, (file.byteCount - reader.offset) / 32))
        for _ in 0..<tensorCount {
            let name = try reader.readString()
            let dimensionCount = Int(try reader.readUInt32())
            guard (1...4).contains(dimensionCount) else {
                throw KnowTuneError.badFormat(path: path, reason: "tensor \(name) has \(dimensionCount) dimensions")
            }
            var dimensions: [Int] = []
            for _ in 0..<dimensionCount { dimensions.append(try reader.readCount()) }
            let typeCode = try reader.readUInt32()
            guard let type = GGUFTensorType(rawValue: typeCode) else {
                throw KnowTuneError.unsupported(
                    what: "tensor type code \(typeCode) of tensor \(name) in \(path)",
                    supported: GGUFTensorType.dequantisable.map(\.name).joined(separator: ", "))
            }
            let offset = try reader.readCount()
            pending.append((name, dimensions, type, offset))
        }
        let dataStart = (reader.offset + alignment - 1) / alignment * alignment

        var tensors: [GGUFTensorInfo] = []
        var byName: [String: GGUFTensorInfo] = [:]
        for (name, dimensions, type, relativeOffset) in pending {
            // Overflow-checked: each dimension is bounded by the file size but their product is not, and in this
            // -Ounchecked module four dimensions of 2^16 would wrap to 0 elements and pass as an empty tensor.
            func tooLarge() -> KnowTuneError {
                .badFormat(path: path, reason: "tensor \(name): dimensions \(dimensions) are too large (corrupt file)")
            }
            var elementCount = 1
            for dimension in dimensions {
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw tooLarge() }
                elementCount = product
            }
            var byteCount = 0
            if let geometry = type.blockGeometry {
                guard elementCount % geometry.elements == 0 else {
                    throw KnowTuneError.badFormat(
                        path: path,
                        reason: "tensor \(name): \(elementCount) elements is not a whole number of \(type.name) blocks of \(geometry.elements)")
                }
                let (blockBytes, overflow) = (elementCount / geometry.elements).multipliedReportingOverflow(by: geometry.bytes)
                guard !overflow else { throw tooLarge() }
                byteCount = blockBytes
            }
            let info = GGUFTensorInfo(
                name: name, dimensions: dimensions, type: type, fileOffset: dataStart + relativeOffset, byteCount: byteCount)
            if byteCount > 0 {
                _ = try file.bytes(at: info.fileOffset, count: byteCount)  // truncation check, before any use
            }
            tensors.append(info)
            byName[name] = info
        }
        self.tensors = tensors
        self.tensorsByName = byName
    }

    /// The raw bytes of a tensor.
    public func data(of tensor: GGUFTensorInfo) throws -> UnsafeRawBufferPointer {
        try file.bytes(at: tensor.fileOffset, count: tensor.byteCount)
    }

    public func tensor(named name: String) throws -> GGUFTensorInfo {
        guard let info = tensorsByName[name] else {
            throw KnowTuneError.badFormat(path: path, reason: "tensor \(name) is missing")
        }
        return info
    }
}

/// Sequential little-endian reads over the mapping, every one bounds-checked.
struct GGUFByteReader {
    let file: MappedFile
    var offset = 0

    init(file: MappedFile) { self.file = file }

    mutating func readBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        let bytes = try file.bytes(at: offset, count: count)
        offset += count
        return bytes
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let bytes = try readBytes(MemoryLayout<T>.size)
        return T(littleEndian: bytes.loadUnaligned(as: T.self))
    }

    mutating func readUInt32() throws -> UInt32 { try read(UInt32.self) }

    /// A u64 count or offset, rejected when it cannot possibly fit in the file.
    mutating func readCount() throws -> Int {
        let value = try read(UInt64.self)
        guard value <= UInt64(file.byteCount) else {
            throw KnowTuneError.badFormat(path: file.path, reason: "value \(value) at byte \(offset - 8) exceeds the file size (corrupt or truncated)")
        }
        return Int(value)
    }

    mutating func readString() throws -> String {
        let length = try readCount()
        let bytes = try readBytes(length)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The fewest bytes a metadata value of `typeCode` takes in the file.
    static func smallestEncoding(of typeCode: UInt32) -> Int {
        switch typeCode {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 9: return 12
        default: return 8
        }
    }

    mutating func readValue(typeCode: UInt32, depth: Int) throws -> GGUFValue {
        switch typeCode {
        case 0: return .uint8(try read(UInt8.self))
        case 1: return .int8(try read(Int8.self))
        case 2: return .uint16(try read(UInt16.self))
        case 3: return .int16(try read(Int16.self))
        case 4: return .uint32(try read(UInt32.self))
        case 5: return .int32(try read(Int32.self))
        case 6: return .float32(Float(bitPattern: try read(UInt32.self)))
        case 7: return .bool(try read(UInt8.self) != 0)
        case 8: return .string(try readString())
        case 9:
            guard depth < 4 else {
                throw KnowTuneError.badFormat(path: file.path, reason: "metadata arrays nested too deeply")
            }
            let elementType = try readUInt32()
            let count = try readCount()
            var elements: [GGUFValue] = []
            // Reserve only what the rest of the file can hold, so that a crafted count cannot size an allocation.
            elements.reserveCapacity(min(count, (file.byteCount - offset) / Self.smallestEncoding(of: elementType)))
            for _ in 0..<count { elements.append(try readValue(typeCode: elementType, depth: depth + 1)) }
            return .array(elements)
        case 10: return .uint64(try read(UInt64.self))
        case 11: return .int64(try read(Int64.self))
        case 12: return .float64(Double(bitPattern: try read(UInt64.self)))
        default:
            throw KnowTuneError.badFormat(path: file.path, reason: "unknown metadata value type \(typeCode) at byte \(offset - 4)")
        }
    }
}
