import Testing
@testable import UVHTTP

/// Input the parser or a limit rejects: one error response, then the
/// connection closes.
struct ParseErrorTests {
    struct BadInput: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var testDescription: String { name }

        init(_ name: String, _ text: String) {
            self.name = name
            bytes = Array(text.utf8)
        }
    }

    static let garbage: [BadInput] = [
        BadInput("binary", "\u{0}\u{1}\u{2}\u{3}\r\n\r\n"),
        BadInput("unknown method", "GARBAGE / HTTP/1.1\r\nHost: a\r\n\r\n"),
        BadInput("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
        BadInput("unknown version", "GET / HTTP/7.3\r\nHost: a\r\n\r\n"),
        BadInput("field without colon", "GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n"),
        BadInput("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        BadInput("bad Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"),
        BadInput("two Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        BadInput("bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        BadInput("bare LF", "GET / HTTP/1.1\nHost: a\n\n"),
    ]

    @Test(arguments: garbage)
    func garbageGets400ThenClose(input: BadInput) throws {
        let calls = Counter()
        try withServer(standardRouter(calls: calls)) { server in
            let client = try server.connect()
            try client.send(input.bytes)
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(response.text == "Bad Request\n")
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
            #expect(calls.count == 0)
            #expect(try server.statistics().parseErrors == 1)
        }
    }

    @Test func requestsBeforeGarbageGetResponses() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/n/1") + request("/n/2") + "GARBAGE\r\n\r\n" + request("/n/3"))
            #expect(try client.readResponse().text == "1")
            #expect(try client.readResponse().text == "2")
            #expect(try client.readResponse().status == 400)
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
        }
    }

    @Test func bytewiseGarbageGets400() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send("GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n", bytewise: true)
            #expect(try client.readResponse().status == 400)
            #expect(client.readUntilClosed() == .eof)
        }
    }

    static func limits(target: Int = 8 * 1024, headerCount: Int = 100, headBytes: Int = 16 * 1024) -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        configuration.maxTargetBytes = target
        configuration.maxHeaderCount = headerCount
        configuration.maxHeadBytes = headBytes
        return configuration
    }

    @Test func longTargetGets414() throws {
        try withServer(standardRouter(), configuration: Self.limits(target: 64)) { server in
            let client = try server.connect()
            try client.send(request("/n/" + String(repeating: "a", count: 61)))
            #expect(try client.readResponse().text == String(repeating: "a", count: 61))
            try client.send(request("/n/" + String(repeating: "a", count: 62)))
            let response = try client.readResponse()
            #expect(response.status == 414)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
        }
    }

    @Test func tooManyFieldsGet431() throws {
        try withServer(standardRouter(), configuration: Self.limits(headerCount: 4)) { server in
            let client = try server.connect()
            try client.send(request("/hello", fields: ["A: 1", "B: 2", "C: 3"]))
            #expect(try client.readResponse().status == 200)
            try client.send(request("/hello", fields: ["A: 1", "B: 2", "C: 3", "D: 4"]))
            let response = try client.readResponse()
            #expect(response.status == 431)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
        }
    }

    @Test func largeHeadGets431() throws {
        try withServer(standardRouter(), configuration: Self.limits(headBytes: 256)) { server in
            let client = try server.connect()
            try client.send(request("/hello", fields: ["X-Big: " + String(repeating: "v", count: 300)]))
            let response = try client.readResponse()
            #expect(response.status == 431)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
        }
    }
}
