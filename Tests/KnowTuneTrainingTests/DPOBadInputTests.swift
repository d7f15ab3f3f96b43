// Bad input to `knowtune train --stage dpo` under `mpirun -np 2`: one clear error printed once (by rank 0), a
// non-zero exit, no hang; a pair with identical answers is a warning, printed once, and the run goes on.
import Foundation
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class DPOBadInputTests: XCTestCase {
    private func arguments(_ name: String, dataset: String = "pairs", extra: [String] = []) throws -> [String] {
        var list = try DPOFixtures.arguments(output: TrainingFixtures.outputDirectory(name), extra: extra)
        if let index = list.firstIndex(of: "--dataset") { list[index + 1] = dataset }
        return list
    }

    func testResponseListOfThree() throws {
        try KnowTuneRunner.expectFailure(try arguments("dpo-three", dataset: "three_responses"),
                          message: "three_responses[2]: a ranking response must be a [chosen, rejected] list of 2 texts, found 3")
    }

    func testResponseThatIsNotAList() throws {
        try KnowTuneRunner.expectFailure(try arguments("dpo-single", dataset: "single_response"),
                          message: "record 1 of ranking dataset single_response needs a [chosen, rejected] response list")
    }

    func testDatasetThatIsNotRanked() throws {
        try KnowTuneRunner.expectFailure(try arguments("dpo-plain", dataset: "pairs,plain"), message: "--stage dpo needs ranking datasets, and 'plain' is not")
    }

    func testCheckpointDirThatDoesNotExist() throws {
        let missing = TrainingFixtures.root + "/no-such-adapter"
        try KnowTuneRunner.expectFailure(try arguments("dpo-missing-adapter", extra: ["--checkpoint_dir", missing, "--resume_lora_training", "1"]),
                          message: "(is \(missing) a PEFT adapter folder?)")
    }

    func testAdapterOfAnotherModel() throws {
        // A valid PEFT folder whose tensors fit a model with hidden size 64, not the tiny model's 32.
        let folder = TrainingFixtures.root + "/adapter-other-model"
        let other = LlamaConfiguration(vocabularySize: 49152, hiddenSize: 64, intermediateSize: 96, layerCount: 2, headCount: 4,
                                       kvHeadCount: 2, rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true,
                                       maxPositionEmbeddings: 512)
        let adapter = LoRABuffer(layout: LoRALayout(model: other, lora: LoRAConfiguration(rank: 8, alpha: 16, targets: [.query, .value])))
        adapter.initializePEFT(seed: 1)
        try PEFTAdapter.save(adapter, to: folder, baseModel: "other")
        try KnowTuneRunner.expectFailure(try arguments("dpo-other-model", extra: ["--checkpoint_dir", folder]),
                          message: "adapter does not fit this base model (2 layers, hidden 32)")
    }

    func testDPOWithoutTraining() throws {
        var list = try arguments("dpo-eval-only", extra: ["--val_size", "4"])
        list.removeAll { $0 == "--do_train" }
        try KnowTuneRunner.expectFailure(list + ["--do_eval"], message: "--stage dpo needs --do_train; --stage dpo does not evaluate")
    }

    func testIdenticalAnswersWarnOnceAndTrain() throws {
        let result = try KnowTuneRunner.run(try arguments("dpo-identical", dataset: "identical", extra: ["--max_steps", "2"]), ranks: 2, timeout: 60)
        XCTAssertEqual(result.status, 0, result.standardError)
        let warning = "1 pair(s) have identical chosen and rejected answers; kept"
        XCTAssertEqual(result.standardError.components(separatedBy: warning).count - 1, 1, result.standardError)
    }
}
