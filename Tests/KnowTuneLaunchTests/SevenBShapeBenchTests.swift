// Runs launch/bench-7b.sh in its CI form — two layers of Llama-2-7B's widths (hidden 4096, intermediate 11008, vocab
// 32000) in q4_k: a written model, its node-shared q4_k base, 2 SFT steps of 1,024-token sequences under
// `mpirun -np 2` and a greedy predict — and checks the JSON it writes: the base kept in Q4_K and mapped once per
// node, memory far below an fp32 base's, and a loss near ln(32000) for random weights.
import Foundation
import KnowTuneTestSupport
import XCTest

final class SevenBShapeBenchTests: XCTestCase {
    func testTwoLayersOfSevenBWidthTrainAndPredictOnAQ4KBase() throws {
        let root = TestPaths.repositoryRoot.path
        let result = try Testkit.run("/bin/bash", [root + "/launch/bench-7b.sh", "llama2-7b", "q4_k", "--layers", "2"],
                                           environment: ["KNOWTUNE_BIN": try Testkit.executable(named: "knowtune")], timeout: 1800)
        XCTAssertEqual(result.status, 0, result.standardError)
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/out/bench/7b-llama2-7b-q4_k-2l.json"))
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(report["parameters"] as? Int, 666_914_816)
        XCTAssertTrue((report["base_format"] as? String ?? "").contains("node-shared q4_k (q4_k × 16, fp32 × 5)"), "\(report)")
        let base = try XCTUnwrap(report["conversion_disk_mib"] as? Double)
        // 4.5 bits per weight: 0.67 G weights in about 358 MiB, where fp32 would take 2544 MiB.
        XCTAssertEqual(base, 666_914_816 * 4.5 / 8 / 1_048_576, accuracy: 2)
        let perRank = try XCTUnwrap(report["peak_rss_mib_per_rank"] as? Double)
        let node = try XCTUnwrap(report["node_pss_mib"] as? Double)
        XCTAssertLessThan(perRank, 2048, "a rank holds the shared base, its activations and the 32000-wide head")
        XCTAssertLessThan(node, 2 * perRank - 0.5 * base, "the base is resident once per node, not once per rank")
        XCTAssertEqual(report["steps"] as? Int, 2)
        XCTAssertGreaterThan(report["seconds_per_step"] as? Double ?? 0, 0)
        XCTAssertEqual(report["train_loss"] as? Double ?? 0, log(32000), accuracy: 1.5)
        XCTAssertNotNil(report["predict_runtime"] as? Double)
    }
}
