// Implements thin row-major wrappers over OpenBLAS `cblas_sgemm` and thread control; does not allocate.
import COpenBLAS

public enum BLAS {
    /// C[M,N] = alpha · op(A) · op(B) + beta · C, all row-major with explicit leading dimensions.
    /// op(A) is [M,K] (A stored [K,M] when `transposeA`), op(B) is [K,N] (B stored [N,K] when `transposeB`).
    @inline(__always)
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k = 0 only when beta = 1; make the result explicit.
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Y[N, out] (+)= X[N, in] · Wᵀ for a weight W stored [out, in] row-major (a linear layer).
    @inline(__always)
    public static func linear(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              rows: Int, inFeatures: Int, outFeatures: Int, alpha: Float = 1, accumulate: Bool = false) {
        gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures, alpha: alpha, a: input, lda: inFeatures,
             b: weight, ldb: inFeatures, beta: accumulate ? 1 : 0, c: output, ldc: outFeatures)
    }

    /// dX[N, in] (+)= dY[N, out] · W for W stored [out, in]: the input gradient of `linear`.
    @inline(__always)
    public static func linearInputGradient(inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                           weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                                           alpha: Float = 1, accumulate: Bool) {
        gemm(m: rows, n: inFeatures, k: outFeatures, alpha: alpha, a: outputGradient, lda: outFeatures,
             b: weight, ldb: inFeatures, beta: accumulate ? 1 : 0, c: inputGradient, ldc: inFeatures)
    }

    /// dW[out, in] (+)= alpha · dY[N, out]ᵀ · X[N, in]: a weight gradient (used for LoRA factors only).
    @inline(__always)
    public static func linearWeightGradient(weightGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                            input: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                                            alpha: Float = 1, accumulate: Bool = true) {
        gemm(transposeA: true, m: outFeatures, n: inFeatures, k: rows, alpha: alpha, a: outputGradient, lda: outFeatures,
             b: input, ldb: inFeatures, beta: accumulate ? 1 : 0, c: weightGradient, ldc: inFeatures)
    }

    /// Sets OpenBLAS's thread count for this process.
    public static func setThreadCount(_ count: Int) { openblas_set_num_threads(Int32(max(1, count))) }

    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's name for the CPU kernels it selected (e.g. "Cooperlake", "Haswell").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
