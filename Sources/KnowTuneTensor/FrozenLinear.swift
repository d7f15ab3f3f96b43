// Implements the two products of a frozen linear layer (output and input gradient) for a weight in any
// `WeightEncoding`, dispatching to sgemm, the bf16 kernel, the f16 tile path or the quantized tile path; does not
// own weights.
import CKnowTuneBF16
import CKnowTuneQuant

/// A frozen weight W [out, in] row-major, in the encoding it is stored in.
public struct FrozenMatrix {
    public let encoding: WeightEncoding
    public let address: UnsafeRawPointer

    public init(_ pointer: UnsafePointer<Float>) {
        encoding = .fp32
        address = UnsafeRawPointer(pointer)
    }

    public init(encoding: WeightEncoding, address: UnsafeRawPointer) {
        self.encoding = encoding
        self.address = address
    }
}

public enum FrozenLinear {
    /// Y[N, out] (+)= alpha · X[N, in] · Wᵀ.
    @inline(__always)
    public static func linear(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: FrozenMatrix,
                              rows: Int, inFeatures: Int, outFeatures: Int, alpha: Float = 1, accumulate: Bool = false) {
        switch weight.encoding {
        case .fp32:
            BLAS.linear(output: output, input: input, weight: weight.address.assumingMemoryBound(to: Float.self), rows: rows,
                        inFeatures: inFeatures, outFeatures: outFeatures, alpha: alpha, accumulate: accumulate)
        case .bf16:
            BF16BLAS.linear(output: output, input: input, weight: weight.address.assumingMemoryBound(to: UInt16.self),
                            rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, alpha: alpha, accumulate: accumulate)
        case .f16:
            kt_f16_linear(output, input, weight.address.assumingMemoryBound(to: UInt16.self), Int32(rows), Int32(inFeatures),
                          Int32(outFeatures), alpha, accumulate ? 1 : 0)
        case .q8_0, .q4_0, .q4_1, .q5_0, .q4_K:
            kt_quant_linear(weight.encoding.quantType!, output, input, weight.address, Int32(rows), Int32(inFeatures),
                            Int32(outFeatures), alpha, accumulate ? 1 : 0)
        }
    }

    /// dX[N, in] (+)= alpha · dY[N, out] · W.
    @inline(__always)
    public static func linearInputGradient(inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                           weight: FrozenMatrix, rows: Int, inFeatures: Int, outFeatures: Int,
                                           alpha: Float = 1, accumulate: Bool) {
        switch weight.encoding {
        case .fp32:
            BLAS.linearInputGradient(inputGradient: inputGradient, outputGradient: outputGradient,
                                     weight: weight.address.assumingMemoryBound(to: Float.self), rows: rows,
                                     inFeatures: inFeatures, outFeatures: outFeatures, alpha: alpha, accumulate: accumulate)
        case .bf16:
            BF16BLAS.linearInputGradient(inputGradient: inputGradient, outputGradient: outputGradient,
                                         weight: weight.address.assumingMemoryBound(to: UInt16.self), rows: rows,
                                         inFeatures: inFeatures, outFeatures: outFeatures, alpha: alpha, accumulate: accumulate)
        case .f16:
            kt_f16_linear_input_gradient(inputGradient, outputGradient, weight.address.assumingMemoryBound(to: UInt16.self),
                                         Int32(rows), Int32(inFeatures), Int32(outFeatures), alpha, accumulate ? 1 : 0)
        case .q8_0, .q4_0, .q4_1, .q5_0, .q4_K:
            kt_quant_linear_input_gradient(weight.encoding.quantType!, inputGradient, outputGradient, weight.address,
                                           Int32(rows), Int32(inFeatures), Int32(outFeatures), alpha, accumulate ? 1 : 0)
        }
    }
}
