// Tests schema-constrained decoding: the schema subset and its refusals, the byte automaton (documents it must take,
// bytes it must refuse), `remainingBytes` against a brute-force search for the shortest completion, and random walks
// under the token mask (byte vocabulary and SmolLM2's real one, random logits, budgets down to the shortest
// document) that always end in a parsable document of the schema within the budget; then the generator with a tiny
// model.
import Foundation
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneGeneration

final class JSONConstraintTests: XCTestCase {
    static let teacherPair = ResponseSchema.object(properties: [
        .init(name: "question", schema: .string), .init(name: "answer", schema: .string),
    ], required: ["question", "answer"])
    static let mixed = ResponseSchema.object(properties: [
        .init(name: "a", schema: .string), .init(name: "b", schema: .integer),
        .init(name: "tags", schema: .array(items: .literals(["\"x\"", "\"yz\"", "1", "12"]), minItems: 1, maxItems: 3)),
        .init(name: "ok", schema: .boolean), .init(name: "n", schema: .number),
    ], required: ["a", "tags"])

    private func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    private func accepts(_ schema: ResponseSchema, _ text: String) -> (accepted: Bool, complete: Bool, at: Int) {
        var state = JSONPrefixState(grammar: JSONGrammar(schema))
        for (offset, byte) in text.utf8.enumerated() where !state.consume(byte) { return (false, false, offset) }
        return (true, state.isComplete, text.utf8.count)
    }

    func testSchemaSubsetAndRefusals() throws {
        let schema = try ResponseSchema(jsonSchema: [
            "type": "object", "additionalProperties": false, "required": ["facts"],
            "properties": ["facts": ["type": "array", "items": ["type": "string"], "minItems": 1, "maxItems": 4, "description": "d"]],
        ])
        XCTAssertEqual(schema, .object(properties: [.init(name: "facts", schema: .array(items: .string, minItems: 1, maxItems: 4))],
                                       required: ["facts"]))
        XCTAssertEqual(try ResponseSchema(jsonSchema: ["enum": ["a", 2, true, NSNull()]]), .literals(["\"a\"", "2", "true", "null"]))
        XCTAssertEqual(try ResponseSchema.responseFormat(["type": "json_object"]), .anyObject)
        XCTAssertNil(try ResponseSchema.responseFormat(["type": "text"]))
        func refusal(_ schema: Any) -> String {
            do { _ = try ResponseSchema(jsonSchema: schema); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(["type": "object", "properties": ["x": ["type": "string", "pattern": "^a"]]])
            .contains("schema.properties.x \"pattern\" is not supported"))
        XCTAssertTrue(refusal(["type": "object", "additionalProperties": true]).contains("\"additionalProperties\" must be false"))
        XCTAssertTrue(refusal(["type": ["string", "null"]]).contains("\"type\" lists are not supported"))
        XCTAssertTrue(refusal(["type": "object", "properties": [:], "required": ["q"]]).contains("requires \"q\""))
        XCTAssertTrue(refusal(["type": "array", "minItems": 3, "maxItems": 2]).contains("below"))
        XCTAssertTrue(refusal(["anyOf": [["type": "string"]]]).contains("\"anyOf\" is not supported"))
        XCTAssertTrue(refusal(["type": "string", "minLength": 2]).contains("\"minLength\" is not supported"))
    }

    func testAutomatonTakesDocumentsAndRefusesTheFirstBadByte() {
        for text in [#"{"a":"x","tags":["x"]}"#, #"{ "tags" : [ 12 , "yz" ], "a" : "h\u00e9\"", "b": -0, "ok": false, "n": 1.5e-3 }"#,
                     #"{"tags":[1],"a":"é €"}"#] {
            let result = accepts(Self.mixed, text)
            XCTAssertTrue(result.accepted && result.complete, "\(text): stopped at byte \(result.at)")
        }
        for (text, at) in [(#"{"b":1}"#, 6), (#"{"a":"x","a""#, 10), (#"{"c""#, 2), (#"{"a":1"#, 5), (#"{"a":"x","b":1.5"#, 14),
                           (#"{"a":"x","tags":[]"#, 17), (#"{"a":"x","tags":["x","x","x","x"#, 28), (#"{"a":"x","tags":["xy"#, 19),
                           ("{\"a\":\"\n", 6), (#"{"a":"\q"#, 7), (#"{"a":"x"}x"#, 8)] {
            let result = accepts(Self.mixed, text)
            XCTAssertFalse(result.accepted, text)
            XCTAssertEqual(result.at, at, text)
        }
        // Strings must be UTF-8: a stray continuation byte, or a lead byte not followed by one, is refused.
        for bytes: [UInt8] in [[0x80], [0xC3, 0x28], [0xF5], [0xF4, 0x9C], [0xE0, 0x80], [0xED, 0xA0], [0xF0, 0x8F], [0xC0],
                               Array(#"\uD800"#.utf8), Array(#"\udfff"#.utf8)] {
            var state = JSONPrefixState(grammar: JSONGrammar(Self.mixed))
            XCTAssertTrue(state.consume(Array(#"{"a":""#.utf8)))
            XCTAssertFalse(state.consume(bytes), "\(bytes)")
        }
        // The edges that stay valid: escapes below the surrogates, and U+10FFFF (F4 8F BF BF) as bytes.
        XCTAssertTrue(accepts(.anyObject, #"{"k":"\uD7FF\ud000 \u00e9 "# + "\u{10FFFF}\u{800}\u{10000}" + #""}"#).complete)
        XCTAssertTrue(accepts(.anyObject, #"{"k":[1,{"z":null},true,"s"],"e":{}}"#).complete)
        XCTAssertFalse(accepts(.anyObject, #"[1]"#).accepted)
        // Numbers stay representable: two exponent digits at most, an integer at most 18 digits.
        XCTAssertTrue(accepts(.anyObject, #"{"x":-1.5e-99,"y":9E+99}"#).complete)
        XCTAssertFalse(accepts(.anyObject, #"{"x":9e999"#).accepted)
        XCTAssertTrue(accepts(.object(properties: [.init(name: "i", schema: .integer)], required: []), #"{"i":-999999999999999999}"#).complete)
        XCTAssertFalse(accepts(.object(properties: [.init(name: "i", schema: .integer)], required: []), #"{"i":1000000000000000000"#).accepted)
        // A number at its length limit cannot take a "." it could not follow with a digit.
        XCTAssertFalse(accepts(.anyObject, #"{"x":66666666666598866666665."#).accepted)
        XCTAssertTrue(accepts(.anyObject, #"{"x":6666666666659886666666.5}"#).complete)
        // Whitespace runs are bounded so that a prefix can always end.
        XCTAssertTrue(accepts(.anyObject, "{" + String(repeating: " ", count: 8) + "}").complete)
        XCTAssertFalse(accepts(.anyObject, "{" + String(repeating: " ", count: 9)).accepted)
    }

    /// Completes `state` greedily with bytes that lower `remainingBytes` by one each: if `remainingBytes` is exact, the
    /// next byte of a shortest completion always does, so this reaches a whole document in exactly that many bytes.
    private func greedyCompletion(_ start: JSONPrefixState) -> (bytes: Int, text: [UInt8])? {
        let alphabet = Array(#"{}[]",:0-1.eEatrufnlsxbc"#.utf8) + [0x5C, 0x75, 0x41]
        var state = start, text: [UInt8] = []
        while !state.isComplete {
            let needed = state.remainingBytes
            guard let (byte, next) = alphabet.lazy.compactMap({ byte -> (UInt8, JSONPrefixState)? in
                var copy = state
                return copy.consume(byte) && copy.remainingBytes == needed - 1 ? (byte, copy) : nil
            }).first else { return nil }
            state = next
            text.append(byte)
        }
        return (text.count, text)
    }

    /// `remainingBytes` never exceeds what a real document still has after each of its prefixes.
    private func assertNeverOverstated(_ schema: ResponseSchema, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        var state = JSONPrefixState(grammar: JSONGrammar(schema))
        let bytes = Array(text.utf8)
        for (offset, byte) in bytes.enumerated() {
            XCTAssertLessThanOrEqual(state.remainingBytes, bytes.count - offset, "\(text) at \(offset)", file: file, line: line)
            guard state.consume(byte) else { return XCTFail("\(text) refused at \(offset)", file: file, line: line) }
        }
        XCTAssertEqual(state.remainingBytes, 0, file: file, line: line)
    }

    func testRemainingBytesIsAttainedAndNeverOverstated() {
        let small = ResponseSchema.object(properties: [
            .init(name: "a", schema: .string), .init(name: "bb", schema: .array(items: .integer, minItems: 2, maxItems: nil)),
            .init(name: "c", schema: .boolean),
        ], required: ["a", "bb"])
        let grammar = JSONGrammar(small)
        // Worked by hand: e.g. after `{"c":t` the shortest end is `rue,"a":"","bb":[0,0]}`, 22 bytes.
        let expected = ["": 19, "{": 18, #"{""#: 17, #"{"b"#: 16, #"{"bb":"#: 13, #"{"bb":["#: 12, #"{"bb":[1"#: 11,
                        #"{"bb":[1,"#: 10, #"{"bb":[1,-"#: 10, #"{"bb":[1,2]"#: 8, #"{"bb":[1,2],"#: 7, #"{"bb":[1,2],"a":"\"#: 3,
                        #"{"bb":[1,2],"a":"\u0"#: 5, #"{"c":t"#: 22, #"{"c":true,"#: 18, #"{"a":"","bb":[0,0]"#: 1]
        for (prefix, length) in expected {
            var state = JSONPrefixState(grammar: grammar)
            XCTAssertTrue(state.consume(Array(prefix.utf8)), prefix)
            XCTAssertEqual(state.remainingBytes, length, "after \(prefix)")
            let completion = greedyCompletion(state)
            XCTAssertEqual(completion?.bytes, length, "after \(prefix): \(completion.map { String(decoding: $0.text, as: UTF8.self) } ?? "none")")
        }
        assertNeverOverstated(small, #"{ "c" : false , "bb" : [ 10 , -2 ] , "a" : "\u00e9x" }"#)
        assertNeverOverstated(Self.mixed, #"{"tags":[12,"yz"],"a":"é","n":-0.5E+2}"#)
        assertNeverOverstated(.anyObject, #"{"k":[1,{"z":null},true,"s"],"e":{}}"#)
    }

    func testNestedMinimumsAreCappedInsteadOfOverflowing() {
        var schema = ResponseSchema.string
        for _ in 0..<6 { schema = .array(items: schema, minItems: 100_000, maxItems: nil) }
        let grammar = JSONGrammar(schema)
        XCTAssertEqual(grammar.minimumLength[grammar.root], JSONGrammar.longestMinimum)
        var state = JSONPrefixState(grammar: grammar)
        XCTAssertTrue(state.consume(Array("[[[".utf8)))
        XCTAssertGreaterThanOrEqual(state.remainingBytes, JSONGrammar.longestMinimum)
        // Under the mask nothing fits a small budget, so the sequence stops rather than start a document it cannot end.
        let trie = TokenByteTrie(tokenizer: ByteTokenizer(), vocabularySize: 259)
        let constraint = JSONConstraint(grammar: grammar, trie: trie, stopTokenIds: [2])
        var logits = [Float](repeating: 1, count: 259)
        logits.withUnsafeMutableBufferPointer { constraint.mask($0.baseAddress!, remainingTokens: 64) }
        XCTAssertEqual(logits.indices.filter { logits[$0] > -.infinity }, [2])
    }

    /// Decodes with random logits under the mask until a stop token or the budget, returning the text and its length.
    private func randomWalk(_ schema: ResponseSchema, trie: TokenByteTrie, tokenizer: any Tokenizer, stop: Int32, budget: Int,
                            seed: UInt64) -> (text: String, tokens: Int) {
        let constraint = JSONConstraint(grammar: JSONGrammar(schema), trie: trie, stopTokenIds: [stop])
        var generator = SplitMix64(seed: seed)
        var logits = [Float](repeating: 0, count: trie.vocabularySize)
        var ids: [Int32] = []
        while ids.count < budget {
            // Favour a few tokens strongly at random, as a model does.
            for i in logits.indices { logits[i] = Float(generator.nextUnitFloat()) * 4 }
            logits.withUnsafeMutableBufferPointer { constraint.mask($0.baseAddress!, remainingTokens: budget - ids.count) }
            let uniform = Double(generator.nextUnitFloat())
            let token = logits.withUnsafeMutableBufferPointer { Sampler.draw($0, uniform: uniform) }
            let chosen = constraint.accept(token)
            if chosen == stop { break }
            ids.append(chosen)
        }
        return (tokenizer.decode(ids), ids.count)
    }

    private func checkWalks(tokenizer: any Tokenizer, vocabularySize: Int, stop: Int32, walks: Int) throws {
        let trie = TokenByteTrie(tokenizer: tokenizer, vocabularySize: vocabularySize)
        let facts = ResponseSchema.array(items: .string, minItems: 3, maxItems: 3)
        for (index, schema) in [Self.teacherPair, Self.mixed, facts, ResponseSchema.anyObject].enumerated() {
            let minimum = JSONGrammar(schema).minimumLength[JSONGrammar(schema).root]
            for walk in 0..<walks {
                let budget = [minimum, minimum + 3, 40, 120][walk % 4]
                let (text, tokens) = randomWalk(schema, trie: trie, tokenizer: tokenizer, stop: stop, budget: budget,
                                                seed: UInt64(100 * index + walk))
                XCTAssertLessThanOrEqual(tokens, budget)
                let value = try parse(text)
                var state = JSONPrefixState(grammar: JSONGrammar(schema))
                XCTAssertTrue(state.consume(Array(text.utf8)) && state.isComplete, "schema \(index) budget \(budget): \(text)")
                assertNeverOverstated(schema, text)
                switch schema {
                case .array: XCTAssertEqual((value as? [String])?.count, 3, text)
                case .object(let properties?, let required):
                    let object = try XCTUnwrap(value as? [String: Any], text)
                    XCTAssertTrue(required.isSubset(of: Set(object.keys)), text)
                    XCTAssertTrue(Set(object.keys).isSubset(of: Set(properties.map(\.name))), text)
                default: XCTAssertTrue(value is [String: Any], text)
                }
            }
        }
    }

    func testRandomWalksOverTheByteVocabularyEndInDocumentsWithinTheBudget() throws {
        try checkWalks(tokenizer: ByteTokenizer(), vocabularySize: 259, stop: 2, walks: 40)
    }

    func testRandomWalksOverSmolLM2sVocabularyEndInDocumentsWithinTheBudget() throws {
        let tokenizer = try TokenizerLoader.load(TestPaths.smolLM2)
        let trie = TokenByteTrie(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        XCTAssertGreaterThan(trie.plainCount, 40000)
        XCTAssertNil(trie.bytes(of: tokenizer.eosTokenId))
        try checkWalks(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize, stop: tokenizer.eosTokenId, walks: 12)
    }

    func testGeneratorKeepsConstrainedOutputValidAndLeavesOthersAlone() throws {
        // A vocabulary of bytes: the tiny model's 259 ids read as ByteTokenizer's.
        let configuration = LlamaConfiguration(
            vocabularySize: 259, hiddenSize: 24, intermediateSize: 40, layerCount: 2, headCount: 6, kvHeadCount: 2,
            tieWordEmbeddings: false, maxPositionEmbeddings: 128)
        let weights = TinyRandomModel.weights(seed: 3, configuration: configuration)
        let tokenizer = ByteTokenizer()
        let trie = TokenByteTrie(tokenizer: tokenizer, vocabularySize: 259)
        let generator = Generator(weights: weights, stopTokenIds: [2], batchSize: 3)
        let prompts = (0..<3).map { TinyRandomModel.tokens(6, seed: UInt64(40 + $0), vocabulary: 259) }
        for sample in [false, true] {
            let constraints = [JSONConstraint(grammar: JSONGrammar(Self.teacherPair), trie: trie, stopTokenIds: [2]), nil,
                               JSONConstraint(grammar: JSONGrammar(Self.mixed), trie: trie, stopTokenIds: [2])]
            let config = GenerationConfiguration(doSample: sample, maxNewTokens: 48)
            let results = try generator.generate(prompts: prompts, exampleIndices: [0, 1, 2], configuration: config, constraints: constraints)
            XCTAssertGreaterThan(generator.statistics.maskSeconds, 0)
            let free = try generator.generate(prompts: [prompts[1]], exampleIndices: [1], configuration: config)
            XCTAssertEqual(try results[1].get(), try free[0].get(), "an unconstrained prompt decodes as without constraints")
            for row in [0, 2] {
                let ids = try results[row].get()
                XCTAssertLessThanOrEqual(ids.count, 48)
                let text = generator.text(of: ids, tokenizer: tokenizer)
                XCTAssertNoThrow(try parse(text), "row \(row): \(text)")
            }
        }
    }
}
