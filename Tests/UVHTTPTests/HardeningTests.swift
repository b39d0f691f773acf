import Foundation
import Glibc
import Testing
@testable import UVHTTP

/// Hostile and unusual input: request smuggling, malformed framing,
/// oversized and slow requests, limits, timeouts, graceful stop and
/// backpressure, as docs/hardening.md states them.
///
/// The suite runs its tests one at a time, because the timeout tests measure
/// delays of a few hundred milliseconds and the resource tests measure the
/// whole process.
@Suite(.serialized)
struct HardeningTests {
    // MARK: Routes

    /// Paths whose handler calls every case checks.
    static let trackedPaths = ["/", "/second", "/smuggled"]

    /// `/`, `/second` and `/smuggled` for every method, counting calls in
    /// `calls`; `/probe` to check that a connection still works; GET-only
    /// `/hello`; POST `/echo`; `/small?n=` returning `n`; `/big` returning
    /// `bigBody` bytes; `/large` returning `largeBody` bytes.
    static func router(calls: PathCounter, bigBody: Int = 8 * 1024 * 1024, largeBody: Int = 128 * 1024) -> Router {
        var router = Router()
        for path in trackedPaths {
            router.add(nil, path) { _ in
                calls.record(path)
                return .text("reached \(path)\n")
            }
        }
        router.get("/probe") { _ in .text("probe\n") }
        router.get("/hello") { _ in
            calls.record("/hello")
            return .text("Hello\n")
        }
        router.post("/echo") { request in
            calls.record("/echo")
            return Response(headers: ["Content-Type": "application/octet-stream"], body: request.bodyBytes)
        }
        router.get("/small") { request in .text(request.query["n"] ?? "-") }
        router.get("/big") { _ in
            calls.record("/big")
            return Response(body: [UInt8](repeating: UInt8(ascii: "b"), count: bigBody))
        }
        router.get("/large") { _ in Response(body: [UInt8](repeating: UInt8(ascii: "l"), count: largeBody)) }
        return router
    }

    static func configuration(_ change: (inout HTTPServer.Configuration) -> Void) -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        change(&configuration)
        return configuration
    }

    // MARK: The attack table

    /// How the client writes a case's bytes.
    enum Delivery: String, Sendable, CaseIterable, CustomTestStringConvertible {
        case whole
        case bytewise
        var testDescription: String { rawValue == "whole" ? "in one write" : "one byte per write" }
    }

    /// One row of the attack table: the bytes a client sends, and the
    /// responses the server must send.
    struct AttackCase: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        /// Statuses of the responses, in order.
        var statuses: [Int]
        /// Whether the server must close the connection after the last
        /// response. When false, the connection must still serve a request.
        var closes: Bool
        /// Handler calls per path; tracked paths not listed must get none.
        var routed: [String: Int] = [:]
        /// Indexes of the responses to HEAD requests, which carry no body.
        var headResponses: Set<Int> = []
        /// Expected bodies by response index, where one is checked.
        var bodies: [Int: String] = [:]
        /// Whether the client shuts down its sending side after the bytes.
        /// The server may respond before it reads that EOF, so the response
        /// need not carry `Connection: close`.
        var halfCloses = false
        var configuration = HTTPServer.Configuration()
        var testDescription: String { name }

        /// A request the server must reject with `status` and a close; the
        /// request `smuggled` follows it and must never be routed.
        static func rejected(
            _ name: String, _ text: String, _ status: Int,
            configuration: HTTPServer.Configuration = HTTPServer.Configuration()
        ) -> AttackCase {
            AttackCase(
                name: name, bytes: Array((text + smuggled).utf8), statuses: [status], closes: true,
                configuration: configuration)
        }
    }

    /// A complete request that must never reach its route when it follows a
    /// rejected one.
    static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

    static let smallBodyLimit = configuration { $0.maxBodyBytes = 1024 }

    static let attacks: [AttackCase] = [
        .rejected(
            "Content-Length and Transfer-Encoding together",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        .rejected(
            "Transfer-Encoding not ending in chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        .rejected(
            "chunked applied twice",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
        .rejected("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: v1\r\n cont\r\n\r\n", 400),
        .rejected(
            "obs-fold hiding Content-Length",
            "GET / HTTP/1.1\r\nHost: a\r\nX: v1\r\n Content-Length: \(smuggled.utf8.count)\r\n\r\n", 400),
        .rejected(
            "bare LF in the header",
            "POST / HTTP/1.1\r\nHost: a\r\nx:x\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n", 400),
        .rejected(
            "bare CR in a field value",
            "POST / HTTP/1.1\r\nHost: a\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n", 400),
        .rejected("space before colon", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\nabcd", 400),
        .rejected("empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400),
        .rejected(
            "differing Content-Length values",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n"
                + smuggled, 400),
        .rejected("Content-Length +1", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nA", 400),
        .rejected("Content-Length 0x1", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\nA", 400),
        .rejected("Content-Length -1", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nA", 400),
        .rejected("empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\nA", 400),
        .rejected("Content-Length 1 1", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 1\r\n\r\nA", 400),
        .rejected(
            "Content-Length overflow",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\nA", 400),
        .rejected(
            "chunk size overflow",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nA\r\n0\r\n\r\n", 400),
        .rejected(
            "chunk longer than its size",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nSEE-THIS\r\n0\r\n\r\n", 400),
        .rejected(
            "chunk extension over 16 KiB",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;"
                + String(repeating: "a", count: 17000) + "\r\nAA\r\n0\r\n\r\n", 413),
        .rejected(
            "Transfer-Encoding identity",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        .rejected(
            "Transfer-Encoding gzip, chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        .rejected(
            "Transfer-Encoding in HTTP/1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        .rejected("missing Host", "GET / HTTP/1.1\r\n\r\n", 400),
        .rejected("repeated Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        .rejected("unsupported Expect", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
        .rejected(
            "20000-byte field at the default limit",
            "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 20000) + "\r\n\r\n", 431),
        .rejected(
            "1001 fields at the default limit",
            "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "h: v\r\n", count: 1001) + "\r\n", 431),
        .rejected(
            "9000-byte target at the default limit",
            "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        .rejected(
            "Content-Length over the default body limit",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413),
        .rejected(
            "Content-Length over a 1 KiB body limit",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n" + String(repeating: "b", count: 1025), 413,
            configuration: smallBodyLimit),
        .rejected(
            "chunked body over a 1 KiB body limit",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(repeating: "100\r\n" + String(repeating: "c", count: 256) + "\r\n", count: 5) + "0\r\n\r\n",
            413, configuration: smallBodyLimit),
        AttackCase(
            name: "Connection: close then a second request",
            bytes: Array((request("/", fields: ["Connection: close"]) + request("/second")).utf8),
            statuses: [200], closes: true, routed: ["/": 1]),
        AttackCase(
            name: "HTTP/1.0 request",
            bytes: Array("GET / HTTP/1.0\r\n\r\n".utf8),
            statuses: [200], closes: true, routed: ["/": 1], bodies: [0: "reached /\n"]),
        AttackCase(
            name: "leading CRLF",
            bytes: Array("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8),
            statuses: [200], closes: false, routed: ["/": 1]),
        AttackCase(
            name: "HEAD then GET",
            bytes: Array((request("/", method: "HEAD") + request("/")).utf8),
            statuses: [200, 200], closes: false, routed: ["/": 2], headResponses: [0],
            bodies: [0: "", 1: "reached /\n"]),
        AttackCase(
            name: "request then half-close",
            bytes: Array(request("/").utf8),
            statuses: [200], closes: true, routed: ["/": 1], bodies: [0: "reached /\n"], halfCloses: true),
    ]

    @Test(arguments: attacks, Delivery.allCases)
    func attack(_ attack: AttackCase, delivery: Delivery) throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls), configuration: attack.configuration) { server in
            let client = try server.connect()
            _ = client.sendUntilError(attack.bytes, bytewise: delivery == .bytewise)
            if attack.halfCloses {
                client.shutdownWrite()
            }
            var responses: [HTTPResponse] = []
            for index in attack.statuses.indices {
                responses.append(try client.readResponse(head: attack.headResponses.contains(index)))
            }
            #expect(responses.map(\.status) == attack.statuses)
            for (index, body) in attack.bodies {
                #expect(responses[index].text == body, "body of response \(index)")
            }
            // Every HEAD request in the table is for `/`, whose GET body is
            // "reached /\n".
            for index in attack.headResponses {
                #expect(responses[index].header("Content-Length") == "10", "length of HEAD response \(index)")
            }
            if attack.closes {
                if !attack.halfCloses {
                    #expect(responses.last?.header("Connection") == "close")
                }
                #expect(client.readUntilClosed() == .eof)
                #expect(String(decoding: client.buffered, as: UTF8.self) == "", "nothing follows the last response")
            } else {
                #expect(responses.last?.header("Connection") == nil)
                try client.send(request("/probe"))
                #expect(try client.readResponse().text == "probe\n")
            }
            for path in Self.trackedPaths {
                #expect(calls.count(path) == attack.routed[path, default: 0], "handler calls for \(path)")
            }
            let rejected = attack.statuses.contains { $0 >= 400 }
            #expect(try server.statistics().parseErrors == (rejected ? 1 : 0))
        }
    }

    // MARK: Limits enforced before the request ends

    struct UnfinishedHead: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var status: Int
        var testDescription: String { name }
    }

    /// Heads that cross a default limit and never end: the response must
    /// not wait for the end of the header.
    static let unfinishedHeads: [UnfinishedHead] = [
        UnfinishedHead(
            name: "field over 16 KiB",
            text: "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 17 * 1024), status: 431),
        UnfinishedHead(
            name: "101 fields",
            text: "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "h: v\r\n", count: 101), status: 431),
        UnfinishedHead(name: "target over 8 KiB", text: "GET /" + String(repeating: "a", count: 8 * 1024 + 1), status: 414),
    ]

    @Test(arguments: unfinishedHeads)
    func limitRejectsBeforeHeadEnds(_ head: UnfinishedHead) throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls)) { server in
            let client = try server.connect()
            try client.send(head.text)
            let response = try client.readResponse()
            #expect(response.status == head.status)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(calls.count("/") == 0)
        }
    }

    /// A client still sending the body it announced gets the 413. Its further
    /// writes are read and discarded (lingering close) instead of being met
    /// with a reset, and the server closes once the client ends.
    @Test func oversizedBodyIsDiscardedWhileLingering() throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls)) { server in
            let client = try RawSocket(port: server.port)
            let head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n"
            #expect(client.sendAll(Array(head.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)))
            let response = try client.readResponse()
            #expect(response.status == 413)
            #expect(response.header("Connection") == "close")
            var sent = true
            for _ in 0..<16 {
                Thread.sleep(forTimeInterval: 0.01)
                sent = sent && client.sendAll([UInt8](repeating: UInt8(ascii: "x"), count: 16 * 1024))
            }
            #expect(sent, "the server kept reading the body after its response")
            client.shutdownWrite()
            let (extra, ending) = client.drainUntilClosed(wait: .seconds(5))
            #expect(ending == .eof)
            #expect(extra == 0, "nothing follows the 413")
            #expect(calls.count("/echo") == 0)
        }
    }

    // MARK: Timeouts

    /// Sends `bytes` one at a time, `interval` apart, until input arrives.
    /// Returns when input arrived, measured from the first byte, or nil when
    /// every byte went out first.
    static func dribble(_ bytes: [UInt8], to client: HTTPClient, every interval: Duration) -> Duration? {
        let started = ContinuousClock.now
        for byte in bytes {
            guard client.sendUntilError([byte], bytewise: false) == 1 else { break }
            if client.hasInput(wait: interval) {
                return ContinuousClock.now - started
            }
        }
        return nil
    }

    @Test func slowHeaderIsCutAtHeaderDeadline() throws {
        let calls = PathCounter()
        let configuration = Self.configuration { $0.headerTimeout = 0.3 }
        try withServer(Self.router(calls: calls), configuration: configuration) { server in
            let client = try server.connect()
            // 39 bytes at 100 ms take 3.9 s, far past the 0.3 s deadline.
            let head = Array(("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + String(repeating: "s", count: 6)).utf8)
            let respondedAfter = Self.dribble(head, to: client, every: .milliseconds(100))
            #expect(respondedAfter != nil, "the server responded before the header ended")
            #expect(respondedAfter.map { $0 >= .milliseconds(250) } == true, "not before the deadline")
            #expect(respondedAfter.map { $0 < .milliseconds(900) } == true, "the trickle did not extend the deadline")
            let response = try client.readResponse()
            #expect(response.status == 408)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            let statistics = try server.statistics()
            #expect(statistics.headerTimeouts == 1)
            #expect(statistics.bodyTimeouts == 0)
            #expect(calls.count("/") == 0)
        }
    }

    @Test func stalledBodyIsCutAfterBodyTimeout() throws {
        let calls = PathCounter()
        let configuration = Self.configuration { $0.bodyTimeout = 0.5 }
        try withServer(Self.router(calls: calls), configuration: configuration) { server in
            let client = try server.connect()
            try client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n")
            // Eight bytes 100 ms apart take 0.8 s: each read restarts the
            // body timer, so the trickle itself is not cut.
            let trickleResponse = Self.dribble(Array("abcdefgh".utf8), to: client, every: .milliseconds(100))
            #expect(trickleResponse == nil, "no response while body bytes keep coming")
            let stalled = ContinuousClock.now
            #expect(client.hasInput(wait: .seconds(3)))
            let waited = ContinuousClock.now - stalled
            #expect(waited >= .milliseconds(300), "not before the body timeout")
            #expect(waited < .milliseconds(1500), "soon after the body timeout")
            let response = try client.readResponse()
            #expect(response.status == 408)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            let statistics = try server.statistics()
            #expect(statistics.bodyTimeouts == 1)
            #expect(statistics.headerTimeouts == 0)
            #expect(calls.count("/echo") == 0)
        }
    }

    @Test func idleKeepAliveClosesQuietly() throws {
        let configuration = Self.configuration { $0.keepAliveTimeout = 1 }
        try withServer(Self.router(calls: PathCounter()), configuration: configuration) { server in
            let client = try server.connect()
            try client.send(request("/probe"))
            #expect(try client.readResponse().header("Keep-Alive") == "timeout=1")
            let responded = ContinuousClock.now
            #expect(client.readUntilClosed(wait: .seconds(4)) == .eof)
            let waited = ContinuousClock.now - responded
            #expect(waited >= .milliseconds(800))
            #expect(waited < .milliseconds(2500))
            #expect(client.buffered.isEmpty, "the idle close sends no response")
            let statistics = try server.statistics()
            #expect(statistics.idleTimeouts == 1)
            #expect(statistics.parseErrors == 0)
        }
    }

    @Test func silentConnectionClosesAfterKeepAliveTimeout() throws {
        let configuration = Self.configuration { $0.keepAliveTimeout = 1 }
        try withServer(Self.router(calls: PathCounter()), configuration: configuration) { server in
            let connected = ContinuousClock.now
            let client = try server.connect()
            #expect(client.readUntilClosed(wait: .seconds(4)) == .eof)
            let waited = ContinuousClock.now - connected
            #expect(waited >= .milliseconds(800))
            #expect(waited < .milliseconds(2500))
            #expect(client.buffered.isEmpty)
            #expect(try server.statistics().idleTimeouts == 1)
        }
    }

    /// Empty lines before a request are ignored (RFC 9112 section 2.2), but
    /// they must not keep a connection open forever. A client sending one
    /// every 250 ms is closed by the 1 s keep-alive timeout.
    @Test func emptyLinesDoNotHoldConnectionOpen() throws {
        let configuration = Self.configuration { $0.keepAliveTimeout = 1 }
        try withServer(Self.router(calls: PathCounter()), configuration: configuration) { server in
            let client = try server.connect()
            let started = ContinuousClock.now
            var closedAfter: Duration?
            for _ in 0..<12 {
                guard client.sendUntilError(Array("\r\n".utf8), bytewise: false) == 2 else { break }
                if client.hasInput(wait: .milliseconds(250)) {
                    closedAfter = ContinuousClock.now - started
                    break
                }
            }
            #expect(closedAfter.map { $0 < .milliseconds(2500) } == true, "closed within the timeouts")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty, "the idle close sends no response")
            #expect(try server.statistics().idleTimeouts == 1)
        }
    }

    /// The keep-alive clock stops at a request's first byte: a request that
    /// takes longer than the idle timeout, within the header deadline, is
    /// answered.
    @Test func keepAliveClockStopsInsideRequest() throws {
        let configuration = Self.configuration {
            $0.keepAliveTimeout = 1
            $0.headerTimeout = 5
        }
        try withServer(Self.router(calls: PathCounter()), configuration: configuration) { server in
            let client = try server.connect()
            try client.send(request("/probe"))
            _ = try client.readResponse()
            try client.send("GET /probe HTTP/1.1\r\n")
            #expect(!client.hasInput(wait: .milliseconds(1500)), "no close while a request is in progress")
            try client.send("Host: a\r\n\r\n")
            #expect(try client.readResponse().text == "probe\n")
            #expect(try server.statistics().idleTimeouts == 0)
        }
    }

    @Test func unreadResponseIsCutAfterWriteTimeout() throws {
        let calls = PathCounter()
        let bodySize = 8 * 1024 * 1024
        let configuration = Self.configuration { $0.writeTimeout = 0.3 }
        try withServer(Self.router(calls: calls, bigBody: bodySize), configuration: configuration) { server in
            let client = try RawSocket(port: server.port, receiveBuffer: 4096)
            #expect(client.sendAll(Array(request("/big").utf8)))
            let core = server.server
            let timedOut = try server.waitOnLoop { core.statistics.writeTimeouts == 1 }
            #expect(timedOut)
            let closed = try server.waitOnLoop { core.statistics.connectionsOpen == 0 }
            #expect(closed)
            let (received, ending) = client.drainUntilClosed(wait: .seconds(10))
            #expect(ending != .timedOut, "the connection ended")
            #expect(received < bodySize, "the response was cut short")
            #expect(calls.count("/big") == 1)
        }
    }

    /// The write timeout measures a write making no progress: a client that
    /// keeps reading a response larger than it can take within the timeout
    /// gets all of it.
    @Test func slowSteadyReaderIsNotCutByWriteTimeout() throws {
        let bodySize = 8 * 1024 * 1024
        let configuration = Self.configuration { $0.writeTimeout = 0.5 }
        try withServer(Self.router(calls: PathCounter(), bigBody: bodySize), configuration: configuration) { server in
            let client = try RawSocket(port: server.port, receiveBuffer: 64 * 1024)
            #expect(client.sendAll(Array(request("/big").utf8)))
            // 8 MiB at 512 KiB every 100 ms takes about 1.6 s, three times the
            // timeout, while every 100 ms some bytes move.
            var received = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let step = client.discard(upTo: 512 * 1024, wait: .milliseconds(500))
                if step == 0 { break }
                received += step
                Thread.sleep(forTimeInterval: 0.1)
            }
            #expect(received > bodySize, "the whole response arrived")
            #expect(client.ending == nil, "the connection stays open")
            #expect(try server.statistics().writeTimeouts == 0)
        }
    }

    // MARK: Expect: 100-continue

    @Test func expectContinueSendsInterimBeforeBody() throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls)) { server in
            let client = try server.connect()
            try client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let interim = try client.readResponse()
            #expect(interim.status == 100)
            #expect(interim.reason == "Continue")
            #expect(interim.headers.isEmpty)
            #expect(calls.count("/echo") == 0)
            try client.send("hello")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "hello")
            #expect(response.header("Connection") == nil)
            #expect(calls.count("/echo") == 1)
        }
    }

    @Test func expectContinueToUnknownPathGets404() throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls)) { server in
            let client = try server.connect()
            try client.send("POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 404)
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
            // The body and a request behind it arrive after the response; the
            // server discards them until the client ends.
            _ = client.sendUntilError(Array(("hello" + Self.smuggled).utf8), bytewise: false)
            client.shutdownWrite()
            let core = server.server
            #expect(try server.waitOnLoop { core.statistics.connectionsOpen == 0 })
            #expect(calls.count("/smuggled") == 0)
            #expect(try server.statistics().requests == 0)
        }
    }

    @Test func expectContinueToGetOnlyPathGets405() throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls)) { server in
            let client = try server.connect()
            try client.send("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD")
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
            #expect(calls.count("/hello") == 0)
        }
    }

    // MARK: Connection limits

    @Test func thirdRequestClosesAtRequestLimit() throws {
        let calls = PathCounter()
        let configuration = Self.configuration { $0.maxRequestsPerConnection = 3 }
        try withServer(Self.router(calls: calls), configuration: configuration) { server in
            let client = try server.connect()
            var responses: [HTTPResponse] = []
            for _ in 0..<3 {
                try client.send(request("/"))
                responses.append(try client.readResponse())
            }
            #expect(responses.map(\.status) == [200, 200, 200])
            #expect(responses[0].header("Connection") == nil)
            #expect(responses[1].header("Connection") == nil)
            #expect(responses[2].header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(calls.count("/") == 3)
        }
    }

    @Test func pipelinedRequestPastLimitIsNotRouted() throws {
        let calls = PathCounter()
        let configuration = Self.configuration { $0.maxRequestsPerConnection = 3 }
        try withServer(Self.router(calls: calls), configuration: configuration) { server in
            let client = try server.connect()
            try client.send(request("/") + request("/") + request("/") + request("/second"))
            var responses: [HTTPResponse] = []
            for _ in 0..<3 {
                responses.append(try client.readResponse())
            }
            #expect(responses[2].header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
            #expect(calls.count("/") == 3)
            #expect(calls.count("/second") == 0)
        }
    }

    @Test func sixthConnectionIsClosedAtAccept() throws {
        let configuration = Self.configuration { $0.maxConnections = 5 }
        try withServer(Self.router(calls: PathCounter()), configuration: configuration) { server in
            var clients: [HTTPClient] = []
            for _ in 0..<5 {
                let client = try server.connect()
                try client.send(request("/probe"))
                #expect(try client.readResponse().status == 200)
                clients.append(client)
            }
            let sixth = try server.connect()
            #expect(sixth.readUntilClosed() == .eof)
            #expect(sixth.buffered.isEmpty, "no response at accept")
            let statistics = try server.statistics()
            #expect(statistics.connectionsRejected == 1)
            #expect(statistics.connectionsOpen == 5)
            for client in clients {
                try client.send(request("/probe"))
                #expect(try client.readResponse().text == "probe\n")
            }
        }
    }

    // MARK: Outgoing header injection

    struct BadField: Sendable, CustomTestStringConvertible {
        var name: String
        var field: String
        var value: String
        var testDescription: String { name }
    }

    static let badFields: [BadField] = [
        BadField(name: "CRLF in a value", field: "X-Note", value: "a\r\nInjected: yes"),
        BadField(name: "LF in a value", field: "X-Note", value: "a\nInjected: yes"),
        BadField(name: "CR in a value", field: "X-Note", value: "a\rInjected: yes"),
        BadField(name: "NUL in a value", field: "X-Note", value: "a\u{0}Injected: yes"),
        BadField(name: "CRLF in a name", field: "X-Note\r\nInjected", value: "yes"),
        BadField(name: "colon in a name", field: "Injected: yes\r\nX", value: "v"),
        BadField(name: "empty name", field: "", value: "Injected"),
    ]

    @Test(arguments: badFields)
    func unsafeResponseFieldGives500(_ bad: BadField) throws {
        var router = Router()
        router.get("/inject") { _ in
            var response = Response.text("body\n")
            response.headers.add(bad.field, bad.value)
            return response
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/inject"))
            #expect(client.readUntilClosed() == .eof)
            let wire = client.buffered
            #expect(!String(decoding: wire, as: UTF8.self).contains("Injected"), "no injected text on the wire")
            #expect(!wire.contains(0), "no NUL on the wire")
            let parsed = try ResponseParser.parse(wire, head: false)
            #expect(parsed?.0.status == 500)
            #expect(parsed?.0.header("Connection") == "close")
            #expect(parsed?.1 == wire.count, "one response and nothing else")
        }
    }

    // MARK: Graceful stop

    @Test func gracefulStopFinishesDeferredRequest() throws {
        let waiting = LoopOwned<Responder?>(nil)
        let arrived = DispatchSemaphore(value: 0)
        var router = Self.router(calls: PathCounter())
        router.addDeferred(.get, "/slow") { _, responder in
            waiting.value = responder
            arrived.signal()
        }
        let server = try TestServer(router: router)
        let idle = try server.connect()
        try idle.send(request("/probe"))
        _ = try idle.readResponse()
        let busy = try server.connect()
        try busy.send(request("/slow"))
        #expect(arrived.wait(timeout: .now() + 5) == .success)

        let stopped = ContinuousClock.now
        server.server.stop(gracePeriod: 5)
        Thread {
            Thread.sleep(forTimeInterval: 0.3)
            server.server.execute {
                waiting.value?.respond(.text("slow answer\n"))
                waiting.value = nil
            }
        }.start()

        #expect(idle.readUntilClosed(wait: .seconds(2)) == .eof)
        #expect(ContinuousClock.now - stopped < .milliseconds(250), "the idle connection closed at once")
        #expect(idle.buffered.isEmpty)
        #expect(throws: ClientError.self, "the listener is closed") { try server.connect() }
        let response = try busy.readResponse()
        #expect(response.text == "slow answer\n")
        #expect(response.header("Connection") == "close")
        #expect(busy.readUntilClosed() == .eof)
        #expect(server.waitForLoop(timeout: 5) == .clean)
        #expect(ContinuousClock.now - stopped < .seconds(2), "run() returned before the grace period")
    }

    @Test func gracePeriodEndClosesUnansweredRequest() throws {
        let waiting = LoopOwned<Responder?>(nil)
        let arrived = DispatchSemaphore(value: 0)
        var router = Router()
        router.addDeferred(.get, "/never") { _, responder in
            waiting.value = responder
            arrived.signal()
        }
        let server = try TestServer(router: router)
        let client = try server.connect()
        try client.send(request("/never"))
        #expect(arrived.wait(timeout: .now() + 5) == .success)
        let stopped = ContinuousClock.now
        server.server.stop(gracePeriod: 0.5)
        #expect(client.readUntilClosed(wait: .seconds(3)) == .eof)
        let waited = ContinuousClock.now - stopped
        #expect(waited >= .milliseconds(400), "not before the deadline")
        #expect(waited < .milliseconds(1500), "at the deadline")
        #expect(client.buffered.isEmpty)
        #expect(server.waitForLoop(timeout: 5) == .clean)
    }

    // MARK: Backpressure

    @Test func pipelineFloodKeepsMemoryBounded() throws {
        let count = 10_000
        try withServer(Self.router(calls: PathCounter())) { server in
            let client = try RawSocket(port: server.port)
            let requests = (0..<count).flatMap { Array("GET /small?n=\($0) HTTP/1.1\r\nHost: a\r\n\r\n".utf8) }
            let before = ProcessResources.residentBytes()
            let sent = DispatchSemaphore(value: 0)
            Thread {
                client.sendAll(requests)
                sent.signal()
            }.start()
            Thread.sleep(forTimeInterval: 0.5)
            let growth = ProcessResources.residentBytes() - before
            print("pipeline flood: \(count) requests unread, resident set grew by \(growth / 1024) KiB")
            #expect(growth < 64 * 1024 * 1024)

            var bodies: [String] = []
            bodies.reserveCapacity(count)
            for _ in 0..<count {
                bodies.append(try client.readResponse().text)
            }
            #expect(sent.wait(timeout: .now() + 10) == .success)
            #expect(bodies == (0..<count).map(String.init))
            #expect(client.discard(upTo: 1, wait: .milliseconds(50)) == 0, "no response beyond the requests")
            #expect(try server.statistics().requests == count)
        }
    }

    /// 400 pipelined requests for 128 KiB each are 50 MiB of output; past
    /// the 1 MiB high-water mark the server stops reading, so the process
    /// keeps a small part of it while the client reads nothing.
    @Test func unreadLargeResponsesPauseReading() throws {
        let count = 400
        let bodySize = 128 * 1024
        try withServer(Self.router(calls: PathCounter(), largeBody: bodySize)) { server in
            let client = try RawSocket(port: server.port)
            let requests = (0..<count).flatMap { _ in Array(request("/large").utf8) }
            let before = ProcessResources.residentBytes()
            let sent = DispatchSemaphore(value: 0)
            Thread {
                client.sendAll(requests)
                sent.signal()
            }.start()
            Thread.sleep(forTimeInterval: 0.5)
            let growth = ProcessResources.residentBytes() - before
            print("slow reader: \(count * bodySize / 1024 / 1024) MiB of responses unread, resident set grew by \(growth / 1024) KiB")
            #expect(growth < 24 * 1024 * 1024)
            #expect(try server.statistics().requests < count, "reading paused before every request was handled")

            var lengths: [Int] = []
            for _ in 0..<count {
                lengths.append(try client.readResponse().body.count)
            }
            #expect(sent.wait(timeout: .now() + 10) == .success)
            #expect(lengths == Array(repeating: bodySize, count: count))
        }
    }

    /// Chunk framing that carries almost no data: chunk extensions each
    /// under the per-chunk limit, or chunk sizes written with thousands of
    /// leading zeros.
    static let framingFloods: [(name: String, chunk: String)] = [
        ("8000-byte extension per 1-byte chunk", "1;" + String(repeating: "e", count: 8000) + "\r\nx\r\n"),
        ("8000 leading zeros per 1-byte chunk", String(repeating: "0", count: 8000) + "1\r\nx\r\n"),
    ]

    /// A chunked request whose framing is 16 MiB for a body of 2000 bytes
    /// must not make the server hold the 16 MiB: the limits bound a request
    /// to its header and body limits.
    @Test(arguments: framingFloods.map(\.name))
    func chunkFramingDoesNotAccumulate(_ name: String) throws {
        let chunk = Array(Self.framingFloods.first { $0.name == name }!.chunk.utf8)
        try withServer(Self.router(calls: PathCounter())) { server in
            let client = try RawSocket(port: server.port)
            let before = ProcessResources.heapBytesInUse()
            _ = client.sendAll(Array("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
            for _ in 0..<2000 {
                guard client.sendAll(chunk) else { break }
            }
            let core = server.server
            _ = try server.onLoop { core.statistics.requests }
            let growth = ProcessResources.heapBytesInUse() - before
            print("chunk framing, \(name): heap in use grew by \(growth / 1024) KiB for 16 MiB of framing")
            #expect(growth < 4 * 1024 * 1024)
            _ = client.sendAll(Array("0\r\n\r\n".utf8))
        }
    }

    @Test func clientResetDuringLargeResponse() throws {
        let calls = PathCounter()
        try withServer(Self.router(calls: calls)) { server in
            let client = try RawSocket(port: server.port, receiveBuffer: 16 * 1024)
            #expect(client.sendAll(Array(request("/big").utf8)))
            #expect(client.discard(upTo: 1024, wait: .seconds(5)) == 1024)
            client.resetAndClose()
            let core = server.server
            let freed = try server.waitOnLoop { core.statistics.connectionsOpen == 0 }
            #expect(freed)
            let next = try server.connect()
            try next.send(request("/probe"))
            #expect(try next.readResponse().text == "probe\n")
            let statistics = try server.statistics()
            #expect(statistics.connectionsOpen == 1)
            #expect(statistics.connectionsTotal == 2)
        }
    }
}
