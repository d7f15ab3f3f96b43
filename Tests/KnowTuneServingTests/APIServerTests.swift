// Tests `knowtune api` over real HTTP: models and health, the bearer key, greedy replies equal to the generator's,
// streamed deltas equal to the whole reply, stop texts, seeded choices, response_format documents, 400s that name the
// bad field, a full queue's 429 while others are served, continuous batching under concurrent clients, and a client
// that hangs up mid-stream leaving the batch.
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneServing
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class APIServerTests: XCTestCase {
    static let model = Result { try ServingFixtures.tinyModel() }

    func server(batch: Int = 4, queue: Int = 16, context: Int = 256, apiKey: String? = nil) throws -> RunningServer {
        try RunningServer(model: try Self.model.get(), batch: batch, queue: queue, context: context, apiKey: apiKey)
    }

    /// The generator's greedy reply to `text` under chatml, as `--teacher local` decodes it.
    func generatorReply(_ text: String, maxTokens: Int) throws -> (ids: [Int32], text: String) {
        let model = try Self.model.get()
        let prompt = try ChatTemplate.named("chatml").encodePrompt(text, tokenizer: model.tokenizer)
        let generator = Generator(weights: model.weights, stopTokenIds: ChatTemplate.replyStopTokenIds(tokenizer: model.tokenizer), batchSize: 1)
        let ids = try generator.generate(prompts: [prompt], exampleIndices: [0], configuration: .greedy(maxNewTokens: maxTokens))[0].get()
        return (ids, generator.text(of: ids, tokenizer: model.tokenizer))
    }

    func testModelsHealthAndTheBearerKey() throws {
        let server = try server(apiKey: "sesame")
        defer { server.stop() }
        XCTAssertEqual(try server.send("GET", "/health").status, 200, "health needs no key")
        XCTAssertEqual(try server.send("GET", "/v1/models").status, 401)
        XCTAssertEqual(try server.send("GET", "/v1/models", key: "wrong").status, 401)
        let models = try server.send("GET", "/v1/models", key: "sesame")
        XCTAssertEqual(models.status, 200)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: models.body) as? [String: Any])
        XCTAssertEqual((list["data"] as? [[String: Any]])?.first?["id"] as? String, "tiny")
        let denied = try server.chat(ServingFixtures.user("Hi"))
        XCTAssertEqual(denied.status, 401)
        XCTAssertEqual((denied.json["error"] as? [String: Any])?["type"] as? String, "invalid_request_error")
        XCTAssertEqual(try server.chat(ServingFixtures.user("Hi"), key: "sesame").status, 200)
    }

    func testGreedyReplyEqualsTheGeneratorsAndStreamingGivesTheSameText() throws {
        let server = try server()
        defer { server.stop() }
        let question = "What is the capital of France?"
        let expected = try generatorReply(question, maxTokens: 20)
        let reply = try server.chat(ServingFixtures.user(question, maxTokens: 20, extra: ["user": "someone", "stream_options": ["x": 1]]))
        XCTAssertEqual(reply.status, 200, "\(reply.json)")
        XCTAssertEqual(ServingFixtures.content(reply.json), expected.text)
        XCTAssertEqual(reply.json["object"] as? String, "chat.completion")
        let usage = try XCTUnwrap(reply.json["usage"] as? [String: Int])
        let stops = Set(ChatTemplate.replyStopTokenIds(tokenizer: server.model.tokenizer))
        XCTAssertEqual(usage["completion_tokens"], expected.ids.filter { !stops.contains($0) }.count)
        XCTAssertEqual(usage["prompt_tokens"], try ChatTemplate.named("chatml").encodePrompt(question, tokenizer: server.model.tokenizer).count)
        XCTAssertEqual(ServingFixtures.finishReason(reply.json), stops.contains(expected.ids.last!) ? "stop" : "length")

        let streamed = try server.streamEvents(ServingFixtures.user(question, maxTokens: 20))
        XCTAssertEqual(streamed.status, 200)
        XCTAssertEqual(streamed.events.last, "[DONE]")
        let chunks = try streamed.events.dropLast().map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], $0) }
        XCTAssertTrue(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        XCTAssertEqual(deltas.first?["role"] as? String, "assistant")
        XCTAssertEqual(deltas.compactMap { $0["content"] as? String }.joined(), expected.text)
        let reasons = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        XCTAssertEqual(reasons, [ServingFixtures.finishReason(reply.json)!], "one finish reason, on the last chunk")
    }

    func testStopTextsCutTheReplyInBothModes() throws {
        let server = try server()
        defer { server.stop() }
        let question = "Name a river."
        let full = try generatorReply(question, maxTokens: 24).text
        let characters = Array(full)
        XCTAssertGreaterThan(characters.count, 12, full)
        let stop = String(characters[8..<11])
        let expected = String(full[..<full.range(of: stop)!.lowerBound])
        let reply = try server.chat(ServingFixtures.user(question, maxTokens: 24, extra: ["stop": [stop, "never appears ☃"]]))
        XCTAssertEqual(ServingFixtures.content(reply.json), expected)
        XCTAssertEqual(ServingFixtures.finishReason(reply.json), "stop")
        let streamed = try server.streamEvents(ServingFixtures.user(question, maxTokens: 24, extra: ["stop": stop]))
        let text = streamed.events.dropLast().compactMap { event -> String? in
            let chunk = try? JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any]
            return ((chunk?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
        }.joined()
        XCTAssertEqual(text, expected, "the held-back tail never shows the stop text")
    }

    func testSeededChoicesRepeatAndDifferFromEachOther() throws {
        let server = try server()
        defer { server.stop() }
        let body = ServingFixtures.user("Tell me a story.", maxTokens: 12, temperature: 1.0, extra: ["n": 3, "seed": 7, "top_p": 0.95])
        let first = try server.chat(body)
        let second = try server.chat(body)
        XCTAssertEqual(first.status, 200, "\(first.json)")
        let choices = (0..<3).map { ServingFixtures.content(first.json, choice: $0) }
        XCTAssertEqual(choices, (0..<3).map { ServingFixtures.content(second.json, choice: $0) }, "same seed, same choices")
        XCTAssertEqual(Set(choices.compactMap { $0 }).count, 3, "each choice samples with its own generator: \(choices)")
        let other = try server.chat(body.merging(["seed": 8]) { _, new in new })
        XCTAssertNotEqual(ServingFixtures.content(other.json), choices[0])
    }

    func testResponseFormatRepliesAreDocumentsOfTheSchema() throws {
        let server = try server()
        defer { server.stop() }
        let schema: [String: Any] = ["type": "object", "additionalProperties": false, "required": ["facts"],
                                     "properties": ["facts": ["type": "array", "items": ["type": "string"], "minItems": 2, "maxItems": 2]]]
        let format: [String: Any] = ["type": "json_schema", "json_schema": ["name": "facts", "schema": schema, "strict": true]]
        for temperature in [0.0, 1.0] {
            let reply = try server.chat(ServingFixtures.user("List two facts.", maxTokens: 40, temperature: temperature,
                                                             extra: ["response_format": format, "seed": 3]))
            let content = try XCTUnwrap(ServingFixtures.content(reply.json), "\(reply.json)")
            let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any], content)
            XCTAssertEqual((document["facts"] as? [String])?.count, 2, content)
        }
        let object = try server.chat(ServingFixtures.user("Any JSON.", maxTokens: 16, extra: ["response_format": ["type": "json_object"]]))
        let content = try XCTUnwrap(ServingFixtures.content(object.json))
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any], content)
    }

    func testBadRequestsGet400NamingTheProblem() throws {
        let server = try server(context: 64)
        defer { server.stop() }
        let malformed = try server.send("POST", "/v1/chat/completions", body: Data("{\"messages\": [".utf8))
        XCTAssertEqual(malformed.status, 400)
        XCTAssertTrue(String(decoding: malformed.body, as: UTF8.self).contains("not valid JSON"))
        let cases: [([String: Any], String)] = [
            (["model": "tiny"], "\"messages\""),
            (ServingFixtures.user("Hi", temperature: 3), "temperature"),
            (ServingFixtures.user("Hi", extra: ["max_tokens": 0]), "max_tokens"),
            (ServingFixtures.user("Hi", extra: ["n": 99]), "\"n\""),
            (ServingFixtures.user("Hi", extra: ["stop": [1, 2]]), "\"stop\""),
            (ServingFixtures.user("Hi", extra: ["tools": [["type": "function"]]]), "\"tools\" is not supported"),
            (ServingFixtures.user("Hi", extra: ["response_format": ["type": "json_schema", "json_schema": ["name": "x", "schema": [
                "type": "object", "properties": ["a": ["type": "string", "pattern": "^x"]]]]]]), "\"pattern\" is not supported"),
            (ServingFixtures.user(String(repeating: "word ", count: 80)), "context holds 64"),
            (["messages": [["role": "assistant", "content": "Hi"]]], "role \"user\""),
            (["messages": [["role": "user", "content": "a"], ["role": "user", "content": "b"]]], "alternate"),
            (["messages": [["role": "tool", "content": "a"]]], "role \"tool\""),
        ]
        for (body, expected) in cases {
            let reply = try server.chat(body)
            XCTAssertEqual(reply.status, 400, "\(body)")
            XCTAssertTrue(ServingFixtures.errorMessage(reply.json).contains(expected), "\(expected) in \(ServingFixtures.errorMessage(reply.json))")
        }
        XCTAssertEqual(try server.send("GET", "/v1/nothing").status, 404)
        XCTAssertEqual(try server.chat(ServingFixtures.user("Still serving?", maxTokens: 4)).status, 200)
        XCTAssertEqual(server.scheduler.load.running + server.scheduler.load.waiting, 0, "a refused request leaves nothing behind")
    }

    func testConcurrentClientsShareBatchesAndAFullQueueGets429() throws {
        // SmolLM2's tens of milliseconds a token keep the first requests running while the others arrive.
        let server = try RunningServer(model: try GoldenModel.smolLM2(), batch: 2, queue: 2, context: 256)
        defer { server.stop() }
        let statuses = StatusLog()
        let group = DispatchGroup()
        for index in 0..<12 {
            group.enter()
            let body = try JSONSerialization.data(withJSONObject: ServingFixtures.user("Question \(index)?", maxTokens: 40, temperature: 1.0,
                                                                                       extra: ["seed": index]))
            server.start("POST", "/v1/chat/completions", body: body) { status, _, _ in
                statuses.append(status)
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 300), .success)
        let all = statuses.values
        XCTAssertEqual(all.count, 12)
        XCTAssertTrue(all.allSatisfy { $0 == 200 || $0 == 429 }, "\(all)")
        XCTAssertGreaterThan(all.filter { $0 == 429 }.count, 0, "2 running + 2 waiting: some of 12 are refused \(all)")
        XCTAssertGreaterThanOrEqual(all.filter { $0 == 200 }.count, 2, "\(all)")
        let statistics = server.scheduler.statistics
        XCTAssertGreaterThan(Double(statistics.decodedTokens) / Double(max(statistics.steps, 1)), 1.2,
                             "sequences decode together: \(statistics.decodedTokens) tokens in \(statistics.steps) steps")
        XCTAssertEqual(try server.chat(ServingFixtures.user("After the rush?", maxTokens: 4)).status, 200)
    }

    func testAClientThatHangsUpMidStreamLeavesTheBatch() throws {
        // SmolLM2 decodes slowly enough (tens of ms a token) that 400 tokens outlast the hang-up by far.
        let server = try RunningServer(model: try GoldenModel.smolLM2(), batch: 2, queue: 4, context: 512)
        defer { server.stop() }
        let body = try JSONSerialization.data(withJSONObject: ServingFixtures.user("Write a long essay about rivers.", maxTokens: 400,
                                                                                   temperature: 1.0, extra: ["stream": true, "seed": 1]))
        let seen = try HangingUpClient.readThenHangUp(port: server.port, body: body, until: "\"content\":\"")
        XCTAssertTrue(seen.contains("text/event-stream"), seen)
        let deadline = Date().addingTimeInterval(30)
        while server.scheduler.load.running > 0, Date() < deadline { usleep(50_000) }
        XCTAssertEqual(server.scheduler.load.running, 0, "the sequence left the batch")
        let generated = server.scheduler.statistics.generatedTokens
        XCTAssertLessThan(generated, 300, "cancelled long before its 400 tokens: \(generated)")
        let after = try server.chat(ServingFixtures.user("Hello", maxTokens: 3))
        XCTAssertEqual(after.status, 200, "\(after.json)")
    }
}

final class StatusLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func append(_ status: Int) { lock.lock(); list.append(status); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return list }
}
