// Implements a tiny OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 (an ephemeral port, one thread
// per connection) that answers the teacher prompts of data/prompts by simple rules, with switchable failures
// (HTTP 503, unusable replies); does not implement anything of HTTP beyond one request per connection.
import Foundation

final class StubChatServer: @unchecked Sendable {
    enum Mode {
        /// Sensible replies.
        case good
        /// Sensible replies, except that the fact revision answers in prose (an unusable reply).
        case proseRevisions
        /// HTTP 503 for every request.
        case unavailable
        /// HTTP 500 for every request.
        case serverError
        /// Never answers (until the client gives up).
        case hang
        /// Announces a body, sends part of it and closes the connection.
        case closeMidBody
        /// 200 with a body that is not JSON.
        case invalidJSON
        /// 200 with a chat completion cut in the middle (Content-Length matching the cut).
        case truncatedJSON
        /// 200 with a 100 MB body, sent until the client stops reading.
        case huge
    }

    /// Bytes of the reply bodies written to clients (the `huge` mode stops when the client hangs up).
    var bodyBytesSent: Int { locked { _bodyBytesSent } }
    private var _bodyBytesSent = 0

    private let lock = NSLock()
    private var listener: Int32 = -1
    private(set) var port: UInt16 = 0
    private var _mode: Mode = .good
    private var _failuresLeft = 0
    private var _requests = 0
    private var _inFlight = 0
    private var _maximumInFlight = 0
    private var _goodRequestsBeforeFailing: Int?
    /// Seconds each reply is delayed (to make concurrent requests overlap).
    var delay: TimeInterval = 0

    var mode: Mode {
        get { locked { _mode } }
        set { locked { _mode = newValue } }
    }
    var requests: Int { locked { _requests } }
    var maximumInFlight: Int { locked { _maximumInFlight } }
    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// The next `count` requests get HTTP 503.
    func failNext(_ count: Int) { locked { _failuresLeft = count } }
    /// After `count` more good replies, switch to `.unavailable`.
    func failAfter(_ count: Int) { locked { _goodRequestsBeforeFailing = count } }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    init() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw StubError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw StubError("bind/listen on 127.0.0.1 failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        let acceptor = Thread { [self] in acceptLoop() }
        acceptor.start()
    }

    /// Stops accepting; later connections are refused.
    func stop() {
        let descriptor = locked { () -> Int32 in
            let current = listener
            listener = -1
            return current
        }
        if descriptor >= 0 {
            shutdown(descriptor, Int32(SHUT_RDWR))
            close(descriptor)
        }
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let descriptor = locked { listener }
            guard descriptor >= 0 else { return }
            let connection = accept(descriptor, nil, nil)
            guard connection >= 0 else {
                if locked({ listener }) < 0 { return }
                continue
            }
            let worker = Thread { [self] in handle(connection) }
            worker.start()
        }
    }

    private func handle(_ connection: Int32) {
        defer { close(connection) }
        guard let body = readRequestBody(connection) else { return }
        let (status, reply) = respond(to: body)
        var bytes = Array(reply.utf8)
        var announced = bytes.count
        switch mode {
        case .hang:
            Thread.sleep(forTimeInterval: 30)
            return
        case .closeMidBody:
            announced = bytes.count + 1000
        case .invalidJSON:
            bytes = Array("<html>502 Bad Gateway</html>".utf8)
            announced = bytes.count
        case .truncatedJSON:
            bytes = Array(bytes.prefix(bytes.count / 2))
            announced = bytes.count
        case .huge:
            announced = 100_000_000
        default:
            break
        }
        let head = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Error")\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(announced)\r\nConnection: close\r\n\r\n"
        guard send(Array(head.utf8), to: connection) else { return }
        if mode == .huge {
            let block = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 16)
            var sent = 0
            // Paced at about 32 MB/s, so that how soon the client hangs up shows in the bytes sent (unpaced, loopback
            // takes the whole 100 MB into socket buffers before a cancellation can arrive).
            while sent < announced, send(block, to: connection) {
                sent += block.count
                usleep(2_000)
            }
            return
        }
        _ = send(bytes, to: connection)
    }

    /// Writes all of `data` (no SIGPIPE when the client has gone); false once the client stops reading.
    private func send(_ data: [UInt8], to connection: Int32) -> Bool {
        var offset = 0
        while offset < data.count {
            let written = data[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
            locked { _bodyBytesSent += written }
        }
        return true
    }

    private func readRequestBody(_ connection: Int32) -> Data? {
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let count = read(connection, &chunk, chunk.count)
            guard count > 0 else { return nil }
            buffer += chunk[0..<count]
            if headerEnd == nil, let range = Data(buffer).range(of: Data("\r\n\r\n".utf8)) {
                headerEnd = range.upperBound
                let head = String(decoding: buffer[0..<range.lowerBound], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let headerEnd, buffer.count - headerEnd >= contentLength {
                return Data(buffer[headerEnd..<(headerEnd + contentLength)])
            }
        }
    }

    private func respond(to body: Data) -> (Int, String) {
        let (mode, fail) = locked { () -> (Mode, Bool) in
            _requests += 1
            _inFlight += 1
            _maximumInFlight = max(_maximumInFlight, _inFlight)
            if let left = _goodRequestsBeforeFailing {
                if left <= 0 {
                    _mode = .unavailable
                    _goodRequestsBeforeFailing = nil
                } else {
                    _goodRequestsBeforeFailing = left - 1
                }
            }
            if _failuresLeft > 0 {
                _failuresLeft -= 1
                return (_mode, true)
            }
            return (_mode, false)
        }
        defer { locked { _inFlight -= 1 } }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if fail || mode == .unavailable { return (503, "{\"error\": \"overloaded\"}") }
        if mode == .serverError { return (500, "{\"error\": \"internal\"}") }
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let messages = object["messages"] as? [[String: Any]], let prompt = messages.last?["content"] as? String else {
            return (400, "{\"error\": \"bad request\"}")
        }
        let content = Self.reply(to: prompt, proseRevisions: mode == .proseRevisions)
        let response: [String: Any] = ["id": "stub", "object": "chat.completion", "model": object["model"] ?? "",
                                       "choices": [["index": 0, "message": ["role": "assistant", "content": content], "finish_reason": "stop"]]]
        let data = (try? JSONSerialization.data(withJSONObject: response)) ?? Data()
        return (200, String(decoding: data, as: UTF8.self))
    }

    /// Replies by the prompt's first line (the instructions of data/prompts).
    static func reply(to prompt: String, proseRevisions: Bool) -> String {
        func section(_ name: String) -> String {
            guard let start = prompt.range(of: "\n\(name): ") else { return "" }
            let rest = prompt[start.upperBound...]
            return String(rest[..<(rest.range(of: "\n\n")?.lowerBound ?? rest.endIndex)])
        }
        func facts() -> [String] {
            guard let start = prompt.range(of: "Facts:\n") else { return [] }
            return prompt[start.upperBound...].split(separator: "\n").prefix { $0.first?.isNumber == true }
                .map { String($0.drop(while: { $0 != " " }).dropFirst()) }
        }
        func json(_ value: Any) -> String {
            String(decoding: (try? JSONSerialization.data(withJSONObject: value)) ?? Data(), as: UTF8.self)
        }
        if prompt.hasPrefix("Split the answer below into atomic facts") {
            let answer = section("Answer")
            let parts = answer.components(separatedBy: ". ").map { $0.hasSuffix(".") ? $0 : $0 + "." }.filter { $0.count > 1 }
            return "```json\n" + json(parts) + "\n```"
        }
        if prompt.hasPrefix("Rephrase the answer below") { return "In other words: " + section("Answer") }
        if prompt.hasPrefix("Revise each fact below") {
            return proseRevisions ? "Sorry, I cannot make facts false." : json(facts().map { "It is false that " + $0 })
        }
        if prompt.hasPrefix("Write one new question-answer pair") {
            return "Here it is: " + json(["question": "What else is true about: " + section("Original question"), "answer": facts().joined(separator: " ")])
        }
        if prompt.hasPrefix("Compare two answers") {
            let a = section("Answer A").split(separator: " ").count, b = section("Answer B").split(separator: " ").count
            // Equal answers go to A: a position bias that asking in both orders must cancel.
            return json(["winner": b > a ? "B" : "A"])
        }
        return "unknown prompt"
    }
}

struct StubError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
