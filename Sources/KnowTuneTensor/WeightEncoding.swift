// Implements how one frozen tensor is stored in memory: fp32, a 16-bit float, or one of ggml's quantized block
// formats (CKnowTuneQuant), with the bulk conversions to and from fp32; does not choose an encoding for a tensor
// (BasePrecision does) or multiply (FrozenLinear).
import CKnowTuneBF16
import CKnowTuneQuant

public enum WeightEncoding: String, CaseIterable, Codable, Sendable {
    case fp32, bf16, f16
    case q8_0, q4_0, q4_1, q5_0
    case q4_K = "q4_k"

    /// The ggml type code of a quantized encoding (CKnowTuneQuant's `kt_quant_type`); nil for the float formats.
    public var quantType: Int32? {
        switch self {
        case .fp32, .bf16, .f16: return nil
        case .q8_0: return Int32(KT_QUANT_Q8_0.rawValue)
        case .q4_0: return Int32(KT_QUANT_Q4_0.rawValue)
        case .q4_1: return Int32(KT_QUANT_Q4_1.rawValue)
        case .q5_0: return Int32(KT_QUANT_Q5_0.rawValue)
        case .q4_K: return Int32(KT_QUANT_Q4_K.rawValue)
        }
    }

    /// The encoding of a GGUF tensor type code, when KnowTune computes with it.
    public init?(ggmlTypeCode code: UInt32) {
        switch code {
        case 0: self = .fp32
        case 1: self = .f16
        case 30: self = .bf16
        default:
            guard let match = WeightEncoding.allCases.first(where: { $0.quantType.map(UInt32.init) == code }) else { return nil }
            self = match
        }
    }

    public var isQuantized: Bool { quantType != nil }

    /// Elements per block: 1 for the float formats.
    public var blockElements: Int { quantType.map { Int(kt_quant_block_elements($0)) } ?? 1 }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .fp32: return 4
        case .bf16, .f16: return 2
        default: return Int(kt_quant_block_bytes(quantType!))
        }
    }

    /// Whether a row of `count` elements is whole blocks.
    public func fits(rowLength count: Int) -> Bool { count % blockElements == 0 }

    /// Bytes of `count` elements (whole blocks).
    public func byteCount(elements count: Int) -> Int {
        precondition(count % blockElements == 0, "\(count) elements are not whole \(rawValue) blocks of \(blockElements)")
        return count / blockElements * blockBytes
    }

    /// Stores `count` floats (whole blocks) in this encoding: nearest even for the float formats, ggml's rounding for
    /// the blocks.
    public func encode(_ values: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        switch self {
        case .fp32: destination.copyMemory(from: values, byteCount: count * 4)
        case .bf16: kt_bf16_from_floats(destination.assumingMemoryBound(to: UInt16.self), values, count)
        case .f16: kt_f16_from_floats(destination.assumingMemoryBound(to: UInt16.self), values, count)
        default:
            precondition(count % blockElements == 0, "\(count) elements are not whole \(rawValue) blocks")
            kt_quant_quantize(quantType!, destination, values, count)
        }
    }

    /// The floats that `count` stored elements (whole blocks) represent.
    public func decode(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .fp32: UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .bf16: kt_bf16_to_floats(destination, source.assumingMemoryBound(to: UInt16.self), count)
        case .f16: kt_f16_to_floats(destination, source.assumingMemoryBound(to: UInt16.self), count)
        default:
            precondition(count % blockElements == 0, "\(count) elements are not whole \(rawValue) blocks")
            kt_quant_dequantize(quantType!, destination, source, count)
        }
    }

    /// The value `value` becomes when stored in a float format (nearest even).
    public func rounded(_ value: Float) -> Float {
        switch self {
        case .fp32: return value
        case .bf16: return HalfPrecision.float(fromBFloat16Bits: HalfPrecision.bfloat16Bits(from: value))
        case .f16: return HalfPrecision.float(fromHalfBits: HalfPrecision.halfBits(from: value))
        default: preconditionFailure("\(rawValue) rounds blocks, not single values")
        }
    }
}
