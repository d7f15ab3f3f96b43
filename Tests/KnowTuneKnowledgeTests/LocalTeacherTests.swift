// Tests the `local` teacher: its backend answers as `knowtune chat` does with greedy decoding on the real
// SmolLM2-135M-Instruct; replies asked for as JSON are documents of their schema, even from a tiny random model;
// SmolLM2 answers the teacher prompts in their schemas; `build-kc --teacher local` on the real model answers every
// question; and `chat --json_schema` replies with a document (an unsupported keyword is refused by name).
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneKnowledge
import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class LocalTeacherTests: XCTestCase {
    func testBackendAnswersAsGreedyChatDoes() throws {
        let model = try GoldenModel.smolLM2()
        let backend = try LocalChatBackend(model: model, templateName: "chatml", maxNewTokens: 24)
        let question = "What is the capital of France?"
        let reply = try backend.complete(system: ChatTemplate.named("chatml").defaultSystem, user: question)
        XCTAssertTrue(reply.contains("Paris"), reply)
        XCTAssertEqual(try backend.complete(system: ChatTemplate.named("chatml").defaultSystem, user: question), reply, "greedy: same reply")
        XCTAssertEqual(backend.attempts, 1)
        XCTAssertTrue(backend.identity.contains("template=chatml greedy max_new_tokens=24"), backend.identity)

        let chat = try KnowTuneRunner.run(["chat", "--model_name_or_path", try TestPaths.require(TestPaths.smolLM2), "--template", "chatml",
                                        "--do_sample", "false", "--max_new_tokens", "24", "--prompt", question])
        XCTAssertEqual(chat.status, 0, chat.output)
        XCTAssertEqual(chat.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines),
                       reply.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func testConcurrentCallsShareBatchesAndGiveTheSequentialReplies() throws {
        let model = try ModelLoader.load(try KnowledgeFixtures.tinyModel())
        let questions = ["What is an apple?", "Name three rivers.", "Who was Marie Curie?", "What is the Danube?"]
        let schema = ResponseSchema.array(items: .string, minItems: 2, maxItems: 4)
        let alone = try LocalChatBackend(model: model, maxNewTokens: 160)
        let expected = try questions.map { try alone.complete(system: "", user: $0, schema: $0.hasPrefix("Name") ? schema : nil) }
        let together = try LocalChatBackend(model: model, maxNewTokens: 160, concurrency: 4)
        XCTAssertTrue(together.allowsConcurrentCalls)
        let replies = ReplySlots(count: questions.count)
        DispatchQueue.concurrentPerform(iterations: questions.count) { index in
            replies.set(index, try? together.complete(system: "", user: questions[index], schema: questions[index].hasPrefix("Name") ? schema : nil))
        }
        XCTAssertEqual(replies.values, expected.map { Optional($0) }, "a reply does not depend on its batch")
        let statistics = together.decodeStatistics
        XCTAssertGreaterThan(Double(statistics.decodedTokens) / Double(max(1, statistics.steps)), 1.2,
                             "overlapping calls decode together: \(statistics.decodedTokens) tokens in \(statistics.steps) steps")
    }

    func testEvenARandomModelRepliesWithDocumentsOfTheSchema() throws {
        let model = try ModelLoader.load(try KnowledgeFixtures.tinyModel())
        let backend = try LocalChatBackend(model: model, maxNewTokens: 24)
        let schema = ResponseSchema.array(items: .string, minItems: 3, maxItems: 3)
        for question in ["What is an apple?", "Name three rivers."] {
            let reply = try backend.complete(system: "", user: question, schema: schema)
            let array = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String], reply)
            XCTAssertEqual(array.count, 3, reply)
        }
        // A schema whose shortest document does not fit the budget is a skipped reply, not a broken one.
        let short = try LocalChatBackend(model: model, maxNewTokens: 8)
        XCTAssertThrowsError(try short.complete(system: "", user: "x", schema: schema)) { error in
            guard case let KnowTuneError.malformedReply(message) = error else { return XCTFail("expected malformedReply, got \(error)") }
            XCTAssertTrue(message.contains("takes 10 tokens, more than max_new_tokens 8"), message)
        }
        let folder = try KnowledgeFixtures.dataDirectory("local-random", rows: Array(KnowledgeFixtures.records.prefix(2)))
        let result = try KnowTuneRunner.run(["build-kc", "--dataset", "toy_train", "--dataset_dir", folder, "--teacher", "local",
                                          "--teacher_model", try KnowledgeFixtures.tinyModel(), "--teacher_max_new_tokens", "24"])
        XCTAssertEqual(result.status, 0, result.output)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], result.output)
        let skipped = summary["skipped"] as? [String: Int] ?? [:]
        XCTAssertNil(skipped["record.teacher_reply"], result.output)
        XCTAssertEqual(summary["records"] as? Int, 2)
    }

    func testSmolLM2RepliesInTheTeacherSchemas() throws {
        let teacher = PromptedTeacher(backend: try LocalChatBackend(model: try GoldenModel.smolLM2(), maxNewTokens: 160),
                                      prompts: try TeacherPrompts(directory: OpenAITeacherTests.promptsDirectory))
        for record in KnowledgeFixtures.records.prefix(2) {
            let facts = try teacher.extractFacts(question: record["instruction"] ?? "", answer: record["output"] ?? "")
            XCTAssertFalse(facts.isEmpty, record["instruction"] ?? "")
            XCTAssertEqual(Set(facts).count, facts.count, "repeated facts are dropped")
            var random = SplitMix64(seed: 1)
            let revised = try teacher.falsify(question: record["instruction"] ?? "", facts: facts, recordIndex: 0, random: &random)
            XCTAssertEqual(revised.count, facts.count)
            print("local teacher: \(facts) → \(revised)")
        }
    }

    func testChatWithAJSONSchemaRepliesWithADocument() throws {
        let folder = TestPaths.scratchFolder("chat-schema")
        let schema = folder + "/schema.json"
        try Data(#"{"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "additionalProperties": false}"#.utf8)
            .write(to: URL(fileURLWithPath: schema))
        let chat = try KnowTuneRunner.run(["chat", "--model_name_or_path", try TestPaths.require(TestPaths.smolLM2), "--template", "chatml",
                                        "--do_sample", "false", "--max_new_tokens", "40", "--json_schema", schema,
                                        "--prompt", "What is the capital of France? Reply in JSON."])
        XCTAssertEqual(chat.status, 0, chat.output)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(chat.standardOutput.utf8)) as? [String: String], chat.output)
        XCTAssertEqual(Set(object.keys), ["city", "country"])
        let unsupported = folder + "/unsupported.json"
        try Data(#"{"type": "string", "pattern": "^P"}"#.utf8).write(to: URL(fileURLWithPath: unsupported))
        let refused = try KnowTuneRunner.run(["chat", "--model_name_or_path", "/nonexistent", "--json_schema", unsupported, "--prompt", "x"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.standardError.contains("--json_schema \(unsupported): response schema: schema \"pattern\" is not supported"),
                      refused.standardError)
    }

    func testBuildKCWithTheRealModelAccountsForEveryQuestion() throws {
        let folder = try KnowledgeFixtures.dataDirectory("local-real", rows: Array(KnowledgeFixtures.records.prefix(2)))
        let result = try KnowTuneRunner.run(["build-kc", "--dataset", "toy_train", "--dataset_dir", folder, "--teacher", "local",
                                          "--teacher_model", try TestPaths.require(TestPaths.smolLM2), "--teacher_max_new_tokens", "160"],
                                         timeout: 300)
        XCTAssertEqual(result.status, 0, result.output)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], result.output)
        print("build-kc --teacher local on 2 records: \(summary)")
        let pairs = try KnowledgeFixtures.jsonArray(folder + "/qa/toy_train_KC.json")
        XCTAssertEqual(pairs.count, summary["output_records"] as? Int)
        for record in pairs {
            let answers = try XCTUnwrap(record["output"] as? [String])
            XCTAssertEqual(answers.count, 2)
            XCTAssertNotEqual(answers[0], answers[1])
            XCTAssertFalse(answers[0].isEmpty)
        }
        // No question is skipped for its reply: replies decoded under the schema always parse (before constrained
        // decoding, SmolLM2-135M seldom wrote the JSON the prompts ask for and most questions were skipped). A
        // one-fact answer still yields no incomplete or illogical pair, and a copied fact no non-factual one.
        let skipped = summary["skipped"] as? [String: Int] ?? [:]
        XCTAssertEqual(skipped.filter { $0.key.hasPrefix("record.") }.values.reduce(0, +), 0, result.output)
        let answered = Set(pairs.compactMap { $0["instruction"] as? String }).count
        XCTAssertGreaterThanOrEqual(answered, 1, result.output)
        XCTAssertEqual(summary["records"] as? Int, 2)
    }
}

private final class ReplySlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [String?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: String?) { lock.lock(); slots[index] = value; lock.unlock() }
    var values: [String?] { lock.lock(); defer { lock.unlock() }; return slots }
}
