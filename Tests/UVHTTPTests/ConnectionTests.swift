import Foundation
import Testing
@testable import UVHTTP

/// Connection handling: keep-alive, close, HTTP/1.0, pipelining, partial
/// input, timeouts and the connection limit.
struct ConnectionTests {
    @Test func keepAliveServesTwoRequests() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/n/1"))
            let first = try client.readResponse()
            try client.send(request("/n/2"))
            let second = try client.readResponse()
            #expect(first.text == "1")
            #expect(second.text == "2")
            #expect(first.header("Connection") == nil)
            #expect(first.header("Keep-Alive") == "timeout=20")
            #expect(try server.statistics().connectionsTotal == 1)
        }
    }

    @Test func connectionCloseEndsConnection() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/hello", fields: ["Connection: close"]))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(response.header("Keep-Alive") == nil)
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
        }
    }

    @Test func requestAfterConnectionCloseIsNotRouted() throws {
        let calls = Counter()
        try withServer(standardRouter(calls: calls)) { server in
            let client = try server.connect()
            try client.send(request("/n/1", fields: ["Connection: close"]) + request("/n/2"))
            let response = try client.readResponse()
            #expect(response.text == "1")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
            #expect(calls.count == 1)
        }
    }

    @Test func http10ClosesAfterResponse() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/hello", version: "HTTP/1.0"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Content-Length") == "6")
            #expect(response.text == "Hello\n")
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
        }
    }

    @Test func http10KeepAliveStaysOpen() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/n/1", version: "HTTP/1.0", fields: ["Connection: keep-alive"]))
            let first = try client.readResponse()
            #expect(first.header("Connection") == "keep-alive")
            #expect(first.header("Content-Length") == "1")
            try client.send(request("/n/2", version: "HTTP/1.0", fields: ["Connection: keep-alive"]))
            let second = try client.readResponse()
            #expect(second.text == "2")
            #expect(second.header("Connection") == "keep-alive")
            #expect(try server.statistics().connectionsTotal == 1)
        }
    }

    @Test func halfClosedClientGetsResponse() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/hello"))
            client.shutdownWrite()
            let response = try client.readResponse()
            #expect(response.text == "Hello\n")
            #expect(client.readUntilClosed() == .eof)
        }
    }

    struct SplitCase: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var responses: Int
        var testDescription: String { name }
    }

    static let splitCases: [SplitCase] = [
        SplitCase(
            name: "get with query and fields",
            bytes: Array(request("/n/abc?x=1&y=%20", fields: ["Accept: */*", "X-Long: \(String(repeating: "v", count: 300))"]).utf8),
            responses: 1),
        SplitCase(
            name: "post with Content-Length",
            bytes: request("/echo", body: Array("a body of some length\r\n\r\n".utf8)),
            responses: 1),
        SplitCase(
            name: "chunked post",
            bytes: Array("POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                + Array("4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: yes\r\n\r\n".utf8),
            responses: 1),
        SplitCase(name: "two pipelined gets", bytes: Array((request("/n/1") + request("/n/2")).utf8), responses: 2),
    ]

    @Test(arguments: splitCases)
    func bytewiseRequestGetsSameResponse(split: SplitCase) throws {
        try withServer(standardRouter()) { server in
            let whole = try server.connect()
            try whole.send(split.bytes)
            let bytewise = try server.connect()
            try bytewise.send(split.bytes, bytewise: true)
            for _ in 0..<split.responses {
                let expected = try whole.readResponse()
                let actual = try bytewise.readResponse()
                #expect(actual.status == expected.status)
                #expect(actual.fieldsWithoutDate == expected.fieldsWithoutDate)
                #expect(actual.body == expected.body)
            }
        }
    }

    @Test func chunkExtensionsAndTrailersAreSkipped() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(Self.splitCases[2].bytes)
            #expect(try client.readResponse().text == "Wikipedia in\r\n\r\nchunks.")
        }
    }

    @Test func chunkedBodyIsDecoded() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            let body = Array("Wikipedia in\r\n\r\nchunks.".utf8)
            try client.send(
                Array("POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                    + chunked(body, chunkSize: 5))
            let response = try client.readResponse()
            #expect(response.body == body)
        }
    }

    static func outputHighWater(_ bytes: Int) -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        configuration.outputHighWater = bytes
        return configuration
    }

    @Test(arguments: [1024 * 1024, 64])
    func pipelinedRequestsAnswerInOrder(outputHighWater: Int) throws {
        try withServer(standardRouter(), configuration: Self.outputHighWater(outputHighWater)) { server in
            let client = try server.connect()
            try client.send((0..<100).map { request("/n/\($0)") }.joined())
            var bodies: [String] = []
            for _ in 0..<100 {
                bodies.append(try client.readResponse().text)
            }
            #expect(bodies == (0..<100).map(String.init))
            #expect(client.readAvailable(wait: .milliseconds(20)).isEmpty)
        }
    }

    @Test func pipelinedRequestsSurviveBackpressure() throws {
        try withServer(standardRouter(), configuration: Self.outputHighWater(4096)) { server in
            let client = try server.connect()
            let body = [UInt8](repeating: 0x61, count: 16 * 1024)
            let requests = Array(repeating: request("/echo", body: body), count: 40).flatMap { $0 }
            // Another thread sends, because the server stops reading while
            // its responses wait for this thread to read them.
            let sendError = Recorder<String>()
            let sent = DispatchSemaphore(value: 0)
            let sender = Thread {
                do {
                    try client.send(requests)
                } catch {
                    sendError.append("\(error)")
                }
                sent.signal()
            }
            sender.start()
            var lengths: [Int] = []
            for _ in 0..<40 {
                lengths.append(try client.readResponse().body.count)
            }
            #expect(sent.wait(timeout: .now() + 5) == .success)
            #expect(sendError.all == [])
            #expect(lengths == Array(repeating: body.count, count: 40))
        }
    }

    @Test func idleConnectionTimesOut() throws {
        var configuration = HTTPServer.Configuration()
        configuration.keepAliveTimeout = 1
        try withServer(standardRouter(), configuration: configuration) { server in
            let client = try server.connect()
            try client.send(request("/hello"))
            let response = try client.readResponse()
            #expect(response.header("Keep-Alive") == "timeout=1")
            let started = ContinuousClock.now
            #expect(client.readUntilClosed(wait: .seconds(4)) == .eof)
            #expect(ContinuousClock.now - started > .milliseconds(500))
        }
    }

    @Test func connectionsOverLimitAreClosed() throws {
        var configuration = HTTPServer.Configuration()
        configuration.maxConnections = 1
        try withServer(standardRouter(), configuration: configuration) { server in
            let first = try server.connect()
            try first.send(request("/hello"))
            _ = try first.readResponse()
            let second = try server.connect()
            #expect(second.readUntilClosed() == .eof)
            let statistics = try server.statistics()
            #expect(statistics.connectionsRejected == 1)
            #expect(statistics.connectionsOpen == 1)
            try first.send(request("/hello"))
            #expect(try first.readResponse().text == "Hello\n")
        }
    }
}
