// Tests the rule-based atomic-fact extractor: sentences (with abbreviations), clauses, lists with the subject
// kept, list markers, non-English text, empty input and determinism.
import KnowTuneKnowledge
import XCTest

final class AtomicFactSplitterTests: XCTestCase {
    let splitter = AtomicFactSplitter()

    func testFigureAnswerSplitsIntoSentences() {
        // Paper Fig. 2 shows 3 facts from this answer; the rules do not split the participle phrase
        // "produced by an apple tree" off, so they give 2.
        XCTAssertEqual(splitter.facts(in: "An apple is an edible fruit produced by an apple tree. Apple trees are cultivated worldwide."),
                       ["An apple is an edible fruit produced by an apple tree.", "Apple trees are cultivated worldwide."])
    }

    func testAbbreviationsDecimalsAndInitialsDoNotEndSentences() {
        XCTAssertEqual(splitter.facts(in: "Dr. Smith lives in the U.S. Army base. He is 3.5 m tall, e.g. Taller than J. R. R. Tolkien. Done!"),
                       ["Dr. Smith lives in the U.S. Army base.", "He is 3.5 m tall, e.g. Taller than J. R. R. Tolkien.", "Done!"])
        XCTAssertEqual(splitter.facts(in: "Is it red? Yes! It is \"red.\" Then it rots."),
                       ["Is it red?", "Yes!", "It is \"red.\"", "Then it rots."])
    }

    func testSemicolonsAndCoordinatedClausesKeepTheSubject() {
        XCTAssertEqual(splitter.facts(in: "Marie Curie won the Nobel Prize twice; she is the only person to win it in two sciences."),
                       ["Marie Curie won the Nobel Prize twice.", "She is the only person to win it in two sciences."])
        XCTAssertEqual(splitter.facts(in: "The river is long, and it ends in the Black Sea."),
                       ["The river is long.", "It ends in the Black Sea."])
        // A clause without its own subject gets the sentence's subject back.
        XCTAssertEqual(splitter.facts(in: "Rice is a staple food, and is grown in Asia."),
                       ["Rice is a staple food.", "Rice is grown in Asia."])
        // ", and" before a plain list item is not a clause boundary.
        XCTAssertEqual(splitter.facts(in: "She likes tea, and coffee."), ["She likes tea, and coffee."])
    }

    func testListsBecomeOneFactPerItemWithTheSubject() {
        XCTAssertEqual(splitter.facts(in: "The flag is red, white, and blue."),
                       ["The flag is red.", "The flag is white.", "The flag is blue."])
        XCTAssertEqual(splitter.facts(in: "It flows through 10 countries, including Germany, Austria, and Hungary."),
                       ["It flows through 10 countries, including Germany.", "It flows through 10 countries, including Austria.",
                        "It flows through 10 countries, including Hungary."])
        XCTAssertEqual(splitter.facts(in: "Popular fruits include apples, pears and plums."),
                       ["Popular fruits include apples.", "Popular fruits include pears.", "Popular fruits include plums."])
    }

    func testIntroductoryPhrasesAndVerbPhrasesAreNotLists() {
        XCTAssertEqual(splitter.facts(in: "In 1990, the company expanded to Europe and Asia."),
                       ["In 1990, the company expanded to Europe and Asia."])
        XCTAssertEqual(splitter.facts(in: "He was born in Paris, France, and raised in Lyon."),
                       ["He was born in Paris, France, and raised in Lyon."])
        // "or" inside an item does not start the list there; a too-long first item leaves the sentence whole.
        let toys = "You can give them puppy safe chew toys, a frozen carrot or banana, bully sticks, or cooling teethers."
        XCTAssertEqual(splitter.facts(in: toys), [toys])
    }

    func testListMarkersAndLinesAreUnits() {
        let text = "Benefits:\n- better sleep\n* more energy\n1. Less stress\n2) a longer life\n\n• calm"
        XCTAssertEqual(splitter.facts(in: text), ["Benefits.", "Better sleep.", "More energy.", "Less stress.", "A longer life.", "Calm."])
    }

    func testNonEnglishTextIsSplitOnItsOwnPunctuation() {
        XCTAssertEqual(splitter.facts(in: "苹果是一种水果。苹果树在世界各地种植。"), ["苹果是一种水果。", "苹果树在世界各地种植。"])
        XCTAssertEqual(splitter.facts(in: "Волга — самая длинная река Европы. Её длина 3530 километров"),
                       ["Волга — самая длинная река Европы.", "Её длина 3530 километров."])
        XCTAssertEqual(splitter.facts(in: "東京は日本の首都です"), ["東京は日本の首都です。"])
    }

    func testEmptyAndPunctuationOnlyInputGiveNoFacts() {
        XCTAssertEqual(splitter.facts(in: ""), [])
        XCTAssertEqual(splitter.facts(in: "  \n\t "), [])
        XCTAssertEqual(splitter.facts(in: "... !!! --- ?"), [])
    }

    func testRepeatedFactsAreKeptOnceAndOutputIsDeterministic() {
        let text = "Water boils at 100 degrees. Water boils at 100 degrees. Ice melts at 0 degrees."
        XCTAssertEqual(splitter.facts(in: text), ["Water boils at 100 degrees.", "Ice melts at 0 degrees."])
        for record in KnowledgeFixtures.records + KnowledgeFixtures.badRecords {
            let answer = record["output"] ?? ""
            XCTAssertEqual(splitter.facts(in: answer), splitter.facts(in: answer))
        }
    }

    func testSubjects() {
        XCTAssertEqual(splitter.subject(of: "Sleep training typically refers to a method."), "Sleep training")
        XCTAssertEqual(splitter.subject(of: "The Danube is long."), "The Danube")
        XCTAssertEqual(splitter.subject(of: "It is long."), "It")
        XCTAssertNil(splitter.subject(of: "In 1990, it was founded."))
        XCTAssertNil(splitter.subject(of: "Choose an exercise."))
        XCTAssertNil(splitter.subject(of: "Kids who play sports are fit."))
    }
}
