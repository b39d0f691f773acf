import Foundation
import Synchronization
import Testing
@testable import UVHTTP

/// The server's life cycle and its bridge from other threads to the loop.
struct HTTPServerTests {
    static func helloRouter() -> Router {
        var router = Router()
        router.get("/hello") { _ in .text("Hello\n") }
        return router
    }

    @Test func loopClosesWithNoHandleLeft() throws {
        let server = try TestServer(router: Self.helloRouter())
        let client = try server.connect()
        try client.send(request("/hello"))
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(server.stop() == .clean)
    }

    @Test func listenReturnsBoundPort() throws {
        try withServer(Self.helloRouter()) { server in
            #expect(server.port > 0)
            let client = try server.connect()
            try client.send(request("/hello"))
            #expect(try client.readResponse().text == "Hello\n")
        }
    }

    @Test func executeRunsOnLoopThread() throws {
        let handlerThreads = Recorder<pthread_t>()
        var router = Router()
        router.get("/thread") { _ in
            handlerThreads.append(pthread_self())
            return .text("ok")
        }
        try withServer(router) { server in
            let client = try server.connect()
            try client.send(request("/thread"))
            _ = try client.readResponse()

            let jobThreads = Recorder<pthread_t>()
            let callerThread = Recorder<pthread_t>()
            let done = DispatchSemaphore(value: 0)
            Thread {
                callerThread.append(pthread_self())
                server.server.execute {
                    jobThreads.append(pthread_self())
                    done.signal()
                }
            }.start()
            #expect(done.wait(timeout: .now() + 5) == .success)
            #expect(jobThreads.all == [server.loopThread])
            #expect(handlerThreads.all == [server.loopThread])
            #expect(jobThreads.all != callerThread.all)
        }
    }

    @Test func executeRunsEveryJob() throws {
        try withServer(Self.helloRouter()) { server in
            let ran = LoopOwned(0)
            let group = DispatchGroup()
            for _ in 0..<8 {
                group.enter()
                Thread {
                    for _ in 0..<100 {
                        server.server.execute { ran.value += 1 }
                    }
                    group.leave()
                }.start()
            }
            #expect(group.wait(timeout: .now() + 5) == .success)
            let ranCount = try server.onLoop { ran.value }
            #expect(ranCount == 800)
        }
    }

    @Test func jobsRunInOrder() throws {
        try withServer(Self.helloRouter()) { server in
            let order = LoopOwned<[Int]>([])
            for index in 0..<50 {
                server.server.execute { order.value.append(index) }
            }
            let ranOrder = try server.onLoop { order.value }
            #expect(ranOrder == Array(0..<50))
        }
    }

    @Test func stopFromHandlerEndsLoop() throws {
        let box = LoopOwned<HTTPServer?>(nil)
        var router = Router()
        router.get("/stop") { _ in
            box.value?.stop()
            return .text("stopping\n")
        }
        let server = try TestServer(router: router)
        try server.onLoop { box.value = server.server }
        let client = try server.connect()
        try client.send(request("/stop"))
        let response = try client.readResponse()
        #expect(response.text == "stopping\n")
        #expect(client.readUntilClosed() == .eof)
        server.server.waitUntilStopped()
        #expect(server.stop() == .clean)
        box.value = nil
    }

    @Test func stopTwiceIsHarmless() throws {
        let server = try TestServer(router: Self.helloRouter())
        #expect(server.stop() == .clean)
        server.server.stop()
        server.server.waitUntilStopped()
    }

    @Test func executeAfterStopIsDropped() throws {
        let server = try TestServer(router: Self.helloRouter())
        #expect(server.stop() == .clean)
        let ran = Counter()
        server.server.execute { ran.increment() }
        #expect(ran.count == 0)
    }

    @Test func runTwiceThrows() throws {
        let server = try TestServer(router: Self.helloRouter())
        #expect(server.stop() == .clean)
        #expect(throws: UVError.self) { try server.server.run() }
    }

    @Test func busyPortThrowsAddressInUse() throws {
        try withServer(Self.helloRouter()) { server in
            let other = try HTTPServer(router: Self.helloRouter())
            #expect {
                try other.listen(host: "127.0.0.1", port: server.port)
            } throws: { error in
                (error as? UVError)?.name == "EADDRINUSE"
            }
        }
    }

    @Test func unrunServerIsReleasedCleanly() throws {
        let server = try HTTPServer(router: Self.helloRouter())
        let port = try server.listen(host: "127.0.0.1", port: 0)
        #expect(port > 0)
    }

    @Test func statisticsCountRequests() throws {
        try withServer(Self.helloRouter()) { server in
            let first = try server.connect()
            try first.send(request("/hello") + request("/hello"))
            _ = try first.readResponse()
            _ = try first.readResponse()
            let second = try server.connect()
            try second.send(request("/hello"))
            _ = try second.readResponse()
            let statistics = try server.statistics()
            #expect(statistics.connectionsTotal == 2)
            #expect(statistics.connectionsOpen == 2)
            #expect(statistics.requests == 3)
            #expect(statistics.parseErrors == 0)
            #expect(statistics.connectionsRejected == 0)
        }
    }
}
