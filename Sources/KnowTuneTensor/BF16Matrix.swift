// Implements bfloat16 storage for frozen weights (BF16Matrix) and the two frozen-weight products of a linear layer
// over it (BF16BLAS, the bf16 twins of BLAS.linear / BLAS.linearInputGradient) through the CKnowTuneBF16 kernels;
// does not compute weight gradients (frozen weights get none) or keep LoRA state in bf16.
//
// Numerics follow PyTorch's CPU autocast for bf16 matmuls: the fp32 activations are rounded to bf16 (nearest even)
// only as inputs to the product, the products of bf16 pairs are exact in fp32, and sums accumulate in fp32. The
// result is fp32. See CKnowTuneBF16/include/KnowTuneBF16.h for the two kernel paths.
import CKnowTuneBF16

/// A dense row-major matrix of bfloat16 values that owns its storage (`rows × columns` UInt16 bit patterns).
///
/// For a linear layer's weight W the shape is [out, in], the same layout as the fp32 weights `BLAS.linear` takes.
public final class BF16Matrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    /// The bf16 bit patterns, [rows, columns] row-major. Immutable after initialisation by convention.
    public let bits: UnsafeMutablePointer<UInt16>

    public var count: Int { rows * columns }

    /// A zero matrix.
    public init(rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "negative shape [\(rows), \(columns)]")
        self.rows = rows
        self.columns = columns
        bits = .allocate(capacity: max(rows * columns, 1))
        bits.initialize(repeating: 0, count: max(rows * columns, 1))
    }

    /// Rounds `values` ([rows, columns] fp32) to bf16, nearest even (as `HalfPrecision.bfloat16Bits`).
    public convenience init(rows: Int, columns: Int, converting values: UnsafePointer<Float>) {
        self.init(rows: rows, columns: columns)
        kt_bf16_from_floats(bits, values, rows * columns)
    }

    public convenience init(rows: Int, columns: Int, converting values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for a [\(rows), \(columns)] matrix")
        self.init(rows: rows, columns: columns)
        values.withUnsafeBufferPointer { kt_bf16_from_floats(bits, $0.baseAddress, rows * columns) }
    }

    deinit { bits.deallocate() }

    /// The value at (row, column), exactly.
    public subscript(row: Int, column: Int) -> Float {
        HalfPrecision.float(fromBFloat16Bits: bits[row * columns + column])
    }

    /// All values as fp32 (exact), row-major.
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            kt_bf16_to_floats(buffer.baseAddress, bits, count)
            initialized = count
        }
    }

    /// Bytes of bf16 storage.
    public var byteCount: Int { count * MemoryLayout<UInt16>.size }
}

/// Frozen-weight products with bf16 weights: the bf16 counterparts of `BLAS.linear` and `BLAS.linearInputGradient`.
public enum BF16BLAS {
    /// Which kernel computes a product.
    public enum Path: Int32, Sendable {
        /// AVX-512 BF16 when the CPU has it, else the fallback; `KNOWTUNE_BF16_PATH=fallback` forces the fallback.
        case automatic = 0
        /// `vdpbf16ps` with the kernel's own threads; a fatal error on a CPU without AVX-512 BF16.
        case native = 1
        /// bf16 → fp32 weight tiles multiplied by `cblas_sgemm` (OpenBLAS's threads), same rounded inputs.
        case fallback = 2
    }

    /// True when this CPU and OS support AVX-512 BF16 (`vdpbf16ps`).
    public static var hasNativeKernel: Bool { kt_bf16_has_avx512bf16() != 0 }

    /// The path `path` resolves to on this machine (`.native` or `.fallback`); nil for `.native` without support.
    public static func resolvedPath(_ path: Path = .automatic) -> Path? {
        let resolved = kt_bf16_resolve_path(kt_bf16_path(rawValue: UInt32(path.rawValue)))
        return resolved < 0 ? nil : Path(rawValue: resolved)
    }

    /// Y[N, out] (+)= alpha · bf16(X[N, in]) · Wᵀ for a bf16 weight W stored [out, in] row-major.
    /// - Parameters:
    ///   - threads: the native kernel's thread count; nil uses OpenBLAS's (`BLAS.threadCount`). Results are
    ///     bitwise identical for every thread count. The fallback always uses OpenBLAS's threads.
    ///   - path: the kernel; `.automatic` unless a test or benchmark needs one in particular.
    @inline(__always)
    public static func linear(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<UInt16>,
                              rows: Int, inFeatures: Int, outFeatures: Int, alpha: Float = 1, accumulate: Bool = false,
                              threads: Int? = nil, path: Path = .automatic) {
        let ran = kt_bf16_linear_with(output, input, weight, Int32(rows), Int32(inFeatures), Int32(outFeatures), alpha,
                                      accumulate ? 1 : 0, Int32(threads ?? 0), kt_bf16_path(rawValue: UInt32(path.rawValue)))
        if ran < 0 { fatalError("the native bf16 kernel was requested on a CPU without AVX-512 BF16") }
    }

    /// dX[N, in] (+)= alpha · bf16(dY[N, out]) · W for a bf16 weight W stored [out, in]: the input gradient of `linear`.
    @inline(__always)
    public static func linearInputGradient(inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                           weight: UnsafePointer<UInt16>, rows: Int, inFeatures: Int, outFeatures: Int,
                                           alpha: Float = 1, accumulate: Bool, threads: Int? = nil, path: Path = .automatic) {
        let ran = kt_bf16_linear_input_gradient_with(inputGradient, outputGradient, weight, Int32(rows), Int32(inFeatures),
                                                     Int32(outFeatures), alpha, accumulate ? 1 : 0, Int32(threads ?? 0),
                                                     kt_bf16_path(rawValue: UInt32(path.rawValue)))
        if ran < 0 { fatalError("the native bf16 kernel was requested on a CPU without AVX-512 BF16") }
    }

    /// `linear` with the weight's shape taken from `weight` ([out, in]).
    public static func linear(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: BF16Matrix,
                              rows: Int, alpha: Float = 1, accumulate: Bool = false, threads: Int? = nil,
                              path: Path = .automatic) {
        linear(output: output, input: input, weight: UnsafePointer(weight.bits), rows: rows, inFeatures: weight.columns,
               outFeatures: weight.rows, alpha: alpha, accumulate: accumulate, threads: threads, path: path)
    }

    /// `linearInputGradient` with the weight's shape taken from `weight` ([out, in]).
    public static func linearInputGradient(inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
                                           weight: BF16Matrix, rows: Int, alpha: Float = 1, accumulate: Bool,
                                           threads: Int? = nil, path: Path = .automatic) {
        linearInputGradient(inputGradient: inputGradient, outputGradient: outputGradient, weight: UnsafePointer(weight.bits),
                            rows: rows, inFeatures: weight.columns, outFeatures: weight.rows, alpha: alpha,
                            accumulate: accumulate, threads: threads, path: path)
    }

    /// Rounds `count` floats to bf16 bits (nearest even, NaN kept), vectorised; the bulk form of
    /// `HalfPrecision.bfloat16Bits`.
    public static func round(_ values: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt16>) {
        kt_bf16_from_floats(destination, values, count)
    }

    /// Frees the calling thread's kernel workspace (packed activations and weight panels, kept between calls and
    /// sized by the largest call so far: rows · ⌈depth/2⌉ · 4 bytes plus 128 KiB per thread).
    public static func releaseWorkspace() { kt_bf16_release_workspace() }
}
