// Tests the `rules` teacher: the KA question's topic, the rewritten answer, and the non-factual revisions
// (numbers and dates, entity swaps across records, copula negation), all deterministic.
import KnowTuneTensor
import XCTest
@testable import KnowTuneKnowledge

final class RuleTeacherTests: XCTestCase {
    func testRewriteAsksAboutTheSubjectInTheQuestionsTerms() throws {
        let teacher = RuleTeacher()
        let facts = ["Sleep training typically refers to a method of teaching babies to sleep.", "There are different methods.",
                     "A doctor should be consulted first."]
        let pair = try teacher.rewrite(question: "What is sleep training?", facts: facts, kept: [0, 2])
        XCTAssertEqual(pair.instruction, "What else should one know about sleep training?")
        XCTAssertEqual(pair.output, facts[0] + " " + facts[2])
        XCTAssertEqual(pair.input, "")
    }

    func testPronounSubjectsLookBackToTheLastNamedSubject() throws {
        let teacher = RuleTeacher()
        let facts = ["Skiing is a great way to get outside.", "It also keeps you active.", "It is popular in winter."]
        XCTAssertEqual(try teacher.rewrite(question: "Why do people like to ski?", facts: facts, kept: [2]).instruction,
                       "What else should one know about Skiing?")
        // A subject the question does not name is used as written, its leading article lowercased.
        XCTAssertEqual(try teacher.rewrite(question: "Why?", facts: ["The Danube is long."], kept: [0]).instruction,
                       "What else should one know about the Danube?")
    }

    func testQuestionTopicAndFallback() throws {
        XCTAssertEqual(RuleTeacher.questionTopic("What is (are) Gilbert syndrome ?"), "Gilbert syndrome")
        XCTAssertEqual(RuleTeacher.questionTopic("What was the US civil war about?"), "US civil war")
        XCTAssertNil(RuleTeacher.questionTopic("Give me a quick exercise I can do every day"))
        let pair = try RuleTeacher().rewrite(question: "Give me a quick exercise", facts: ["Choose push ups."], kept: [0])
        XCTAssertEqual(pair.instruction, "Regarding \"Give me a quick exercise\": what else should one know?")
        XCTAssertThrowsError(try RuleTeacher().rewrite(question: "Q", facts: ["A."], kept: []))
    }

    func testNumbersDatesAndNumberWordsChange() {
        for seed in UInt64(0)..<20 {
            var random = SplitMix64(seed: seed)
            let fact = "It was built in 1889 for 7,500,000 francs, is 330.5 m tall, opened in March, on a Monday, after two years."
            let revised = FactFalsifierProbe.numbers(fact, random: &random)
            XCTAssertNotEqual(revised, fact)
            XCTAssertFalse(revised.contains("1889"), revised)
            XCTAssertFalse(revised.contains("7,500,000"), revised)
            XCTAssertFalse(revised.contains("330.5"), revised)
            XCTAssertFalse(revised.contains("March"), revised)
            XCTAssertFalse(revised.contains("Monday"), revised)
            XCTAssertFalse(revised.contains("two years"), revised)
            XCTAssertTrue(revised.range(of: #"\d,\d{3},\d{3} francs"#, options: .regularExpression) != nil, revised)
        }
        var random = SplitMix64(seed: 1)
        // Digits inside words ("COVID19", "2nd", "B12") are not numbers.
        XCTAssertNil(FactFalsifierProbe.numbersOrNil("The 2nd dose of B12 helps.", random: &random))
    }

    func testNegation() {
        let cases = [
            ("An apple is an edible fruit.", "An apple is not an edible fruit."),
            ("Apples are not blue.", "Apples are blue."),
            ("Dogs can swim.", "Dogs cannot swim."),
            ("Birds cannot read.", "Birds can read."),
            ("A spider has eight legs.", "A spider does not have eight legs."),
            ("She has been to Rome.", "She has not been to Rome."),
            ("They won't stop.", "They will stop."),
        ]
        for (fact, expected) in cases { XCTAssertEqual(FactFalsifierProbe.negated(fact), expected) }
        XCTAssertNil(FactFalsifierProbe.negated("Yes."))
        XCTAssertNil(FactFalsifierProbe.negated("Is it red?"), "the first word is never negated")
    }

    func testEntitiesAreSwappedWithEntitiesOfOtherRecords() throws {
        let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.records)
        let teacher = RuleTeacher(records: records)
        let pool = teacher.falsifier.pool
        XCTAssertTrue(pool.entries.contains { $0.text == "Central Asia" && $0.record == 0 })
        XCTAssertTrue(pool.entries.contains { $0.text == "Guido van Rossum" } == false, "\"van\" is lowercase: not one name")
        XCTAssertFalse(pool.entries.contains { $0.text == "Apple" }, "a capitalised first word alone is not an entity")
        let ownEntities = Set(pool.entries.filter { $0.record == 3 }.map(\.text))
        for seed in UInt64(0)..<30 {
            var random = SplitMix64(seed: seed)
            let fact = "Edmund Hillary and Tenzing Norgay climbed it."
            let revised = teacher.falsifier.falsify(fact, question: "Tell me about Mount Everest.", context: fact, recordIndex: 3,
                                                    random: &random)
            XCTAssertNotEqual(revised, fact)
            // The swap is an entity of another record (never of record 3), or the fact was negated instead.
            if !revised.contains(" not ") && !revised.contains("did not") {
                let inserted = pool.entries.filter { $0.record != 3 && revised.contains($0.text) }
                XCTAssertFalse(inserted.isEmpty, revised)
                XCTAssertTrue(ownEntities.isDisjoint(with: inserted.map(\.text)), revised)
            }
        }
    }

    func testEntityRunsStopAtPunctuation() throws {
        let pool = EntityPool(answers: [(0, "The Australian Prudential Regulatory Authority (APRA) regulates banks in New South Wales, Victoria and the Northern Territory.")])
        XCTAssertEqual(pool.entries.map(\.text), ["Australian Prudential Regulatory Authority", "APRA", "New South Wales", "Victoria", "Northern Territory"])
        let teacher = RuleTeacher(entityPool: EntityPool(answers: [(1, "It is sold in Brazil.")]))
        var random = SplitMix64(seed: 4)
        let revised = try teacher.falsify(question: "Who regulates banks?", facts: ["Banks answer to the Reserve Bank (RBA) only."], recordIndex: 0,
                                          random: &random)
        XCTAssertTrue([["Banks answer to the Brazil (RBA) only."], ["Banks answer to the Reserve Bank (Brazil) only."]].contains(revised),
                      "\(revised)")
    }

    func testFalsifyIsDeterministicAndKeepsTheFactCount() throws {
        let records = KnowledgeFixtures.sourceRecords(KnowledgeFixtures.records)
        let teacher = RuleTeacher(records: records)
        for record in records {
            let facts = try teacher.extractFacts(question: record.question, answer: record.output)
            var first = SplitMix64(seed: 9), second = SplitMix64(seed: 9)
            let a = try teacher.falsify(question: record.question, facts: facts, recordIndex: record.index, random: &first)
            let b = try teacher.falsify(question: record.question, facts: facts, recordIndex: record.index, random: &second)
            XCTAssertEqual(a, b)
            XCTAssertEqual(a.count, facts.count)
            // Every fact of these records has something a rule can change.
            for (fact, revised) in zip(facts, a) { XCTAssertNotEqual(fact, revised) }
        }
    }

    func testTextWithoutEditableWordsIsUnchanged() throws {
        var random = SplitMix64(seed: 3)
        let teacher = RuleTeacher()
        XCTAssertEqual(try teacher.falsify(question: "?", facts: ["苹果是一种水果。", "Yes."], recordIndex: 0, random: &random),
                       ["苹果是一种水果。", "Yes."])
        // Digits are changed in any script.
        XCTAssertNotEqual(try teacher.falsify(question: "?", facts: ["Её длина 3530 километров."], recordIndex: 0, random: &random),
                          ["Её длина 3530 километров."])
    }
}

/// The falsifier's single-kind edits.
enum FactFalsifierProbe {
    static func numbers(_ fact: String, random: inout SplitMix64) -> String {
        FactFalsifier.changingNumbers(fact, random: &random) ?? fact
    }

    static func numbersOrNil(_ fact: String, random: inout SplitMix64) -> String? {
        FactFalsifier.changingNumbers(fact, random: &random)
    }

    static func negated(_ fact: String) -> String? { FactFalsifier.negating(fact) }
}
