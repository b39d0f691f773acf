import Foundation
import Testing
@testable import UVHTTP

/// Stopping a server that still has connections open.
struct StopTests {
    /// Opens an idle keep-alive connection, one with half a request and one
    /// that sent nothing, and waits until the server has accepted all three
    /// and read the half request.
    static func openConnections(_ server: TestServer) throws -> (idle: HTTPClient, unfinished: HTTPClient, silent: HTTPClient) {
        let idle = try server.connect()
        try idle.send(request("/hello"))
        _ = try idle.readResponse()
        let unfinished = try server.connect()
        try unfinished.send("GET /n/7 HTTP/1.1\r\nHost: local")
        let silent = try server.connect()
        let core = server.server
        let allOpen = try server.waitOnLoop { core.statistics.connectionsOpen == 3 }
        #expect(allOpen)
        // The loop read the half request by the end of the iteration after
        // the one that saw three connections, so one more job waits it out.
        _ = try server.onLoop { true }
        return (idle, unfinished, silent)
    }

    @Test func immediateStopClosesEveryConnection() throws {
        let server = try TestServer(router: standardRouter())
        let (idle, unfinished, silent) = try Self.openConnections(server)
        #expect(server.stop(gracePeriod: 0) == .clean)
        #expect(idle.readUntilClosed() == .eof)
        #expect(unfinished.readUntilClosed() == .eof)
        #expect(unfinished.buffered.isEmpty)
        #expect(silent.readUntilClosed() == .eof)
    }

    @Test func gracefulStopFinishesRequestInProgress() throws {
        let server = try TestServer(router: standardRouter())
        let (idle, unfinished, silent) = try Self.openConnections(server)
        server.server.stop(gracePeriod: 5)
        #expect(idle.readUntilClosed() == .eof)
        #expect(silent.readUntilClosed() == .eof)
        try unfinished.send("host\r\n\r\n")
        let response = try unfinished.readResponse()
        #expect(response.text == "7")
        #expect(response.header("Connection") == "close")
        #expect(unfinished.readUntilClosed() == .eof)
        #expect(server.waitForLoop(timeout: 3) == .clean)
    }

    @Test func gracefulStopRefusesNewConnections() throws {
        let server = try TestServer(router: standardRouter())
        let (idle, unfinished, _) = try Self.openConnections(server)
        server.server.stop(gracePeriod: 5)
        #expect(idle.readUntilClosed() == .eof)
        #expect(throws: ClientError.self) { try server.connect() }
        try unfinished.send("host\r\n\r\n")
        #expect(try unfinished.readResponse().text == "7")
        #expect(server.waitForLoop(timeout: 3) == .clean)
    }

    @Test func gracePeriodEndClosesUnfinishedRequests() throws {
        let server = try TestServer(router: standardRouter())
        let (_, unfinished, _) = try Self.openConnections(server)
        let started = ContinuousClock.now
        server.server.stop(gracePeriod: 0.2)
        #expect(unfinished.readUntilClosed(wait: .seconds(3)) == .eof)
        #expect(ContinuousClock.now - started >= .milliseconds(150))
        #expect(server.waitForLoop(timeout: 3) == .clean)
    }

    @Test func laterLongerStopKeepsDeadline() throws {
        let server = try TestServer(router: standardRouter())
        let (_, unfinished, _) = try Self.openConnections(server)
        server.server.stop(gracePeriod: 0.2)
        server.server.stop(gracePeriod: 10)
        #expect(unfinished.readUntilClosed(wait: .seconds(3)) == .eof)
        #expect(server.waitForLoop(timeout: 3) == .clean)
    }

    @Test func laterShorterStopBringsDeadlineForward() throws {
        let server = try TestServer(router: standardRouter())
        let (_, unfinished, _) = try Self.openConnections(server)
        server.server.stop(gracePeriod: 10)
        server.server.stop(gracePeriod: 0)
        #expect(unfinished.readUntilClosed(wait: .seconds(3)) == .eof)
        #expect(server.waitForLoop(timeout: 3) == .clean)
    }

    @Test func immediateStopClosesDeferredConnection() throws {
        let arrived = DispatchSemaphore(value: 0)
        var router = Router()
        router.addDeferred(.get, "/never") { _, _ in arrived.signal() }
        let server = try TestServer(router: router)
        let client = try server.connect()
        try client.send(request("/never"))
        #expect(arrived.wait(timeout: .now() + 5) == .success)
        #expect(server.stop(gracePeriod: 0) == .clean)
        #expect(client.readUntilClosed() == .eof)
        #expect(client.buffered.isEmpty)
    }

    @Test func gracefulStopWaitsForDeferredResponse() throws {
        let waiting = LoopOwned<Responder?>(nil)
        let arrived = DispatchSemaphore(value: 0)
        var router = Router()
        router.addDeferred(.get, "/later") { _, responder in
            waiting.value = responder
            arrived.signal()
        }
        let server = try TestServer(router: router)
        let client = try server.connect()
        try client.send(request("/later"))
        #expect(arrived.wait(timeout: .now() + 5) == .success)
        server.server.stop(gracePeriod: 5)
        server.server.execute {
            waiting.value?.respond(.text("done\n"))
            waiting.value = nil
        }
        let response = try client.readResponse()
        #expect(response.text == "done\n")
        #expect(response.header("Connection") == "close")
        #expect(client.readUntilClosed() == .eof)
        #expect(server.waitForLoop(timeout: 3) == .clean)
    }
}
