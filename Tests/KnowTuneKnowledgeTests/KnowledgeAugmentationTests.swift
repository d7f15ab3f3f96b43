// Tests KA: the keep rules on the paper's figure numbers, the builder's outcomes and dataset shape with a stand-in
// scorer, bad input, and the model scorer (exp of SequenceScorer's nll_mean under the alpaca template).
import KnowTuneData
import KnowTuneKnowledge
import KnowTuneModel
import KnowTuneTestSupport
import XCTest

final class KnowledgeAugmentationTests: XCTestCase {
    func testMedianKeepsTheFiguresTwoHardestFacts() {
        // Paper Fig. 2: PPL 18.86, 19.54, 30.74 → the two highest are "difficult knowledge".
        XCTAssertEqual(FactKeepRule.median.keptIndices([18.86, 19.54, 30.74]), [1, 2])
        // Even count: the median is the mean of the middle two.
        XCTAssertEqual(FactKeepRule.median.keptIndices([5, 1, 4, 2]), [0, 2])
        XCTAssertEqual(FactKeepRule.median.keptIndices([7]), [0])
        XCTAssertEqual(FactKeepRule.median.keptIndices([3, 3, 3]), [0, 1, 2])
        XCTAssertEqual(FactKeepRule.median.keptIndices([]), [])
    }

    func testFractionKeepsTheHardestShareAtLeastOne() throws {
        XCTAssertEqual(try FactKeepRule(parsing: "0.5").keptIndices([1, 5, 3, 4, 2]), [1, 2, 3])  // ⌈2.5⌉ = 3, answer order
        XCTAssertEqual(try FactKeepRule(parsing: "0.01").keptIndices([1, 5, 3]), [1])
        XCTAssertEqual(try FactKeepRule(parsing: "1").keptIndices([1, 5, 3]), [0, 1, 2])
        XCTAssertEqual(try FactKeepRule(parsing: "0.5").keptIndices([2, 2, 2, 2]), [0, 1], "ties go to the earlier fact")
        XCTAssertEqual(try FactKeepRule(parsing: "median"), .median)
        for bad in ["0", "1.5", "-0.2", "half", ""] { XCTAssertThrowsError(try FactKeepRule(parsing: bad), bad) }
    }

    func testBuilderKeepsHardFactsAndRewritesThem() throws {
        let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.records)
        let scorer = LengthScorer()
        let builder = KnowledgeAugmentationBuilder(teacher: RuleTeacher(), scorer: scorer)
        let outcomes = try records.map(builder.augment)
        XCTAssertEqual(scorer.calls, records.count)
        for (record, outcome) in zip(records, outcomes) {
            XCTAssertEqual(outcome.index, record.index)
            XCTAssertGreaterThanOrEqual(outcome.facts.count, 2)
            XCTAssertEqual(outcome.perplexities, outcome.facts.map { Double($0.count) })
            XCTAssertEqual(outcome.keptIndices, FactKeepRule.median.keptIndices(outcome.perplexities))
            let pair = try XCTUnwrap(outcome.newPair)
            XCTAssertEqual(pair.output, outcome.keptIndices.map { outcome.facts[$0] }.joined(separator: " "))
            XCTAssertTrue(pair.instruction.hasPrefix("What else should one know about") || pair.instruction.hasPrefix("Regarding"))
            XCTAssertEqual(pair.input, "")
            XCTAssertNil(outcome.skipReason)
            // The easiest (shortest) fact is never kept when facts differ in length.
            if let easiest = outcome.perplexities.indices.min(by: { outcome.perplexities[$0] < outcome.perplexities[$1] }),
               Set(outcome.perplexities).count > 1 {
                XCTAssertFalse(outcome.keptIndices.contains(easiest))
            }
        }
        XCTAssertEqual(outcomes[0].newPair?.instruction, "What else should one know about apple?")
        let dataset = KnowledgeAugmentationBuilder.dataset(records: records, outcomes: outcomes.reversed())
        XCTAssertEqual(dataset.count, 2 * records.count)
        XCTAssertEqual(Array(dataset.prefix(records.count)),
                       records.map { QAPair(instruction: $0.instruction, input: $0.input, output: $0.output) }, "originals first, verbatim")
        XCTAssertEqual(Array(dataset.suffix(records.count)), outcomes.compactMap(\.newPair), "then the new pairs in record order")
    }

    func testBadInputIsCountedNotFatal() throws {
        let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.badRecords)
        let builder = KnowledgeAugmentationBuilder(teacher: RuleTeacher(), scorer: LengthScorer())
        let outcomes = try records.map(builder.augment)
        XCTAssertEqual(outcomes[0].facts, ["Yes, water is wet."])
        XCTAssertEqual(outcomes[0].keptIndices, [0], "a single fact is kept")
        XCTAssertEqual(outcomes[1].skipReason, "no_facts")
        XCTAssertNil(outcomes[1].newPair)
        XCTAssertEqual(outcomes[2].facts, ["苹果是一种水果。", "苹果树在世界各地种植。"])
        XCTAssertNotNil(outcomes[2].newPair)
        XCTAssertNotNil(outcomes[3].newPair)
        XCTAssertEqual(outcomes[4].skipReason, "no_facts")
        let dataset = KnowledgeAugmentationBuilder.dataset(records: records, outcomes: outcomes)
        XCTAssertEqual(dataset.count, records.count + 3)
    }

    func testModelScorerIsExpOfSequenceScorersMeanNLLWithoutEOS() throws {
        let model = try ModelLoader.load(try KnowledgeFixtures.tinyModel())
        let scorer = FactPerplexityScorer(model: model)
        let facts = ["An apple is an edible fruit.", "Apple trees are cultivated worldwide.", "苹果是一种水果。"]
        let perplexities = try scorer.perplexities(instruction: "What is an apple?", input: "", facts: facts)
        XCTAssertEqual(perplexities.count, 3)
        // Reference: one fact scored alone through SequenceScorer with the alpaca template, no EOS.
        let template = ChatTemplate.alpaca
        let prompt = template.encodePrompt("What is an apple?", tokenizer: model.tokenizer)
        let response = template.encodeResponse(facts[1], tokenizer: model.tokenizer, appendEOS: false)
        let reference = try SequenceScorer(decoder: LlamaDecoder(weights: model.weights), lora: nil).score([(prompt, response)])
        XCTAssertEqual(perplexities[1], exp(reference[0].meanNegativeLogLikelihood), accuracy: 1e-3 * perplexities[1])
        for value in perplexities { XCTAssertTrue(value.isFinite && value > 1, "\(value)") }
        // The input is part of the question: a different input changes the scores.
        XCTAssertNotEqual(try scorer.perplexities(instruction: "What is an apple?", input: "Be brief.", facts: facts), perplexities)
        XCTAssertEqual(try scorer.perplexities(instruction: "Q", input: "", facts: []), [])
    }

    func testSmolLM2ScoresTheFigureFacts() throws {
        let model = try ModelLoader.load(try TestPaths.require(TestPaths.smolLM2))
        let scorer = FactPerplexityScorer(model: model)
        // Paper Fig. 2's three atomic facts of "What is an apple?" (its PPL: 18.86, 19.54, 30.74 under LLaMA-2).
        let facts = ["An apple is an edible fruit.", "Apples are produced by apple trees.", "Apple trees are cultivated worldwide."]
        let perplexities = try scorer.perplexities(instruction: "What is an apple?", input: "", facts: facts)
        print("SmolLM2-135M-Instruct PPL of the figure facts: \(perplexities.map { String(format: "%.2f", $0) })")
        for value in perplexities { XCTAssertTrue(value.isFinite && value > 1, "\(value)") }
        XCTAssertEqual(Set(perplexities).count, 3)
        XCTAssertEqual(FactKeepRule.median.keptIndices(perplexities).count, 2, "three distinct scores: the two hardest are kept")
    }
}
