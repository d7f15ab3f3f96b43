// Implements writing GGUF v3 files (ordered metadata of every value type, F32/F16 tensors from floats or any block
// type from its raw bytes, or any type streamed tensor by tensor; alignment padding), for exported models, synthetic
// models and test fixtures; does not quantise.
import Foundation
import KnowTuneTensor

public struct GGUFWriter {
    public struct Tensor {
        public var name: String
        /// ggml order (fastest-varying first): a [out, in] matrix is [in, out].
        public var dimensions: [Int]
        public var type: GGUFTensorType
        public var values: [Float]
        /// The tensor's bytes as stored, for block types (already quantized elsewhere); `values` is then empty.
        public var rawBytes: Data?

        public init(name: String, dimensions: [Int], type: GGUFTensorType = .f32, values: [Float]) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.values = values
        }

        public init(name: String, dimensions: [Int], type: GGUFTensorType, rawBytes: Data) {
            self.init(name: name, dimensions: dimensions, type: type, values: [])
            self.rawBytes = rawBytes
        }

        /// A tensor whose bytes `write(to:streaming:)` asks for when it reaches it.
        public init(name: String, dimensions: [Int], streamedAs type: GGUFTensorType) {
            self.init(name: name, dimensions: dimensions, type: type, values: [])
            isStreamed = true
        }

        var isStreamed = false

        /// The bytes this tensor takes in the file, before padding.
        func byteCount() throws -> Int {
            let elements = dimensions.reduce(1, *)
            if isStreamed {
                guard let geometry = type.blockGeometry, elements % geometry.elements == 0 else {
                    throw KnowTuneError.invalidInput("tensor \(name): \(dimensions) is not whole \(type.name) blocks")
                }
                return elements / geometry.elements * geometry.bytes
            }
            if let rawBytes {
                guard let geometry = type.blockGeometry, elements % geometry.elements == 0,
                      rawBytes.count == elements / geometry.elements * geometry.bytes else {
                    throw KnowTuneError.invalidInput("tensor \(name): \(rawBytes.count) bytes do not hold \(dimensions) elements of \(type.name)")
                }
                return rawBytes.count
            }
            guard type == .f32 || type == .f16 else {
                throw KnowTuneError.unsupported(what: "writing GGUF tensor type \(type.name) from floats", supported: "F32, F16")
            }
            guard elements == values.count else {
                throw KnowTuneError.invalidInput("tensor \(name): dimensions \(dimensions) do not match \(values.count) values")
            }
            return values.count * (type == .f32 ? 4 : 2)
        }
    }

    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    static func typeCode(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    private static func append(_ string: String, to data: inout Data) {
        let bytes = Array(string.utf8)
        append(UInt64(bytes.count), to: &data)
        data.append(contentsOf: bytes)
    }

    private static func appendPayload(_ value: GGUFValue, to data: inout Data) throws {
        switch value {
        case let .uint8(v): append(v, to: &data)
        case let .int8(v): append(v, to: &data)
        case let .uint16(v): append(v, to: &data)
        case let .int16(v): append(v, to: &data)
        case let .uint32(v): append(v, to: &data)
        case let .int32(v): append(v, to: &data)
        case let .float32(v): append(v.bitPattern, to: &data)
        case let .bool(v): append(UInt8(v ? 1 : 0), to: &data)
        case let .string(v): append(v, to: &data)
        case let .uint64(v): append(v, to: &data)
        case let .int64(v): append(v, to: &data)
        case let .float64(v): append(v.bitPattern, to: &data)
        case let .array(elements):
            let elementType = elements.first.map(typeCode) ?? 4
            guard elements.allSatisfy({ typeCode($0) == elementType }) else {
                throw KnowTuneError.invalidInput("GGUF arrays must hold one value type")
            }
            append(elementType, to: &data)
            append(UInt64(elements.count), to: &data)
            for element in elements { try appendPayload(element, to: &data) }
        }
    }

    /// The whole file as bytes.
    public func encoded() throws -> Data {
        var data = try header()
        for tensor in tensors {
            let start = data.count
            if let raw = tensor.rawBytes {
                data.append(raw)
            } else if tensor.type == .f32 {
                tensor.values.withUnsafeBytes { data.append(contentsOf: $0) }
            } else {
                for value in tensor.values { Self.append(HalfPrecision.halfBits(from: value), to: &data) }
            }
            while (data.count - start) % alignment != 0 { data.append(0) }
        }
        return data
    }

    /// Writes the file without holding its tensors: the header, then each streamed tensor's bytes as `body`
    /// (tensor index, write) produces them, in order, through a temporary file renamed into place. A tensor that
    /// gets another byte count than its type and shape need is an error that leaves no file.
    public func write(to path: String, streaming body: (Int, (UnsafeRawPointer, Int) throws -> Void) throws -> Void) throws {
        guard tensors.allSatisfy(\.isStreamed) else { throw KnowTuneError.invalidInput("streamed GGUF files take streamed tensors only") }
        let header = try header()
        try LlamaWeights.publishFile(at: path) { write in
            try header.withUnsafeBytes { try write($0.baseAddress!, $0.count) }
            let padding = [UInt8](repeating: 0, count: alignment)
            for (index, tensor) in tensors.enumerated() {
                let expected = try tensor.byteCount()
                var written = 0
                try withoutActuallyEscaping(write) { write in
                    try body(index) { bytes, count in
                        try write(bytes, count)
                        written += count
                    }
                }
                guard written == expected else {
                    throw KnowTuneError.invalidInput("tensor \(tensor.name): \(written) bytes written, \(expected) needed")
                }
                let pad = (alignment - expected % alignment) % alignment
                if pad > 0 { try write(padding, pad) }
            }
        }
    }

    /// Magic, version, metadata and tensor index, padded to the alignment.
    private func header() throws -> Data {
        var data = Data()
        data.append(contentsOf: Array("GGUF".utf8))
        Self.append(UInt32(3), to: &data)
        Self.append(UInt64(tensors.count), to: &data)
        var entries = metadata
        if alignment != 32, !entries.contains(where: { $0.key == "general.alignment" }) {
            entries.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        Self.append(UInt64(entries.count), to: &data)
        for entry in entries {
            Self.append(entry.key, to: &data)
            Self.append(Self.typeCode(entry.value), to: &data)
            try Self.appendPayload(entry.value, to: &data)
        }
        var offsets: [Int] = []
        var cursor = 0
        for tensor in tensors {
            offsets.append(cursor)
            cursor += (try tensor.byteCount() + alignment - 1) / alignment * alignment
        }
        for (tensor, offset) in zip(tensors, offsets) {
            Self.append(tensor.name, to: &data)
            Self.append(UInt32(tensor.dimensions.count), to: &data)
            for dimension in tensor.dimensions { Self.append(UInt64(dimension), to: &data) }
            Self.append(tensor.type.rawValue, to: &data)
            Self.append(UInt64(offset), to: &data)
        }
        while data.count % alignment != 0 { data.append(0) }
        return data
    }

    public func write(to path: String) throws {
        do { try encoded().write(to: URL(fileURLWithPath: path), options: .atomic) } catch let error as KnowTuneError {
            throw error
        } catch {
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
