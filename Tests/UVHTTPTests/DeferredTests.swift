import Foundation
import Testing
@testable import UVHTTP

/// Handlers added with `addDeferred`, which respond through a `Responder`.
struct DeferredTests {
    /// Builds a router whose `/slow` requests wait in `waiting` until the
    /// test responds to them. `arrived` is signalled once per `/slow` request.
    static func router(waiting: LoopOwned<[Responder]>, arrived: DispatchSemaphore, calls: Counter) -> Router {
        var router = standardRouter(calls: calls)
        router.addDeferred(.get, "/slow") { _, responder in
            waiting.value.append(responder)
            arrived.signal()
        }
        router.addDeferred(.get, "/quick") { request, responder in
            responder.respond(.text("quick \(request.parameters["none"] ?? "-")\n"))
        }
        return router
    }

    /// Responds to the first waiting request from a thread other than the
    /// loop's, through `execute`.
    static func respondFromAnotherThread(_ server: TestServer, _ waiting: LoopOwned<[Responder]>, _ text: String) {
        let sent = DispatchSemaphore(value: 0)
        Thread {
            server.server.execute {
                let responder = waiting.value.removeFirst()
                responder.respond(.text(text))
            }
            sent.signal()
        }.start()
        sent.wait()
    }

    @Test func deferredResponseComesFromAnotherThread() throws {
        let waiting = LoopOwned<[Responder]>([])
        let arrived = DispatchSemaphore(value: 0)
        try withServer(Self.router(waiting: waiting, arrived: arrived, calls: Counter())) { server in
            let client = try server.connect()
            try client.send(request("/slow"))
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            #expect(client.readAvailable(wait: .milliseconds(50)).isEmpty)
            Self.respondFromAnotherThread(server, waiting, "later\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "later\n")
            #expect(response.header("Keep-Alive") == "timeout=20")
            try client.send(request("/hello"))
            #expect(try client.readResponse().text == "Hello\n")
        }
    }

    @Test func pipelinedRequestsWaitBehindDeferred() throws {
        let waiting = LoopOwned<[Responder]>([])
        let arrived = DispatchSemaphore(value: 0)
        let calls = Counter()
        try withServer(Self.router(waiting: waiting, arrived: arrived, calls: calls)) { server in
            let client = try server.connect()
            try client.send(request("/slow") + request("/n/1") + request("/slow") + request("/n/2"))
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            #expect(client.readAvailable(wait: .milliseconds(50)).isEmpty)
            #expect(calls.count == 0)
            Self.respondFromAnotherThread(server, waiting, "first slow")
            #expect(try client.readResponse().text == "first slow")
            #expect(try client.readResponse().text == "1")
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            #expect(calls.count == 1)
            #expect(client.readAvailable(wait: .milliseconds(50)).isEmpty)
            Self.respondFromAnotherThread(server, waiting, "second slow")
            #expect(try client.readResponse().text == "second slow")
            #expect(try client.readResponse().text == "2")
            #expect(calls.count == 2)
        }
    }

    @Test func respondingInsideHandlerWorks() throws {
        let waiting = LoopOwned<[Responder]>([])
        try withServer(Self.router(waiting: waiting, arrived: DispatchSemaphore(value: 0), calls: Counter())) { server in
            let client = try server.connect()
            try client.send(request("/quick") + request("/n/1") + request("/quick"))
            #expect(try client.readResponse().text == "quick -\n")
            #expect(try client.readResponse().text == "1")
            #expect(try client.readResponse().text == "quick -\n")
            try client.send(request("/quick"))
            #expect(try client.readResponse().text == "quick -\n")
        }
    }

    @Test func deferredResponseHonoursConnectionClose() throws {
        let waiting = LoopOwned<[Responder]>([])
        let arrived = DispatchSemaphore(value: 0)
        let calls = Counter()
        try withServer(Self.router(waiting: waiting, arrived: arrived, calls: calls)) { server in
            let client = try server.connect()
            try client.send(request("/slow", fields: ["Connection: close"]) + request("/n/1"))
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            Self.respondFromAnotherThread(server, waiting, "last")
            let response = try client.readResponse()
            #expect(response.text == "last")
            #expect(response.header("Connection") == "close")
            #expect(client.readUntilClosed() == .eof)
            #expect(client.buffered.isEmpty)
            #expect(calls.count == 0)
        }
    }

    @Test func deferredHeadResponseHasNoBody() throws {
        let waiting = LoopOwned<[Responder]>([])
        let arrived = DispatchSemaphore(value: 0)
        try withServer(Self.router(waiting: waiting, arrived: arrived, calls: Counter())) { server in
            let client = try server.connect()
            try client.send(request("/slow", method: "HEAD") + request("/hello"))
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            Self.respondFromAnotherThread(server, waiting, "twelve bytes")
            let head = try client.readResponse(head: true)
            #expect(head.header("Content-Length") == "12")
            #expect(try client.readResponse().text == "Hello\n")
        }
    }

    @Test func secondRespondIsIgnored() throws {
        var router = standardRouter()
        router.addDeferred(.get, "/twice") { _, responder in
            responder.respond(.text("one"))
            responder.respond(.text("two"))
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/twice") + request("/n/next"))
            #expect(try client.readResponse().text == "one")
            #expect(try client.readResponse().text == "next")
            #expect(client.readAvailable(wait: .milliseconds(20)).isEmpty)
        }
    }

    @Test func responseToGoneClientIsDropped() throws {
        let waiting = LoopOwned<[Responder]>([])
        let arrived = DispatchSemaphore(value: 0)
        try withServer(Self.router(waiting: waiting, arrived: arrived, calls: Counter())) { server in
            var client: HTTPClient? = try server.connect()
            try client?.send(request("/slow"))
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            client = nil
            Self.respondFromAnotherThread(server, waiting, "nobody listens")
            let core = server.server
            let closed = try server.waitOnLoop { core.statistics.connectionsOpen == 0 }
            #expect(closed)
            let next = try server.connect()
            try next.send(request("/hello"))
            #expect(try next.readResponse().text == "Hello\n")
        }
    }

    @Test func handlerCanReleaseOtherDeferredRequests() throws {
        let waiting = LoopOwned<[Responder]>([])
        let arrived = DispatchSemaphore(value: 0)
        var router = Self.router(waiting: waiting, arrived: arrived, calls: Counter())
        router.addDeferred(.post, "/release") { _, responder in
            let released = waiting.value
            waiting.value.removeAll()
            for other in released {
                other.respond(.text("released"))
            }
            responder.respond(.text("released \(released.count)"))
        }
        try withServer(router) { server in
            let waitingClient = try server.connect()
            try waitingClient.send(request("/slow") + request("/slow"))
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            let releaser = try server.connect()
            try releaser.send(request("/release", body: []) + Array(request("/hello").utf8))
            let releaseResponse = try releaser.readResponse()
            #expect(releaseResponse.text == "released 1")
            #expect(try releaser.readResponse().text == "Hello\n")
            #expect(try waitingClient.readResponse().text == "released")
            #expect(arrived.wait(timeout: .now() + 5) == .success)
            try releaser.send(request("/release", body: []))
            #expect(try releaser.readResponse().text == "released 1")
            #expect(try waitingClient.readResponse().text == "released")
        }
    }
}
