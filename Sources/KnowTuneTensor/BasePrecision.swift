// Implements the element types the frozen base weights can be kept in (`--base_dtype`) and the bulk conversions
// between them and fp32; does not decide which products use them (FrozenLinear).
import CKnowTuneBF16

/// How the frozen base weights are stored in memory.
public enum BasePrecision: String, CaseIterable, Codable, Sendable {
    /// fp32 weights, sgemm products: the reference.
    case fp32
    /// bfloat16 weights; products round their activations to bf16 and accumulate in fp32 (PyTorch CPU autocast).
    case bf16
    /// IEEE half weights, converted exactly to fp32 tile by tile for sgemm: 16-bit storage, fp32 arithmetic.
    case f16

    public var bytesPerElement: Int { self == .fp32 ? 4 : 2 }

    /// The message for a `text` given to `option` that names no precision.
    public static func unsupported(_ text: String, option: String) -> String {
        "\(option) \(text) is not supported (\(allCases.map(\.rawValue).joined(separator: ", ")))"
    }

    /// Stores `count` floats in this precision (rounding to nearest even).
    public func encode(_ values: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        switch self {
        case .fp32: destination.copyMemory(from: values, byteCount: count * 4)
        case .bf16: kt_bf16_from_floats(destination.assumingMemoryBound(to: UInt16.self), values, count)
        case .f16: kt_f16_from_floats(destination.assumingMemoryBound(to: UInt16.self), values, count)
        }
    }

    /// The floats that `count` stored elements represent (exact).
    public func decode(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .fp32: UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .bf16: kt_bf16_to_floats(destination, source.assumingMemoryBound(to: UInt16.self), count)
        case .f16: kt_f16_to_floats(destination, source.assumingMemoryBound(to: UInt16.self), count)
        }
    }

    /// The value `value` becomes when stored in this precision.
    public func rounded(_ value: Float) -> Float {
        switch self {
        case .fp32: return value
        case .bf16: return HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: value))
        case .f16: return HalfPrecision.float(fromHalfBits: HalfPrecision.halfBits(from: value))
        }
    }
}
