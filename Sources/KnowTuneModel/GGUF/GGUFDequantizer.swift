// Implements dequantisation of GGUF tensor data to fp32: size validation, the per-type dispatch, the float
// formats (F32, F16, BF16) and ggml's 32-element "legacy" blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), following
// `ggml-quants.c` `dequantize_row_*`; does not decode the 256-element K-quants (GGUFKQuantDequantizer does).
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
    ///
    /// Every formula multiplies and adds in the same order as ggml's C code, in fp32, so results are
    /// bit-identical to `dequantize_row_*` (and to the `gguf` Python package, which mirrors it). The products of
    /// an f16 scale and small integers are exact in fp32 anyway, so each element is its exact value rounded once.
    public static func dequantise(
        type: GGUFTensorType, bytes: UnsafeRawBufferPointer, elementCount: Int,
        into destination: UnsafeMutablePointer<Float>, tensorName: String = "?", path: String = "?"
    ) throws {
        guard GGUFTensorType.dequantisable.contains(type), let geometry = type.blockGeometry else {
            throw KnowTuneError.unsupported(
                what: "GGUF tensor type \(type.name) (tensor \(tensorName) in \(path))",
                supported: GGUFTensorType.dequantisable.map(\.name).joined(separator: ", "))
        }
        guard elementCount >= 0, elementCount % geometry.elements == 0 else {
            throw KnowTuneError.badFormat(
                path: path,
                reason: "tensor \(tensorName): \(elementCount) elements is not a whole number of \(type.name) blocks of \(geometry.elements)")
        }
        let blockCount = elementCount / geometry.elements
        // Overflow-checked: kernels build with -Ounchecked, where a wrapped product would go unnoticed.
        let (expectedBytes, overflow) = blockCount.multipliedReportingOverflow(by: geometry.bytes)
        guard !overflow, bytes.count == expectedBytes else {
            throw KnowTuneError.badFormat(
                path: path,
                reason: "tensor \(tensorName): \(bytes.count) bytes do not hold \(elementCount) \(type.name) elements "
                    + "(\(blockCount) blocks of \(geometry.bytes) bytes)")
        }
        // An empty tensor has nothing to write (and an empty buffer may have no base address).
        guard blockCount > 0, let base = bytes.baseAddress else { return }
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
        case .q4_0: dequantiseQ4_0(base, blockCount: blockCount, into: destination)
        case .q4_1: dequantiseQ4_1(base, blockCount: blockCount, into: destination)
        case .q5_0: dequantiseQ5_0(base, blockCount: blockCount, into: destination)
        case .q5_1: dequantiseQ5_1(base, blockCount: blockCount, into: destination)
        case .q8_0: dequantiseQ8_0(base, blockCount: blockCount, into: destination)
        case .q2_K: GGUFKQuantDequantizer.dequantiseQ2_K(base, blockCount: blockCount, into: destination)
        case .q3_K: GGUFKQuantDequantizer.dequantiseQ3_K(base, blockCount: blockCount, into: destination)
        case .q4_K: GGUFKQuantDequantizer.dequantiseQ4_K(base, blockCount: blockCount, into: destination)
        case .q5_K: GGUFKQuantDequantizer.dequantiseQ5_K(base, blockCount: blockCount, into: destination)
        case .q6_K: GGUFKQuantDequantizer.dequantiseQ6_K(base, blockCount: blockCount, into: destination)
        case .q8_K: GGUFKQuantDequantizer.dequantiseQ8_K(base, blockCount: blockCount, into: destination)
        default:
            break  // unreachable: `dequantisable` is checked above and lists exactly the cases handled here
        }
    }

    /// The f16 at `offset` of a block, widened to fp32 (exact), as ggml's `GGML_FP16_TO_FP32`.
    @inline(__always)
    static func half(_ block: UnsafeRawPointer, at offset: Int) -> Float {
        HalfPrecision.float(fromHalfBits: UInt16(littleEndian: block.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    // The legacy blocks all hold 32 elements. Their 16 bytes of nibbles are split, not interleaved: byte j holds
    // element j in its low nibble and element j + 16 in its high nibble.

    /// `block_q4_0` (18 bytes): f16 d, 16 bytes of nibbles; x = d·(q − 8).
    static func dequantiseQ4_0(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 18
            let scale = half(blockBase, at: 0)
            let out = destination + block * 32
            for j in 0..<16 {
                let byte = blockBase.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[j] = scale * Float(Int(byte & 0x0F) - 8)
                out[j + 16] = scale * Float(Int(byte >> 4) - 8)
            }
        }
    }

    /// `block_q4_1` (20 bytes): f16 d, f16 m, 16 bytes of nibbles; x = d·q + m (product rounded before the sum).
    static func dequantiseQ4_1(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 20
            let scale = half(blockBase, at: 0)
            let minimum = half(blockBase, at: 2)
            let out = destination + block * 32
            for j in 0..<16 {
                let byte = blockBase.load(fromByteOffset: 4 + j, as: UInt8.self)
                out[j] = scale * Float(byte & 0x0F) + minimum
                out[j + 16] = scale * Float(byte >> 4) + minimum
            }
        }
    }

    /// The fifth bit of element `j` of a Q5 block: bit j of the little-endian u32 `qh` (elements 0–15 take
    /// bits 0–15, elements 16–31 bits 16–31), placed at bit 4 of the quant.
    @inline(__always)
    private static func fifthBit(_ highBits: UInt32, element j: Int) -> Int {
        Int((highBits >> UInt32(j)) & 1) << 4
    }

    /// `block_q5_0` (22 bytes): f16 d, u32 qh of fifth bits, 16 bytes of nibbles; x = d·(q − 16).
    static func dequantiseQ5_0(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 22
            let scale = half(blockBase, at: 0)
            let highBits = UInt32(littleEndian: blockBase.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            let out = destination + block * 32
            for j in 0..<16 {
                let byte = blockBase.load(fromByteOffset: 6 + j, as: UInt8.self)
                out[j] = scale * Float((Int(byte & 0x0F) | fifthBit(highBits, element: j)) - 16)
                out[j + 16] = scale * Float((Int(byte >> 4) | fifthBit(highBits, element: j + 16)) - 16)
            }
        }
    }

    /// `block_q5_1` (24 bytes): f16 d, f16 m, u32 qh of fifth bits, 16 bytes of nibbles; x = d·q + m.
    static func dequantiseQ5_1(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 24
            let scale = half(blockBase, at: 0)
            let minimum = half(blockBase, at: 2)
            let highBits = UInt32(littleEndian: blockBase.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let out = destination + block * 32
            for j in 0..<16 {
                let byte = blockBase.load(fromByteOffset: 8 + j, as: UInt8.self)
                out[j] = scale * Float(Int(byte & 0x0F) | fifthBit(highBits, element: j)) + minimum
                out[j + 16] = scale * Float(Int(byte >> 4) | fifthBit(highBits, element: j + 16)) + minimum
            }
        }
    }

    /// `block_q8_0` (34 bytes): f16 d, then 32 int8 quants; x = d·q.
    static func dequantiseQ8_0(_ base: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blockCount {
            let blockBase = base + block * 34
            let scale = half(blockBase, at: 0)
            let out = destination + block * 32
            for j in 0..<32 {
                out[j] = scale * Float(blockBase.load(fromByteOffset: 2 + j, as: Int8.self))
            }
        }
    }
}
