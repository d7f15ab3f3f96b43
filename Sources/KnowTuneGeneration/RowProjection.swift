// Implements the linear layer Y[B, out] (+)= X[B, in]·Wᵀ for decoding's few rows: W is walked in blocks of rows
// small enough to stay in cache, and each block is applied to all B rows (one OpenBLAS sgemv per row) before the
// next is read, so W comes from memory once per call whatever B is; more rows go to one sgemm. Does not allocate.
// Training's large products stay in BLAS.linear.
//
// Why not one sgemm for every B: OpenBLAS 0.3.21's sgemm packs W on every call, which for B = 1 … 8 costs more than
// reading W. Measured on the 2-core EPYC (SmolLM2-135M shapes: 30 layers with q/k/v and gate/up merged, and the
// [49152, 576] head; OPENBLAS_NUM_THREADS=2, Haswell kernels, quiet machine, ms per decoding step):
//
//   B   sgemm (layers + head)   sgemv per row, whole W   sgemv per row, 2 MB blocks
//   1   17.9 + 4.9              10.2 + 2.4               9.6 + 2.5
//   2   24.1 + 6.2              13.2 + 5.1               13.0 + 3.2
//   4   35.9 + 9.9              19.5 + 9.7               17.2 + 4.4
//   8   37.7 + 10.4             28.3 + 17.8              26.3 + 6.8
//
// The head (113 MB) gains most: unblocked, each of the B passes reads it from memory again. Blocks of 1 MB and 4 MB
// did no better than 2 MB (the L2 size of one core).
//
// A 16-bit base (bf16, f16) goes to CKnowTuneBF16's row kernel for up to 8 rows (each weight row widened in
// registers once for all rows, so only 16-bit bytes are read), a quantized one to CKnowTuneQuant's (each block
// read once for all rows, the output features split over OpenBLAS's thread count; Q8_0 against activations
// quantized to 8 bits as llama.cpp does, unless KNOWTUNE_DECODE_ACTIVATIONS=fp32), and both to FrozenLinear above that.
import CKnowTuneBF16
import CKnowTuneQuant
import COpenBLAS
import Foundation
import KnowTuneTensor

enum RowProjection {
    /// Largest row count applied with sgemv per row; above it one sgemm is faster (prefill chunks).
    static let matrixVectorRowLimit = 8
    /// Floats of W read per block (2 MB).
    static let blockFloatCount = 512 * 1024
    /// CKnowTuneQuant's decoding mode: 8-bit activations for Q8_0 (default), or fp32 ones, which compute what the
    /// training products compute (`KNOWTUNE_DECODE_ACTIVATIONS=fp32`).
    static let quantizedRowsMode: Int32 = ProcessInfo.processInfo.environment["KNOWTUNE_DECODE_ACTIVATIONS"] == "fp32"
        ? Int32(KT_QUANT_ROWS_FP32_ACTIVATIONS) : 0

    /// Y[rows, out] (+)= X[rows, in]·Wᵀ for W stored [out, in] row-major; output rows are `outputStride` apart
    /// (default `outFeatures`), so several projections can write side by side into one wider row.
    static func linear(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: FrozenMatrix,
                       rows: Int, inFeatures: Int, outFeatures: Int, outputStride: Int? = nil, accumulate: Bool = false) {
        let ldc = outputStride ?? outFeatures
        guard weight.encoding == .fp32 else {
            if rows > matrixVectorRowLimit && ldc == outFeatures {
                FrozenLinear.linear(output: output, input: input, weight: weight, rows: rows, inFeatures: inFeatures,
                                    outFeatures: outFeatures, accumulate: accumulate)
                return
            }
            var start = 0
            while start < rows {  // strided outputs with many rows: 8 at a time
                let count = min(matrixVectorRowLimit, rows - start)
                if let type = weight.encoding.quantType {
                    _ = kt_quant_rows_linear(type, output + start * ldc, Int32(ldc), input + start * inFeatures, weight.address,
                                             Int32(count), Int32(inFeatures), Int32(outFeatures), accumulate ? 1 : 0, quantizedRowsMode)
                } else {
                    _ = kt_half_rows_linear(output + start * ldc, Int32(ldc), input + start * inFeatures,
                                            weight.address.assumingMemoryBound(to: UInt16.self), Int32(count),
                                            Int32(inFeatures), Int32(outFeatures), accumulate ? 1 : 0,
                                            weight.encoding == .f16 ? 1 : 0)
                }
                start += count
            }
            return
        }
        linear(output: output, input: input, weight: weight.address.assumingMemoryBound(to: Float.self), rows: rows,
               inFeatures: inFeatures, outFeatures: outFeatures, outputStride: ldc, accumulate: accumulate)
    }

    static func linear(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                       rows: Int, inFeatures: Int, outFeatures: Int, outputStride: Int? = nil, accumulate: Bool = false) {
        let ldc = outputStride ?? outFeatures
        guard rows <= matrixVectorRowLimit else {
            BLAS.gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures, a: input, lda: inFeatures, b: weight,
                      ldb: inFeatures, beta: accumulate ? 1 : 0, c: output, ldc: ldc)
            return
        }
        let blockRows = max(1, blockFloatCount / max(inFeatures, 1))
        var start = 0
        while start < outFeatures {
            let count = min(blockRows, outFeatures - start)
            for row in 0..<rows {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(count), Int32(inFeatures), 1, weight + start * inFeatures,
                            Int32(inFeatures), input + row * inFeatures, 1, accumulate ? 1 : 0, output + row * ldc + start, 1)
            }
            start += count
        }
    }
}
