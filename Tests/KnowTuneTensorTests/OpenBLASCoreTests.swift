// Checks the OpenBLAS kernel choice: a pre-AVX2 core detected on a CPU with AVX-512 or AVX2+FMA is replaced by
// SkylakeX or Haswell, anything else (a modern detection, OPENBLAS_CORETYPE, KNOWTUNE_OPENBLAS_CORE=keep, an old
// CPU) is kept; and the process's own choice runs sgemm correctly.
import XCTest
@testable import KnowTuneTensor

final class OpenBLASCoreTests: XCTestCase {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"]

    func testAFailedDetectionIsReplacedByTheCPUsKernels() {
        XCTAssertEqual(OpenBLASCore.replacement(detected: "Prescott", cpuFlags: avx512, environment: [:]), "SkylakeX")
        XCTAssertEqual(OpenBLASCore.replacement(detected: "Prescott", cpuFlags: ["avx", "avx2", "fma"], environment: [:]), "Haswell")
        XCTAssertEqual(OpenBLASCore.replacement(detected: "Sandybridge", cpuFlags: ["avx", "avx2", "fma", "avx512f"], environment: [:]), "Haswell")
    }

    func testOtherChoicesAreKept() {
        XCTAssertNil(OpenBLASCore.replacement(detected: "Cooperlake", cpuFlags: avx512, environment: [:]))
        XCTAssertNil(OpenBLASCore.replacement(detected: "Haswell", cpuFlags: avx512, environment: [:]))
        XCTAssertNil(OpenBLASCore.replacement(detected: "Prescott", cpuFlags: avx512, environment: ["OPENBLAS_CORETYPE": "Prescott"]))
        XCTAssertNil(OpenBLASCore.replacement(detected: "Prescott", cpuFlags: avx512, environment: ["KNOWTUNE_OPENBLAS_CORE": "keep"]))
        XCTAssertNil(OpenBLASCore.replacement(detected: "Prescott", cpuFlags: ["sse3", "avx"], environment: [:]))
    }

    func testTheChosenKernelsMultiplyCorrectly() {
        let choice = OpenBLASCore.chooseKernels()
        print(choice.description)
        XCTAssertEqual(choice.running, BLAS.coreName)
        XCTAssertEqual(OpenBLASCore.startupChoice, choice)
        // C[3,2] = A[3,4]·B[4,2] against the schoolbook product.
        let a: [Float] = (0..<12).map { Float($0) - 5 }, b: [Float] = (0..<8).map { Float($0 % 3) + 0.5 }
        var c = [Float](repeating: 0, count: 6)
        BLAS.gemm(m: 3, n: 2, k: 4, a: a, lda: 4, b: b, ldb: 2, c: &c, ldc: 2)
        for i in 0..<3 {
            for j in 0..<2 { XCTAssertEqual(c[i * 2 + j], (0..<4).reduce(0) { $0 + a[i * 4 + $1] * b[$1 * 2 + j] }) }
        }
    }
}
