// Tests KC with the `rules` teacher: three pairs per question with the gold answer as chosen, and the three
// disturbances' properties (deleted facts missing with order kept, revised facts differ, shuffled order differs);
// skips for too few facts, unchanged text and chosen == rejected; determinism in the seed.
import KnowTuneKnowledge
import KnowTuneTensor
import XCTest

final class KnowledgeComparisonTests: XCTestCase {
    let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.records)

    func builder(seed: UInt64 = 42, ratio: Double = 0.5) throws -> KnowledgeComparisonBuilder {
        try KnowledgeComparisonBuilder(teacher: RuleTeacher(records: records), deleteRatio: ratio, seed: seed)
    }

    func testThreePairsPerQuestionWithTheDisturbancesProperties() throws {
        let builder = try self.builder()
        for record in records {
            let outcome = try builder.compare(record)
            let facts = outcome.facts
            XCTAssertGreaterThanOrEqual(facts.count, 3, record.output)
            XCTAssertEqual(outcome.chosen, record.output, "rules: the chosen side is the gold answer")
            XCTAssertEqual(outcome.pairs.map(\.disturbance), [.incomplete, .nonfactual, .illogical])
            XCTAssertEqual(outcome.skipped, [:])
            for pair in outcome.pairs { XCTAssertNotEqual(pair.rejected, outcome.chosen) }

            // Incomplete: ⌊0.5·n⌋ ≥ 1 facts deleted, the others kept in order.
            let incomplete = outcome.pairs[0]
            let deleted = try XCTUnwrap(incomplete.deletedIndices)
            XCTAssertEqual(deleted.count, max(1, facts.count / 2))
            XCTAssertEqual(deleted, deleted.sorted())
            let kept = facts.indices.filter { !deleted.contains($0) }.map { facts[$0] }
            XCTAssertEqual(incomplete.rejected, kept.joined(separator: " "))
            for index in deleted where !kept.contains(where: { $0.contains(facts[index]) }) {
                XCTAssertFalse(incomplete.rejected.contains(facts[index]), "deleted fact still present: \(facts[index])")
            }

            // Nonfactual: one revision per fact, every one different here, concatenated.
            let nonfactual = outcome.pairs[1]
            let revised = try XCTUnwrap(nonfactual.revisedFacts)
            XCTAssertEqual(revised.count, facts.count)
            for (fact, revision) in zip(facts, revised) { XCTAssertNotEqual(fact, revision) }
            XCTAssertEqual(nonfactual.rejected, revised.joined(separator: " "))

            // Illogical: a permutation other than the identity, all facts present.
            let illogical = outcome.pairs[2]
            let order = try XCTUnwrap(illogical.order)
            XCTAssertEqual(order.sorted(), Array(facts.indices))
            XCTAssertNotEqual(order, Array(facts.indices))
            XCTAssertEqual(illogical.rejected, order.map { facts[$0] }.joined(separator: " "))
            XCTAssertNotEqual(illogical.rejected, facts.joined(separator: " "))
        }
    }

    func testOutcomesDependOnlyOnSeedAndRecord() throws {
        let a = try records.map(builder(seed: 7).compare)
        let b = try records.reversed().map(builder(seed: 7).compare).reversed()
        XCTAssertEqual(a, Array(b), "order of building does not matter")
        let c = try records.map(builder(seed: 8).compare)
        XCTAssertNotEqual(a, c, "another seed gives other deletions or shuffles")
    }

    func testDeletionCounts() throws {
        let half = try builder()
        XCTAssertEqual((2...7).map { half.deletionCount(factCount: $0) }, [1, 1, 2, 2, 3, 3])
        let most = try builder(ratio: 0.9)
        XCTAssertEqual(most.deletionCount(factCount: 3), 2, "at least one fact stays")
        XCTAssertThrowsError(try builder(ratio: 0))
        XCTAssertThrowsError(try builder(ratio: 1))
    }

    func testBadInputIsSkippedAndCounted() throws {
        let bad = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.badRecords)
        let builder = try KnowledgeComparisonBuilder(teacher: RuleTeacher(records: bad), seed: 1)
        let outcomes = try bad.map(builder.compare)
        // Single fact: nothing to delete or shuffle; the revision ("is" → "is not") still works.
        XCTAssertEqual(outcomes[0].skipped, ["incomplete": "too_few_facts", "illogical": "too_few_facts"])
        XCTAssertEqual(outcomes[0].pairs.map(\.disturbance), [.nonfactual])
        XCTAssertEqual(outcomes[1].skipped, ["record": "no_facts"])
        XCTAssertEqual(outcomes[1].pairs, [])
        // Chinese without digits: no rule can revise it.
        XCTAssertEqual(outcomes[2].skipped, ["nonfactual": "unchanged"])
        XCTAssertEqual(outcomes[2].pairs.map(\.disturbance), [.incomplete, .illogical])
        XCTAssertEqual(outcomes[3].pairs.map(\.disturbance), [.incomplete, .nonfactual, .illogical], "digits are revised in any script")
        XCTAssertEqual(outcomes[4].skipped, ["record": "no_facts"])
        let dataset = KnowledgeComparisonBuilder.dataset(records: bad, outcomes: outcomes)
        XCTAssertEqual(dataset.count, 1 + 2 + 3)
        for pair in dataset { XCTAssertNotEqual(pair.chosen, pair.rejected) }
    }

    func testRejectedEqualToChosenIsSkipped() throws {
        // A teacher whose rephrasing happens to equal the revised facts.
        let builder = try KnowledgeComparisonBuilder(teacher: EchoTeacher(), seed: 1)
        let outcome = try builder.compare(SourceRecord(index: 0, instruction: "Q", output: "A is 1. B is 2."))
        XCTAssertEqual(outcome.skipped["nonfactual"], "equals_chosen")
        XCTAssertEqual(outcome.pairs.map(\.disturbance), [.incomplete, .illogical])
    }

    func testDatasetHoldsChosenRejectedPairsInRecordOrder() throws {
        let builder = try self.builder()
        let outcomes = try records.map(builder.compare)
        let dataset = KnowledgeComparisonBuilder.dataset(records: records, outcomes: outcomes.reversed())
        XCTAssertEqual(dataset.count, 3 * records.count)
        for (position, pair) in dataset.enumerated() {
            let record = records[position / 3]
            XCTAssertEqual(pair.instruction, record.instruction)
            XCTAssertEqual(pair.input, record.input)
            XCTAssertEqual(pair.chosen, record.output)
            XCTAssertEqual(pair.rejected, outcomes[position / 3].pairs[position % 3].rejected)
        }
    }
}

/// Facts split on ". "; the rephrased answer is the revision's text, so the nonfactual pair equals the chosen side.
final class EchoTeacher: Teacher {
    let identity = "echo"
    func extractFacts(question: String, answer: String) throws -> [String] { AtomicFactSplitter().facts(in: answer) }
    func rewrite(question: String, facts: [String], kept: [Int]) throws -> QAPair { QAPair(instruction: question, output: "") }
    func rephrase(question: String, answer: String) throws -> String { "X is 1. Y is 2." }
    func falsify(question: String, facts: [String], recordIndex: Int, random: inout SplitMix64) throws -> [String] {
        ["X is 1.", "Y is 2."]
    }
}
