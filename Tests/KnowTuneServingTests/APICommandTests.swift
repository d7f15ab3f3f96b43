// Tests the `knowtune api` command's flags: a bf16 base serves replies, and bad flags (an unknown dtype, a port out of
// range, an unknown template) fail at once with one clear message and a non-zero exit.
import Foundation
import KnowTuneTestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

final class APICommandTests: XCTestCase {
    func testABF16BaseServesAndBadFlagsFailClearly() throws {
        let model = try TinyGGUFModel.path(in: ServingFixtures.folder + "/tiny-model")
        let server = try LaunchedAPIServer(["--model_name_or_path", model, "--base_dtype", "bf16", "--template", "chatml",
                                            "--context_length", "128"])
        defer { server.stop() }
        XCTAssertTrue(server.output.contains("bf16"), server.output)
        var request = URLRequest(url: URL(string: server.baseURL + "/chat/completions")!)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: ServingFixtures.user("Hi", maxTokens: 4))
        let done = DispatchSemaphore(value: 0)
        let status = StatusLog()
        RunningServer.session.dataTask(with: request) { _, response, _ in
            status.append((response as? HTTPURLResponse)?.statusCode ?? -1)
            done.signal()
        }.resume()
        done.wait()
        XCTAssertEqual(status.values, [200])

        for (flags, message) in [(["--base_dtype", "q9"], "--base_dtype q9 is not supported"), (["--port", "70000"], "--port must be"),
                                 (["--template", "nope"], "template 'nope'")] {
            let result = try KnowTuneRunner.run(["api", "--model_name_or_path", model] + flags, timeout: 30)
            XCTAssertNotEqual(result.status, 0, result.output)
            XCTAssertTrue(result.standardError.contains(message), "\(message) in \(result.standardError)")
        }
    }
}
