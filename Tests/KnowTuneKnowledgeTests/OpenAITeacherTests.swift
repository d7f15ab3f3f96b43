// Tests the `openai` teacher against a local stub server on 127.0.0.1: the prompts of data/prompts, KC and KA
// builds through it with concurrent requests, retries with backoff, unusable replies skipped and counted, and a
// failing endpoint that stops the build with a clear error while finished records stay cached for the resume.
import Foundation
import KnowTuneDistributed
import KnowTuneKnowledge
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class OpenAITeacherTests: XCTestCase {
    static let promptsDirectory = TestPaths.repositoryRoot.appendingPathComponent("data/prompts").path

    func teacher(_ server: StubChatServer, attempts: Int = 3) throws -> PromptedTeacher {
        let endpoint = ChatEndpoint(baseURL: try XCTUnwrap(URL(string: server.baseURL)), model: "stub-model", apiKey: "test-key",
                                    attempts: attempts, backoff: 0.01, timeout: 10)
        return PromptedTeacher(endpoint: endpoint, prompts: try TeacherPrompts(directory: Self.promptsDirectory))
    }

    func testPromptFilesHaveTheirPlaceholders() throws {
        let prompts = try TeacherPrompts(directory: Self.promptsDirectory)
        XCTAssertTrue(prompts.extractFacts.contains("{answer}"))
        XCTAssertEqual(TeacherPrompts.fill("Q: {question} A: {answer} {other}", ["question": "{answer}", "answer": "x"]),
                       "Q: {answer} A: x {other}", "values are not substituted again; unknown names stay")
        XCTAssertEqual(TeacherPrompts.numbered(["a", "b"]), "1. a\n2. b")
        let empty = KnowledgeFixtures.root + "/no-prompts"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try "Revise: {facts}".write(toFile: empty + "/falsify_facts.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TeacherPrompts(directory: empty)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("extract_facts.txt is missing"), message)
            XCTAssertTrue(message.contains("falsify_facts.txt lacks {question}, {count}"), message)
        }
    }

    func testTeacherCallsAndParsesReplies() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        let teacher = try teacher(server)
        let facts = try teacher.extractFacts(question: "What is an apple?", answer: "An apple is a fruit. Apple trees grow worldwide.")
        XCTAssertEqual(facts, ["An apple is a fruit.", "Apple trees grow worldwide."], "JSON inside a ``` fence")
        XCTAssertEqual(try teacher.extractFacts(question: "Q", answer: "  "), [], "no request for an empty answer")
        XCTAssertEqual(try teacher.rephrase(question: "Q", answer: "A is B."), "In other words: A is B.")
        let pair = try teacher.rewrite(question: "What is an apple?", facts: facts, kept: [1])
        XCTAssertEqual(pair, QAPair(instruction: "What else is true about: What is an apple?", output: "Apple trees grow worldwide."))
        var random = SplitMix64(seed: 1)
        XCTAssertEqual(try teacher.falsify(question: "Q", facts: facts, recordIndex: 0, random: &random),
                       facts.map { "It is false that " + $0 })
        XCTAssertEqual(server.requests, 4)
        XCTAssertTrue(teacher.identity.contains("stub-model"))
    }

    func testRetriesWithBackoffThenSucceeds() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        server.failNext(2)
        XCTAssertEqual(try teacher(server, attempts: 3).rephrase(question: "Q", answer: "A."), "In other words: A.")
        XCTAssertEqual(server.requests, 3)
        server.failNext(5)
        XCTAssertThrowsError(try teacher(server, attempts: 2).rephrase(question: "Q", answer: "A.")) { error in
            guard case KnowTuneError.requestFailed(let message, _)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("HTTP 503"), message)
        }
    }

    func testKCThroughTheTeacherWithConcurrentRequestsAndSkippedReplies() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        server.delay = 0.05
        server.mode = .proseRevisions
        let folder = try KnowledgeFixtures.dataDirectory("openai-kc")
        let options = KnowledgeBuildOptions(datasetName: "toy_train", datasetDirectory: folder, recordsPerRankPerRound: 6, concurrency: 4)
        let source = try KnowledgeBuild.loadSource(options)
        let builder = try KnowledgeComparisonBuilder(teacher: try teacher(server, attempts: 2), seed: 1)
        let summary = try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                                 communicator: SingleProcessCommunicator())
        XCTAssertGreaterThan(server.maximumInFlight, 1, "requests overlap")
        XCTAssertEqual(summary.pairs, ["incomplete": 6, "nonfactual": 0, "illogical": 6])
        XCTAssertEqual(summary.skipped, ["nonfactual.teacher_reply": 6], "prose instead of a JSON array: retried, then skipped")
        let records = try KnowledgeFixtures.jsonArray(folder + "/qa/toy_train_KC.json")
        XCTAssertEqual(records.count, 12)
        for record in records {
            let pair = try XCTUnwrap(record["output"] as? [String])
            XCTAssertTrue(pair[0].hasPrefix("In other words: "), pair[0])
        }
    }

    func testFailingEndpointStopsTheBuildAndTheResumeFinishesIt() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        let folder = try KnowledgeFixtures.dataDirectory("openai-resume")
        let options = KnowledgeBuildOptions(datasetName: "toy_train", datasetDirectory: folder, recordsPerRankPerRound: 1)
        let source = try KnowledgeBuild.loadSource(options)
        let builder = try KnowledgeComparisonBuilder(teacher: try teacher(server, attempts: 2), seed: 1)
        // Each record takes 3 requests (extract, rephrase, revise): the server dies during the third record.
        server.failAfter(7)
        XCTAssertThrowsError(try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                                        communicator: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".contains("request failed"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/qa/toy_train_KC.json"))
        let cached = try String(contentsOfFile: folder + "/qa/toy_train_KC.cache.jsonl", encoding: .utf8)
        XCTAssertEqual(cached.split(separator: "\n").count, 2, "the two finished records are kept")

        server.mode = .good
        let before = server.requests
        let summary = try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                                 communicator: SingleProcessCommunicator())
        XCTAssertEqual(summary.recordsFromCache, 2)
        XCTAssertEqual(server.requests - before, 3 * 4, "only the four missing records are asked for")
        XCTAssertEqual(summary.outputRecords, 18)
    }

    func testCommandLineUsesTheEndpoint() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        let folder = try KnowledgeFixtures.dataDirectory("openai-cli")
        let arguments = ["build-kc", "--dataset", "toy_train", "--dataset_dir", folder, "--teacher", "openai", "--openai_model", "stub",
                         "--openai_base_url", server.baseURL, "--prompts_dir", Self.promptsDirectory, "--teacher_backoff", "0.01"]
        let result = try KnowTuneRunner.run(arguments, ranks: 2)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(server.requests, 3 * 6)
        XCTAssertEqual(try KnowledgeFixtures.jsonArray(folder + "/qa/toy_train_KC.json").count, 18)

        // KA: the teacher extracts and rewrites, the model scores.
        let ka = try KnowTuneRunner.run(["build-ka", "--model_name_or_path", try KnowledgeFixtures.tinyModel()] + arguments.dropFirst())
        XCTAssertEqual(ka.status, 0, ka.output)
        XCTAssertEqual(server.requests, 3 * 6 + 2 * 6)
        let augmented = try KnowledgeFixtures.jsonArray(folder + "/qa/toy_train_KA.json")
        XCTAssertEqual(augmented.count, 12)
        XCTAssertEqual(augmented[6]["instruction"] as? String, "What else is true about: What is an apple?")

        server.stop()
        let refused = try KnowTuneRunner.run(arguments + ["--overwrite_cache", "--teacher_retries", "1"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.occurrences(of: "request failed"), 1, refused.output)
        let missingModel = try KnowTuneRunner.run(Array(arguments.prefix(5)) + ["--teacher", "openai"])
        XCTAssertNotEqual(missingModel.status, 0)
        XCTAssertTrue(missingModel.standardError.contains("needs --openai_model"), missingModel.output)
    }
}
