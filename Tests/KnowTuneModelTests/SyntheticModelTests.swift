// Checks the synthetic models of launch/bench-7b.sh (SyntheticModel, GGUFWriter's streaming mode): a tiny-llama
// written in q8_0 loads with the named shape, its blocks kept as they are under a q8_0 base, its SentencePiece-style
// vocabulary round-trips text (byte fallback included) and is all merges; the same seed writes the same bytes; the
// named 7B shape is Llama-2's; and a streamed tensor of the wrong size leaves no file.
import Foundation
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class SyntheticModelTests: XCTestCase {
    private let folder = TestPaths.freshOutputFolder("synthetic", in: TestPaths.scratchFolder("model-tests"))

    override func setUpWithError() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func testTinyLlamaLoadsWithItsShapeAndVocabulary() throws {
        let c = try SyntheticModel.configuration(named: "tiny-llama")
        let path = folder + "/tiny-q8.gguf"
        let bytes = try SyntheticModel.write(c, name: "tiny-llama", encoding: .q8_0, seed: 3, to: path)
        XCTAssertGreaterThan(bytes, Int(Double(c.parameterCount) * 34 / 32))
        let model = try ModelLoader.load(path, precision: .q8_0)
        XCTAssertEqual(model.configuration.hiddenSize, 256)
        XCTAssertEqual(model.configuration.vocabularySize, 32000)
        XCTAssertFalse(model.configuration.tieWordEmbeddings)
        XCTAssertEqual(model.weights.storageLayout.encodingSummary, "q8_0 × 16, fp32 × 5")
        // The kept blocks decode to what the fp32 load reads.
        let fp32 = try ModelLoader.load(path)
        var row = [Float](repeating: 0, count: 256)
        model.weights.copyEmbeddingRow(1234, into: &row)
        XCTAssertEqual(row, Array(UnsafeBufferPointer(start: fp32.weights.embedding + 1234 * 256, count: 256)))
        let spread = row.map(abs).max()!
        XCTAssertGreaterThan(spread, 0.02)
        XCTAssertLessThan(spread, 0.04)  // uniform with standard deviation 0.02: |x| ≤ 0.0346

        let tokenizer = try XCTUnwrap(model.tokenizer as? SentencePieceBPETokenizer)
        XCTAssertEqual(tokenizer.vocabularySize, 32000)
        for text in ["the quick brown fox", "Hello, World! 42", "naïve café €5"] {
            let ids = tokenizer.encode(text)
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 32000 })
            XCTAssertEqual(tokenizer.decode(ids), text)
        }
        // Grown pieces merge: a lowercase word takes fewer tokens than it has letters; "€" falls back to its 3 bytes.
        XCTAssertLessThanOrEqual(tokenizer.encode("alphabet").count, 4)
        XCTAssertEqual(tokenizer.encode("€").filter { (3..<259).contains($0) }.count, 3)
    }

    func testTheSameSeedWritesTheSameBytes() throws {
        let c = try SyntheticModel.configuration(named: "tiny-llama", layers: 1)
        let paths = [folder + "/a.gguf", folder + "/b.gguf", folder + "/c.gguf"]
        for (path, seed) in zip(paths, [5, 5, 6] as [UInt64]) {
            try SyntheticModel.write(c, name: "tiny-llama", encoding: .q4_K, seed: seed, to: path)
        }
        let contents = try paths.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        XCTAssertEqual(contents[0], contents[1])
        XCTAssertNotEqual(contents[0], contents[2])
        XCTAssertEqual(try ModelLoader.load(paths[0], precision: .q4_k).weights.storageLayout.encodingSummary, "q4_k × 9, fp32 × 3")
    }

    func testNamedShapesAreLlamaTwos() throws {
        let seven = try SyntheticModel.configuration(named: "llama2-7b")
        XCTAssertEqual([seven.layerCount, seven.hiddenSize, seven.intermediateSize, seven.headCount, seven.vocabularySize],
                       [32, 4096, 11008, 32, 32000])
        XCTAssertEqual(seven.parameterCount, 6_738_415_616)  // Llama-2-7B's published count
        XCTAssertEqual(try SyntheticModel.configuration(named: "llama2-13b").parameterCount, 13_015_864_320)
        XCTAssertEqual(try SyntheticModel.configuration(named: "llama2-7b", layers: 2).layerCount, 2)
        XCTAssertThrowsError(try SyntheticModel.configuration(named: "llama3-8b")) { error in
            XCTAssertTrue("\(error)".contains("llama2-7b, llama2-13b, tiny-llama"), "\(error)")
        }
        XCTAssertThrowsError(try SyntheticModel.write(seven, name: "x", encoding: .q4_1, seed: 0, to: folder + "/x.gguf"))
    }

    func testAStreamedTensorOfTheWrongSizeLeavesNoFile() {
        var writer = GGUFWriter()
        writer.tensors = [.init(name: "a", dimensions: [64], streamedAs: .q8_0)]
        let path = folder + "/short.gguf"
        XCTAssertThrowsError(try writer.write(to: path) { _, write in try write([UInt8](repeating: 0, count: 34), 34) }) { error in
            XCTAssertTrue("\(error)".contains("34 bytes written, 68 needed"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
