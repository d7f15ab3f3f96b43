// Hand-derived DPO losses, derivatives and rewards for the sigmoid, hinge and ipo losses and the ftx term (TRL
// 0.7.11 `dpo_loss`, LF053 `sft_loss`), the metric means, and the pairwise encoder's truncation and checks with a
// one-character-per-token tokenizer so that every length below can be counted by hand.
import Foundation
import XCTest
@testable import KnowTuneData
@testable import KnowTuneModel
@testable import KnowTuneTraining

final class DPOLossTests: XCTestCase {
    /// πc = −10, πr = −12, rc = rr = −11: z = (−10 + 12) − (−11 + 11) = 2; the chosen answer has 4 tokens.
    let pair = DPOLoss.Pair(policyChosen: -10, policyRejected: -12, referenceChosen: -11, referenceRejected: -11, chosenLength: 4)

    func testSigmoidLoss() {
        // β = 0.5: βz = 1, ℓ = −log σ(1) = log(1 + e⁻¹) = 0.31326168751822286;
        // ∂ℓ/∂z = −β·σ(−1) = −0.5 · 0.2689414213699951 = −0.13447071068499755, so ∂/∂πc = that, ∂/∂πr = −that.
        // Rewards: 0.5·(−10 + 11) = 0.5 and 0.5·(−12 + 11) = −0.5.
        let terms = DPOLoss(kind: .sigmoid, beta: 0.5).terms(pair)
        XCTAssertEqual(terms.logits, 2, accuracy: 1e-15)
        XCTAssertEqual(terms.loss, 0.31326168751822286, accuracy: 1e-15)
        XCTAssertEqual(terms.preferenceLoss, terms.loss)
        XCTAssertEqual(terms.gradientChosen, -0.13447071068499755, accuracy: 1e-15)
        XCTAssertEqual(terms.gradientRejected, 0.13447071068499755, accuracy: 1e-15)
        XCTAssertEqual(terms.chosenReward, 0.5, accuracy: 1e-15)
        XCTAssertEqual(terms.rejectedReward, -0.5, accuracy: 1e-15)
        // The SFT term is reported but not added without ftx: −πc/n = 10/4.
        XCTAssertEqual(terms.sftLoss, 2.5, accuracy: 1e-15)
    }

    func testSigmoidWithFTXAddsTheChosenTokenMeanNLL() {
        // γ = 0.2: loss = 0.31326168751822286 + 0.2 · 10/4 = 0.81326168751822286; ∂/∂πc gains −γ/n = −0.05.
        let terms = DPOLoss(kind: .sigmoid, beta: 0.5, ftx: 0.2).terms(pair)
        XCTAssertEqual(terms.loss, 0.81326168751822286, accuracy: 1e-15)
        XCTAssertEqual(terms.preferenceLoss, 0.31326168751822286, accuracy: 1e-15)
        XCTAssertEqual(terms.gradientChosen, -0.13447071068499755 - 0.05, accuracy: 1e-15)
        XCTAssertEqual(terms.gradientRejected, 0.13447071068499755, accuracy: 1e-15)
        // LF053 adds the term only above 1e-6.
        XCTAssertEqual(DPOLoss(kind: .sigmoid, beta: 0.5, ftx: 1e-7).terms(pair).loss, 0.31326168751822286, accuracy: 1e-15)
    }

    func testSigmoidStaysFiniteFarFromZero() {
        // z = ±10⁴, β = 0.1: βz = ∓1000. ℓ(−1000) = 1000 + log(1 + e⁻¹⁰⁰⁰) = 1000, slope −β·σ(1000) = −0.1;
        // ℓ(1000) = log(1 + e⁻¹⁰⁰⁰) = e⁻¹⁰⁰⁰ ≈ 0, slope −0.1·σ(−1000) ≈ 0.
        let objective = DPOLoss(kind: .sigmoid, beta: 0.1)
        let bad = objective.terms(.init(policyChosen: -1e4, policyRejected: 0, referenceChosen: 0, referenceRejected: 0, chosenLength: 1))
        XCTAssertEqual(bad.loss, 1000, accuracy: 1e-9)
        XCTAssertEqual(bad.gradientChosen, -0.1, accuracy: 1e-15)
        let good = objective.terms(.init(policyChosen: 1e4, policyRejected: 0, referenceChosen: 0, referenceRejected: 0, chosenLength: 1))
        XCTAssertEqual(good.loss, 0, accuracy: 1e-300)
        XCTAssertEqual(good.gradientChosen, 0, accuracy: 1e-300)
    }

    func testHingeLoss() {
        // β = 0.1, z = 2: 1 − 0.2 = 0.8 > 0, so ℓ = 0.8 and ∂ℓ/∂z = −0.1.
        let objective = DPOLoss(kind: .hinge, beta: 0.1)
        let active = objective.terms(pair)
        XCTAssertEqual(active.loss, 0.8, accuracy: 1e-15)
        XCTAssertEqual(active.gradientChosen, -0.1, accuracy: 1e-15)
        XCTAssertEqual(active.gradientRejected, 0.1, accuracy: 1e-15)
        // z = 20: 1 − 2 < 0, ℓ = 0 with no gradient; z = 10 sits on the kink, where torch's relu gives 0.
        let saturated = objective.terms(.init(policyChosen: 0, policyRejected: -20, referenceChosen: 0, referenceRejected: 0, chosenLength: 1))
        XCTAssertEqual(saturated.loss, 0)
        XCTAssertEqual(saturated.gradientChosen, 0)
        let kink = objective.terms(.init(policyChosen: 0, policyRejected: -10, referenceChosen: 0, referenceRejected: 0, chosenLength: 1))
        XCTAssertEqual(kink.loss, 0, accuracy: 1e-15)
        XCTAssertEqual(kink.gradientChosen, 0)
    }

    func testIPOLoss() {
        // β = 0.1: 1/(2β) = 5; z = 2 gives ℓ = (2 − 5)² = 9 and ∂ℓ/∂z = 2·(2 − 5) = −6.
        let terms = DPOLoss(kind: .ipo, beta: 0.1).terms(pair)
        XCTAssertEqual(terms.loss, 9, accuracy: 1e-12)
        XCTAssertEqual(terms.gradientChosen, -6, accuracy: 1e-12)
        XCTAssertEqual(terms.gradientRejected, 6, accuracy: 1e-12)
        // At z = 5 the loss and its slope vanish.
        let optimum = DPOLoss(kind: .ipo, beta: 0.1).terms(.init(policyChosen: 0, policyRejected: -5, referenceChosen: 0, referenceRejected: 0, chosenLength: 1))
        XCTAssertEqual(optimum.loss, 0, accuracy: 1e-24)
    }

    func testDerivativesMatchFiniteDifferences() {
        for kind in DPOLoss.LossKind.allCases {
            let objective = DPOLoss(kind: kind, beta: 0.3, ftx: 0.2)
            let base = DPOLoss.Pair(policyChosen: -7.3, policyRejected: -9.1, referenceChosen: -8, referenceRejected: -8.4, chosenLength: 5)
            let h = 1e-6
            var plus = base, minus = base
            plus.policyChosen += h
            minus.policyChosen -= h
            let numericChosen = (objective.terms(plus).loss - objective.terms(minus).loss) / (2 * h)
            plus = base; minus = base
            plus.policyRejected += h
            minus.policyRejected -= h
            let numericRejected = (objective.terms(plus).loss - objective.terms(minus).loss) / (2 * h)
            XCTAssertEqual(objective.terms(base).gradientChosen, numericChosen, accuracy: 1e-7, "\(kind)")
            XCTAssertEqual(objective.terms(base).gradientRejected, numericRejected, accuracy: 1e-7, "\(kind)")
        }
    }

    func testArgumentsChooseTheLoss() throws {
        var arguments = TrainingArguments()
        arguments.finetuning.dpoLoss = .ipo
        arguments.finetuning.dpoBeta = 0.25
        arguments.finetuning.dpoFTX = 0.2
        XCTAssertEqual(try DPOLoss(arguments: arguments), DPOLoss(kind: .ipo, beta: 0.25, ftx: 0.2))
        arguments.finetuning.dpoBeta = 0
        XCTAssertThrowsError(try DPOLoss(arguments: arguments))
        XCTAssertThrowsError(try TrainingArgumentParser.parse(["--dpo_loss", "kto_pair"])) { error in
            XCTAssertTrue("\(error)".contains("sigmoid, hinge, ipo"), "\(error)")
        }
    }

    func testMetricMeansUseAStrictAccuracy() {
        let objective = DPOLoss(kind: .sigmoid, beta: 0.5)
        var sums = DPOMetricSums()
        let first = objective.terms(pair)  // rewards 0.5 / −0.5
        sums.add(first, policyChosen: -10, policyRejected: -12)
        // Equal rewards count as not accurate (TRL: chosen_rewards > rejected_rewards).
        let tie = objective.terms(.init(policyChosen: -3, policyRejected: -5, referenceChosen: -3, referenceRejected: -5, chosenLength: 2))
        sums.add(tie, policyChosen: -3, policyRejected: -5)
        let means = sums.means
        XCTAssertEqual(means["rewards/chosen"] ?? .nan, 0.25, accuracy: 1e-15)
        XCTAssertEqual(means["rewards/rejected"] ?? .nan, -0.25, accuracy: 1e-15)
        XCTAssertEqual(means["rewards/margins"] ?? .nan, 0.5, accuracy: 1e-15)
        XCTAssertEqual(means["rewards/accuracies"] ?? .nan, 0.5, accuracy: 1e-15)
        XCTAssertEqual(means["logps/chosen"] ?? .nan, -6.5, accuracy: 1e-15)
        XCTAssertEqual(means["logps/rejected"] ?? .nan, -8.5, accuracy: 1e-15)
        XCTAssertEqual(DPOMetricSums(array: sums.array), sums)
    }
}

/// One token per character (its code point), EOS = 2: lengths are character counts.
struct CharacterTokenizer: Tokenizer {
    func encode(_ text: String) -> [Int32] { text.unicodeScalars.map { Int32($0.value) } }
    func decode(_ ids: [Int32]) -> String { String(String.UnicodeScalarView(ids.compactMap { UnicodeScalar(UInt32($0)) })) }
    var vocabularySize: Int { 49152 }
    var eosTokenId: Int32 { 2 }
    var bosTokenId: Int32? { nil }
    var padTokenId: Int32? { 2 }
    func tokenText(_ id: Int32) -> String? { decode([id]) }
    func tokenBytes(_ id: Int32) -> [UInt8]? { Array(decode([id]).utf8) }
}

final class PairwiseEncoderTests: XCTestCase {
    /// The alpaca prompt for instruction "Q" is 141 characters (= tokens here).
    let promptLength = 141

    private func encoder(cutoff: Int) -> PairwiseEncoder {
        PairwiseEncoder(template: .alpaca, tokenizer: CharacterTokenizer(), cutoffLength: cutoff)
    }

    func testShortPairIsKeptWhole() throws {
        let (pairs, report) = try encoder(cutoff: 1024).encode([AlpacaExample(instruction: "Q", responses: ["yes", "no!"])])
        XCTAssertEqual(pairs.count, 1)
        XCTAssertEqual(pairs[0].prompt.count, promptLength)
        XCTAssertEqual(pairs[0].chosen, [121, 101, 115, 2])
        XCTAssertEqual(pairs[0].rejected, [110, 111, 33, 2])
        XCTAssertEqual(pairs[0].tokenCount, 2 * 141 + 4 + 4)
        XCTAssertEqual(report, PairwiseReport(kept: 1, truncated: 0, skippedEmpty: 0, identical: 0))
    }

    func testEachAnswerIsTruncatedAgainstThePromptOnItsOwn() throws {
        // cutoff 160, prompt s = 141.
        // Chosen "abcdefghij" + EOS = 11: 141 + 11 ≤ 160, nothing cut, so the prompt keeps all 141 tokens.
        // Rejected 299 chars + EOS = 300: max_t = max(floor(160·300/441), 1) = 108, so 108 tokens, EOS lost; its
        // prompt would be cut to 52, but LF053 keeps the chosen encoding's prompt: 141 + 108 = 249 > 160.
        let rejected = String(repeating: "r", count: 299)
        let (pairs, report) = try encoder(cutoff: 160).encode([AlpacaExample(instruction: "Q", responses: ["abcdefghij", rejected])])
        XCTAssertEqual(pairs[0].prompt.count, 141)
        XCTAssertEqual(pairs[0].chosen.count, 11)
        XCTAssertEqual(pairs[0].chosen.last, 2)
        XCTAssertEqual(pairs[0].rejected.count, 108)
        XCTAssertEqual(pairs[0].rejected.last, 114)
        XCTAssertEqual(pairs[0].longestSequence, 249)
        XCTAssertEqual(report.truncated, 1)

        // Chosen 59 chars + EOS = 60: max_t = floor(160·60/201) = 47, max_s = 113: the prompt itself is cut.
        let (cut, _) = try encoder(cutoff: 160).encode([AlpacaExample(instruction: "Q", responses: [String(repeating: "c", count: 59), "x"])])
        XCTAssertEqual(cut[0].prompt.count, 113)
        XCTAssertEqual(cut[0].chosen.count, 47)
        XCTAssertEqual(cut[0].rejected.count, 2)
    }

    func testIdenticalAnswersAreKeptAndCounted() throws {
        let (pairs, report) = try encoder(cutoff: 1024).encode([
            AlpacaExample(instruction: "Q", responses: ["same", "same"]),
            AlpacaExample(instruction: "Q", responses: ["", "x"]),
        ])
        XCTAssertEqual(pairs.count, 1)
        XCTAssertEqual(pairs[0].chosen, pairs[0].rejected)
        XCTAssertEqual(report, PairwiseReport(kept: 1, truncated: 0, skippedEmpty: 1, identical: 1))
    }

    func testResponseListMustHoldTwoTexts() {
        XCTAssertThrowsError(try encoder(cutoff: 1024).encode([AlpacaExample(instruction: "Q", responses: ["a", "b", "c"], source: "pairs[4]")])) { error in
            XCTAssertTrue("\(error)".contains("pairs[4]: a ranking response must be a [chosen, rejected] list of 2 texts, found 3"), "\(error)")
        }
    }

    func testUnrankedDatasetsAreRefused() throws {
        let ranked = DatasetEntry(name: "kc", fileName: "kc.json", ranking: true)
        let columns = DatasetEntry(name: "cols", fileName: "c.json", chosenColumn: "chosen", rejectedColumn: "rejected")
        let plain = DatasetEntry(name: "ka", fileName: "ka.json")
        XCTAssertNoThrow(try PairwiseEncoder.requireRanking([ranked, columns]))
        XCTAssertThrowsError(try PairwiseEncoder.requireRanking([ranked, plain])) { error in
            XCTAssertTrue("\(error)".contains("--stage dpo needs ranking datasets, and 'ka' is not"), "\(error)")
        }
    }
}
