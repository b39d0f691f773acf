import Foundation
import Testing
@testable import UVHTTP

/// What responses look like on the wire: framing, `Date`, bodiless
/// statuses, HEAD, 404 and 405, and unsafe header fields.
struct ResponseTests {
    static func router() -> Router {
        var router = standardRouter()
        router.get("/status/:code") { request in
            let code = Int(request.parameters["code"] ?? "") ?? 500
            return Response(status: HTTPStatus.code(code), headers: ["X-Status": "\(code)"], body: Array("ignored".utf8))
        }
        router.add(.put, "/hello") { _ in .text("put\n") }
        router.get("/closing") { _ in
            var response = Response.text("bye\n")
            response.closesConnection = true
            return response
        }
        return router
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`: RFC 9110 section 5.6.7.
    static func isIMFFixdate(_ text: String) -> Bool {
        let pattern = #/(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT/#
        return text.wholeMatch(of: pattern) != nil
    }

    static func parseIMFFixdate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text)
    }

    @Test func dateCheckRejectsOtherForms() {
        #expect(Self.isIMFFixdate("Sun, 06 Nov 1994 08:49:37 GMT"))
        #expect(!Self.isIMFFixdate("Sunday, 06-Nov-94 08:49:37 GMT"))
        #expect(!Self.isIMFFixdate("Sun Nov  6 08:49:37 1994"))
        #expect(!Self.isIMFFixdate("Sun, 6 Nov 1994 08:49:37 GMT"))
    }

    @Test(arguments: [
        ("GET /hello HTTP/1.1", 200, 6),
        ("GET /empty HTTP/1.1", 200, 0),
        ("GET /n/12345 HTTP/1.1", 200, 5),
        ("GET /missing HTTP/1.1", 404, 10),
        ("DELETE /hello HTTP/1.1", 405, 19),
        ("GET /status/201 HTTP/1.1", 201, 7),
        ("GET /status/500 HTTP/1.1", 500, 7),
    ])
    func everyResponseHasDateAndContentLength(requestLine: String, status: Int, length: Int) throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send("\(requestLine)\r\nHost: localhost\r\n\r\n" + request("/hello"))
            let response = try client.readResponse()
            #expect(response.status == status)
            let date = response.header("Date") ?? ""
            #expect(Self.isIMFFixdate(date))
            let sent = Self.parseIMFFixdate(date)?.timeIntervalSinceNow ?? .infinity
            #expect(abs(sent) < 5)
            #expect(response.values("Date").count == 1)
            #expect(response.values("Content-Length") == ["\(length)"])
            #expect(response.body.count == length)
            #expect(try client.readResponse().text == "Hello\n")
        }
    }

    @Test func parseErrorResponseHasDate() throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send("NOT HTTP AT ALL\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(Self.isIMFFixdate(response.header("Date") ?? ""))
            #expect(response.header("Content-Length") == "\(response.body.count)")
        }
    }

    @Test(arguments: [204, 304])
    func bodilessStatusOmitsLengthAndBody(status: Int) throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request("/status/\(status)") + request("/hello"))
            let response = try client.readResponse()
            #expect(response.status == status)
            #expect(response.header("X-Status") == "\(status)")
            #expect(response.header("Content-Length") == nil)
            #expect(response.header("Transfer-Encoding") == nil)
            #expect(Self.isIMFFixdate(response.header("Date") ?? ""))
            #expect(try client.readResponse().text == "Hello\n")
            #expect(client.buffered.isEmpty)
        }
    }

    @Test func headSendsHeadersOnly() throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request("/hello"))
            let get = try client.readResponse()
            try client.send(request("/hello", method: "HEAD") + request("/n/after"))
            let head = try client.readResponse(head: true)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "\(get.body.count)")
            #expect(head.fieldsWithoutDate == get.fieldsWithoutDate)
            let next = try client.readResponse()
            #expect(next.status == 200)
            #expect(next.text == "after")
            #expect(client.buffered.isEmpty)
        }
    }

    @Test func headOfMissingPathHasNoBody() throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request("/missing", method: "HEAD") + request("/hello"))
            let head = try client.readResponse(head: true)
            #expect(head.status == 404)
            #expect(head.header("Content-Length") == "10")
            #expect(try client.readResponse().text == "Hello\n")
        }
    }

    @Test func unknownPathGetsNotFound() throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request("/missing"))
            let response = try client.readResponse()
            #expect(response.status == 404)
            #expect(response.reason == "Not Found")
            #expect(response.text == "Not Found\n")
            #expect(response.header("Allow") == nil)
            try client.send(request("/hello"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test(arguments: [
        ("POST", "/hello", "GET, HEAD, PUT"),
        ("DELETE", "/n/1", "GET, HEAD"),
        ("GET", "/echo", "POST"),
    ])
    func otherMethodGets405WithAllow(method: String, path: String, allow: String) throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request(path, method: method, fields: ["Content-Length: 0"]))
            let response = try client.readResponse()
            #expect(response.status == 405)
            #expect(response.reason == "Method Not Allowed")
            #expect(response.header("Allow") == allow)
            try client.send(request("/hello"))
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test func fallbackCanBeReplaced() throws {
        var router = Self.router()
        router.fallback = { request, miss in
            .text(miss == .notFound ? "no \(request.path)\n" : "not allowed\n", status: .notFound)
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/missing") + request("/hello", method: "DELETE"))
            #expect(try client.readResponse().text == "no /missing\n")
            #expect(try client.readResponse().text == "not allowed\n")
        }
    }

    @Test func handlerCanCloseConnection() throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request("/closing") + request("/hello"))
            let response = try client.readResponse()
            #expect(response.text == "bye\n")
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
        }
    }

    @Test(arguments: [
        ("X-Evil", "a\r\nInjected: yes"),
        ("X-Evil", "a\nInjected: yes"),
        ("X-Evil", "a\rInjected: yes"),
        ("X-Evil", "a\u{0}Injected: yes"),
        ("X-Evil\r\nInjected", "yes"),
        ("X Evil", "Injected"),
        ("", "Injected"),
    ])
    func unsafeHeaderFieldGets500(name: String, value: String) throws {
        var router = Router()
        router.get("/evil") { _ in
            var response = Response.text("should not be sent\n")
            response.headers.add("X-Fine", "fine")
            response.headers.add(name, value)
            return response
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/evil") + request("/evil"))
            #expect(client.readUntilClosed() == .eof)
            let wire = client.buffered
            #expect(!String(decoding: wire, as: UTF8.self).contains("Injected"))
            #expect(!String(decoding: wire, as: UTF8.self).contains("X-Fine"))
            let (response, consumed) = try #require(try ResponseParser.parse(wire, head: false))
            #expect(response.status == 500)
            #expect(response.text == "Internal Server Error\n")
            #expect(response.header("Connection") == "close")
            #expect(consumed == wire.count)
        }
    }

    @Test func preparedResponseSendsItsFields() throws {
        let prepared = try PreparedResponse(
            headers: ["Content-Type": "application/json", "Cache-Control": "no-cache"], body: Array("{}".utf8))
        var router = Router()
        router.get("/prepared") { _ in
            var response = Response(prepared)
            response.headers.add("X-Extra", "1")
            return response
        }
        router.get("/created") { _ in
            var response = Response(prepared)
            response.status = .created
            return response
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/prepared") + request("/created"))
            let plain = try client.readResponse()
            #expect(plain.status == 200)
            #expect(plain.fieldsWithoutDate == [
                "Content-Type: application/json", "Cache-Control: no-cache", "X-Extra: 1", "Content-Length: 2",
                "Keep-Alive: timeout=20",
            ])
            #expect(plain.text == "{}")
            let created = try client.readResponse()
            #expect(created.status == 201)
            #expect(created.reason == "Created")
            #expect(created.header("Cache-Control") == "no-cache")
            #expect(created.text == "{}")
        }
    }

    @Test func preparedResponseRejectsUnsafeFields() {
        #expect(throws: HTTPFieldError.self) {
            try PreparedResponse(headers: ["X-Evil": "a\r\nInjected: yes"], body: [])
        }
    }

    @Test func unknownStatusGetsGenericReason() throws {
        try withServer(Self.router()) { server in
            let client = try server.connect()
            try client.send(request("/status/299"))
            let response = try client.readResponse()
            #expect(response.status == 299)
            #expect(response.reason == "Status 299")
        }
    }
}
