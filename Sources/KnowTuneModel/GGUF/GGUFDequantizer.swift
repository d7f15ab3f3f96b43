// Implements dequantisation of GGUF tensor data (F32, F16, BF16, Q8_0, Q4_0, Q4_1) to fp32, following ggml's
// block layouts (`ggml-quants.c` `dequantize_row_*`); does not handle the K-quants yet.
import KnowTuneTensor

public enum GGUFDequantizer {
    /// Writes `tensor.elementCount` floats to `destination`, in ggml element order.
    public static func dequantise(
        _ tensor: GGUFTensorInfo, in file: GGUFFile, into destination: UnsafeMutablePointer<Float>
    ) throws {
        let source = try file.data(of: tensor)
        try dequantise(type: tensor.type, bytes: source, elementCount: tensor.elementCount,
                       into: destination, tensorName: tensor.name, path: file.path)
    }

    /// Dequantises raw blocks; `tensorName`/`path` only label errors.
    public static func dequantise(
        type: GGUFTensorType, bytes: UnsafeRawBufferPointer, elementCount: Int,
        into destination: UnsafeMutablePointer<Float>, tensorName: String = "?", path: String = "?"
    ) throws {
        guard GGUFTensorType.dequantisable.contains(type), let geometry = type.blockGeometry else {
            throw KnowTuneError.unsupported(
                what: "GGUF tensor type \(type.name) (tensor \(tensorName) in \(path))",
                supported: GGUFTensorType.dequantisable.map(\.name).joined(separator: ", "))
        }
        guard elementCount % geometry.elements == 0,
              bytes.count == elementCount / geometry.elements * geometry.bytes,
              let base = bytes.baseAddress
        else {
            throw KnowTuneError.badFormat(
                path: path, reason: "tensor \(tensorName): \(bytes.count) bytes do not hold \(elementCount) \(type.name) elements")
        }
        let blockCount = elementCount / geometry.elements
        switch type {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: base, byteCount: elementCount * 4)
        case .f16:
            for i in 0..<elementCount {
                destination[i] = HalfPrecision.float(fromHalfBits: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .bf16:
            for i in 0..<elementCount {
                destination[i] = HalfPrecision.float(fromBFloat16Bits: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .q8_0:
            // Block: f16 scale d, then 32 int8 quants; x = d·q.
            for block in 0..<blockCount {
                let blockBase = base + block * 34
                let scale = HalfPrecision.float(fromHalfBits: blockBase.loadUnaligned(as: UInt16.self))
                let out = destination + block * 32
                for j in 0..<32 {
                    out[j] = scale * Float(blockBase.load(fromByteOffset: 2 + j, as: Int8.self))
                }
            }
        case .q4_0:
            // Block: f16 scale d, 16 bytes; element j is the low nibble of byte j, element j+16 the high nibble;
            // x = d·(q − 8).
            for block in 0..<blockCount {
                let blockBase = base + block * 18
                let scale = HalfPrecision.float(fromHalfBits: blockBase.loadUnaligned(as: UInt16.self))
                let out = destination + block * 32
                for j in 0..<16 {
                    let byte = blockBase.load(fromByteOffset: 2 + j, as: UInt8.self)
                    out[j] = scale * Float(Int(byte & 0x0F) - 8)
                    out[j + 16] = scale * Float(Int(byte >> 4) - 8)
                }
            }
        case .q4_1:
            // Block: f16 scale d, f16 minimum m, 16 bytes of nibbles laid out as in Q4_0; x = d·q + m.
            for block in 0..<blockCount {
                let blockBase = base + block * 20
                let scale = HalfPrecision.float(fromHalfBits: blockBase.loadUnaligned(as: UInt16.self))
                let minimum = HalfPrecision.float(fromHalfBits: blockBase.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                let out = destination + block * 32
                for j in 0..<16 {
                    let byte = blockBase.load(fromByteOffset: 4 + j, as: UInt8.self)
                    out[j] = scale * Float(byte & 0x0F) + minimum
                    out[j + 16] = scale * Float(byte >> 4) + minimum
                }
            }
        default:
            break  // unreachable: guarded above
        }
    }
}
