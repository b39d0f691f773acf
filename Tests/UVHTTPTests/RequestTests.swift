import Foundation
import Testing
@testable import UVHTTP

/// What handlers see of a request: fields, query, path parameters, body
/// and connection facts, and the body size limit.
struct RequestTests {
    @Test(arguments: ["x-token", "X-TOKEN", "X-Token", "x-ToKeN"])
    func headerLookupIgnoresCase(name: String) throws {
        var router = Router()
        router.get("/fields") { request in .text(request.headers[name] ?? "nil") }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/fields", fields: ["x-ToKeN: abc"]))
            #expect(try client.readResponse().text == "abc")
        }
    }

    @Test func repeatedHeadersAreKept() throws {
        var router = Router()
        router.get("/fields") { request in
            let headers = request.headers
            let lines = [
                headers.values("accept").joined(separator: "|"),
                headers["Accept"] ?? "nil",
                "\(headers.count)",
                headers.map(\.name).joined(separator: ","),
            ]
            return .text(lines.joined(separator: "\n"))
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/fields", fields: ["Accept: a", "X-Other: o", "accept: b", "ACCEPT: c, d"]))
            let lines = try client.readResponse().text.split(separator: "\n", omittingEmptySubsequences: false)
            try #require(lines.count == 4)
            #expect(lines[0] == "a|b|c, d")
            #expect(lines[1] == "a")
            #expect(lines[2] == "5")
            #expect(lines[3] == "Host,Accept,X-Other,accept,ACCEPT")
        }
    }

    @Test func missingHeaderIsNil() throws {
        var router = Router()
        router.get("/fields") { request in
            .text("\(request.headers["X-Missing"] == nil) \(request.headers.values("X-Missing").isEmpty)")
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/fields"))
            #expect(try client.readResponse().text == "true true")
        }
    }

    @Test func headerValueIsTrimmed() throws {
        var router = Router()
        router.get("/fields") { request in .text("[\(request.headers["X-Padded"] ?? "nil")]") }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/fields", fields: ["X-Padded: \t value with inner space \t "]))
            #expect(try client.readResponse().text == "[value with inner space]")
        }
    }

    @Test func handlerSeesDecodedQuery() throws {
        var router = Router()
        router.get("/search") { request in
            let lines = [
                request.query["q"] ?? "nil",
                request.query.items.map { "\($0.name)=\($0.value)" }.joined(separator: ","),
                request.path,
                request.target,
            ]
            return .text(lines.joined(separator: "\n"))
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/search?q=a+b%2B&q=second&flag&%C3%A9=%C3%A9"))
            let lines = try client.readResponse().text.split(separator: "\n", omittingEmptySubsequences: false)
            try #require(lines.count == 4)
            #expect(lines[0] == "a b+")
            #expect(lines[1] == "q=a b+,q=second,flag=,é=é")
            #expect(lines[2] == "/search")
            #expect(lines[3] == "/search?q=a+b%2B&q=second&flag&%C3%A9=%C3%A9")
        }
    }

    @Test func handlerSeesDecodedParameters() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("/n/a%20b%2Fc?ignored=1") + request("/n/x/"))
            #expect(try client.readResponse().text == "a b/c")
            #expect(try client.readResponse().text == "x")
        }
    }

    @Test func absoluteFormTargetIsRouted() throws {
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(request("http://localhost/n/5?x=1"))
            #expect(try client.readResponse().text == "5")
        }
    }

    /// The request and connection facts that `/facts` returns.
    struct Facts {
        var method: String
        var version: String
        var keepAlive: String
        var peer: String
        var connectionID: String

        init(_ text: String) throws {
            let parts = text.split(separator: " ").map(String.init)
            try #require(parts.count == 5)
            (method, version, keepAlive, peer, connectionID) = (parts[0], parts[1], parts[2], parts[3], parts[4])
        }
    }

    @Test func requestCarriesConnectionFacts() throws {
        var router = Router()
        router.get("/facts") { request in
            .text(
                "\(request.method) \(request.version.major).\(request.version.minor) \(request.keepAlive) "
                    + "\(request.peerAddress?.host ?? "nil") \(request.connectionID)")
        }
        try withServer(router) { server in
            let first = try server.connect()
            try first.send(request("/facts") + request("/facts", fields: ["Connection: close"]))
            let firstFacts = try Facts(try first.readResponse().text)
            let secondFacts = try Facts(try first.readResponse().text)
            let second = try server.connect()
            try second.send(request("/facts", version: "HTTP/1.0"))
            let otherFacts = try Facts(try second.readResponse().text)

            #expect(firstFacts.method == "GET")
            #expect(firstFacts.version == "1.1")
            #expect(firstFacts.keepAlive == "true")
            #expect(firstFacts.peer == "127.0.0.1")
            #expect(secondFacts.keepAlive == "false")
            #expect(otherFacts.version == "1.0")
            #expect(otherFacts.keepAlive == "false")
            #expect(firstFacts.connectionID == secondFacts.connectionID)
            #expect(firstFacts.connectionID != otherFacts.connectionID)
        }
    }

    enum Framing: String, CaseIterable, Sendable {
        case contentLength
        case chunked
    }

    static func post(_ body: [UInt8], framing: Framing, chunkSize: Int = 4096) -> [UInt8] {
        switch framing {
        case .contentLength:
            return request("/echo", body: body)
        case .chunked:
            return Array("POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                + chunked(body, chunkSize: chunkSize)
        }
    }

    @Test(arguments: Framing.allCases)
    func largeBodyIsEchoed(framing: Framing) throws {
        let body = (0..<(512 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        try withServer(standardRouter()) { server in
            let client = try server.connect()
            try client.send(Self.post(body, framing: framing) + Array(request("/hello").utf8))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Content-Length") == "524288")
            #expect(response.body.count == 512 * 1024)
            #expect(response.body == body)
            #expect(try client.readResponse().text == "Hello\n")
        }
    }

    static func smallBodyLimit() -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        configuration.maxBodyBytes = 1024
        return configuration
    }

    @Test(arguments: [(1025, Framing.contentLength), (8192, .contentLength), (1025, .chunked), (8192, .chunked)])
    func bodyOverLimitGets413(size: Int, framing: Framing) throws {
        let calls = Counter()
        try withServer(standardRouter(calls: calls), configuration: Self.smallBodyLimit()) { server in
            let client = try server.connect()
            try client.send(Self.post([UInt8](repeating: 0x62, count: size), framing: framing, chunkSize: 100))
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.reason == "Content Too Large")
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(calls.count == 0)
            #expect(try server.statistics().parseErrors == 1)
        }
    }

    @Test(arguments: Framing.allCases)
    func bodyAtLimitIsAccepted(framing: Framing) throws {
        try withServer(standardRouter(), configuration: Self.smallBodyLimit()) { server in
            let client = try server.connect()
            try client.send(Self.post([UInt8](repeating: 0x62, count: 1024), framing: framing, chunkSize: 100))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.body.count == 1024)
        }
    }
}
