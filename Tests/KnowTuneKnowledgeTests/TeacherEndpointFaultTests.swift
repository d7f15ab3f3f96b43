// A teacher endpoint that misbehaves, served on loopback by a real HTTP server the test starts: HTTP 500, a hang, a
// connection closed mid-body, a body that is not JSON or is cut short, a 100 MB body. Failed requests are retried a
// bounded number of times and then stop the build with the endpoint named, keeping finished records for the resume;
// unusable replies skip their item; the reply-size limit stops reading long before 100 MB.
import Foundation
import KnowTuneDistributed
import KnowTuneKnowledge
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest

final class TeacherEndpointFaultTests: XCTestCase {
    private func teacher(_ server: StubChatServer, attempts: Int = 2, timeout: TimeInterval = 2,
                         maxReplyBytes: Int = ChatEndpoint.defaultMaxReplyBytes) throws -> PromptedTeacher {
        let endpoint = ChatEndpoint(baseURL: try XCTUnwrap(URL(string: server.baseURL)), model: "stub-model", attempts: attempts,
                                    backoff: 0.01, timeout: timeout, maxReplyBytes: maxReplyBytes)
        return PromptedTeacher(endpoint: endpoint, prompts: try TeacherPrompts(directory: OpenAITeacherTests.promptsDirectory))
    }

    func testFailedRequestsAreRetriedThenStopTheCallNamingTheEndpoint() throws {
        for mode in [StubChatServer.Mode.serverError, .hang, .closeMidBody] {
            let server = try StubChatServer()
            defer { server.stop() }
            server.mode = mode
            let started = Date()
            XCTAssertThrowsError(try teacher(server).rephrase(question: "Q", answer: "A.")) { error in
                guard case let .requestFailed(message, _)? = error as? KnowTuneError else { return XCTFail("\(mode): \(error)") }
                XCTAssertTrue(message.contains(server.baseURL), "\(mode): \(message)")
            }
            XCTAssertEqual(server.requests, 2, "\(mode): two attempts, no more")
            XCTAssertLessThan(Date().timeIntervalSince(started), 2 * 2 + 5, "\(mode): bounded by attempts × timeout")
        }
    }

    func testUnusableBodiesSkipTheItem() throws {
        for mode in [StubChatServer.Mode.invalidJSON, .truncatedJSON] {
            let server = try StubChatServer()
            defer { server.stop() }
            server.mode = mode
            XCTAssertThrowsError(try teacher(server).extractFacts(question: "Q", answer: "A is B.")) { error in
                guard case let .malformedReply(message)? = error as? KnowTuneError else { return XCTFail("\(mode): \(error)") }
                XCTAssertTrue(message.contains("not a chat completion"), "\(mode): \(message)")
            }
        }
    }

    func testHugeReplyIsCutOffAtTheLimit() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        server.mode = .huge
        let limit = 1 << 20
        XCTAssertThrowsError(try teacher(server, timeout: 30, maxReplyBytes: limit).rephrase(question: "Q", answer: "A.")) { error in
            guard case let .requestFailed(message, retryable)? = error as? KnowTuneError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("longer than \(limit) bytes (--teacher_max_reply_bytes)"), message)
            XCTAssertFalse(retryable, "a reply that is too long is not asked for again")
        }
        XCTAssertEqual(server.requests, 1)
        usleep(300_000)
        // The server paces its body, so the bytes it got out show how soon the client hung up (about 1.2 MB here).
        XCTAssertLessThan(server.bodyBytesSent, 20_000_000, "the client stopped reading near the limit, long before 100 MB")
        print("huge reply: the server sent \(server.bodyBytesSent) bytes before the client hung up")
    }

    func testBuildStoppedByAFailingEndpointKeepsRecordsAndResumes() throws {
        let server = try StubChatServer()
        defer { server.stop() }
        let folder = try KnowledgeFixtures.dataDirectory("endpoint-fault")
        let options = KnowledgeBuildOptions(datasetName: "toy_train", datasetDirectory: folder, recordsPerRankPerRound: 1)
        let source = try KnowledgeBuild.loadSource(options)
        let builder = try KnowledgeComparisonBuilder(teacher: try teacher(server), seed: 1)
        server.failAfter(4)
        XCTAssertThrowsError(try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                                        communicator: SingleProcessCommunicator()))
        let cached = try String(contentsOfFile: folder + "/qa/toy_train_KC.cache.jsonl", encoding: .utf8)
        XCTAssertEqual(cached.split(separator: "\n").count, 1, "the finished record is kept")
        server.mode = .good
        let summary = try KnowledgeBuild.compare(records: source.records, source: source.entry, options: options, builder: builder,
                                                 communicator: SingleProcessCommunicator())
        XCTAssertEqual(summary.recordsFromCache, 1)
        XCTAssertEqual(summary.outputRecords, 18)
    }
}
