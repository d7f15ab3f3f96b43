// Implements the precisions the frozen base weights can be kept in (`--base_dtype`) and the encoding each tensor gets
// in one of them (llama.cpp's fallbacks for rows that are not whole blocks); does not convert (WeightEncoding) or
// decide which products use them (FrozenLinear).

/// How the frozen base weights are stored in memory.
public enum BasePrecision: String, CaseIterable, Codable, Sendable {
    /// fp32 weights, sgemm products: the reference.
    case fp32
    /// bfloat16 weights; products round their activations to bf16 and accumulate in fp32 (PyTorch CPU autocast).
    case bf16
    /// IEEE half weights, converted exactly to fp32 tile by tile for sgemm: 16-bit storage, fp32 arithmetic.
    case f16
    /// ggml's 8-bit blocks (32 elements, one f16 scale): 8.5 bits per weight.
    case q8_0
    /// ggml's 4-bit blocks (32 elements, one f16 scale): 4.5 bits per weight. A GGUF tensor in Q4_1 is kept as it is.
    case q4_0
    /// ggml's 4-bit super-blocks (256 elements, 6-bit sub-block scales and mins): 4.5 bits per weight. Rows that are
    /// not whole super-blocks fall back to Q5_0, as llama.cpp does, unless the file already holds them in Q4_0 or
    /// Q4_1 (then they are kept: smaller than Q5_0, and requantizing them would only add error).
    case q4_k

    public var isQuantized: Bool { self != .fp32 && self != .bf16 && self != .f16 }

    /// The message for a `text` given to `option` that names no precision.
    public static func unsupported(_ text: String, option: String) -> String {
        "\(option) \(text) is not supported (\(allCases.map(\.rawValue).joined(separator: ", ")))"
    }

    /// The encoding a matrix with rows of `rowLength` elements gets (projections, embedding, head). `source` is the
    /// tensor's encoding in the model file: a quantized tensor already in the chosen encoding (or Q4_1 when Q4_0 is
    /// asked for, or Q4_0/Q4_1 where Q4_K falls back to Q5_0) is kept as it is rather than requantized.
    public func matrixEncoding(rowLength: Int, source: WeightEncoding? = nil) -> WeightEncoding {
        let requested: WeightEncoding
        switch self {
        case .fp32: return .fp32
        case .bf16: return .bf16
        case .f16: return .f16
        case .q8_0: requested = .q8_0
        case .q4_0: requested = .q4_0
        case .q4_k: requested = WeightEncoding.q4_K.fits(rowLength: rowLength) ? .q4_K : .q5_0
        }
        // llama.cpp stores a row that is not whole blocks of the fallback either in f16.
        let chosen = requested.fits(rowLength: rowLength) ? requested : .f16
        // A file's 4-bit blocks stand in for Q4_0, and for Q4_K's Q5_0 fallback: no larger, and exact.
        let fourBitStandsIn = chosen == .q4_0 || (self == .q4_k && chosen == .q5_0)
        if let source, source == chosen || (fourBitStandsIn && (source == .q4_0 || source == .q4_1)) { return source }
        return chosen
    }

    /// The encoding of the norm weights: fp32 under a quantized base (as llama.cpp keeps them), else the precision.
    public var normEncoding: WeightEncoding {
        switch self {
        case .fp32, .q8_0, .q4_0, .q4_k: return .fp32
        case .bf16: return .bf16
        case .f16: return .f16
        }
    }

    /// Bytes per weight of the bulk of the model, for memory plans (blocks' scales included).
    public var approximateBytesPerWeight: Double {
        switch self {
        case .fp32: return 4
        case .bf16, .f16: return 2
        case .q8_0: return 34.0 / 32
        case .q4_0: return 18.0 / 32
        case .q4_k: return 144.0 / 256
        }
    }
}
