import Foundation
import Glibc
import Testing
@testable import UVHTTP

extension HardeningTests {
    /// Many connections against one server in this process: what they leave
    /// behind, and what slow ones cost an honest client. Nested in
    /// ``HardeningTests`` so that they run one at a time with its tests.
    struct ResourceTests {
        /// Opens `size` connections at once. A third send nothing, a third
        /// send a keep-alive request and a third send a request with
        /// `Connection: close`. Every response is read, then every connection
        /// is closed by the client or, for the last third, by the server.
        static func runBatch(_ server: TestServer, size: Int) throws {
            var clients: [HTTPClient] = []
            clients.reserveCapacity(size)
            for index in 0..<size {
                let client = try server.connect()
                switch index % 3 {
                case 1: try client.send(request("/probe"))
                case 2: try client.send(request("/probe", fields: ["Connection: close"]))
                default: break
                }
                clients.append(client)
            }
            for (index, client) in clients.enumerated() where index % 3 != 0 {
                let response = try client.readResponse()
                #expect(response.status == 200)
                if index % 3 == 2 {
                    #expect(client.readUntilClosed() == .eof)
                }
            }
        }

        @Test func tenThousandConnectionsLeaveNothingBehind() throws {
            let batchSize = 500
            let batches = 20
            ProcessResources.raiseOpenFileLimit(to: 4 * batchSize)
            try withServer(HardeningTests.router(calls: PathCounter())) { server in
                let core = server.server
                // A first batch lets the allocator and the loop reach their
                // steady state before the baseline is taken.
                try Self.runBatch(server, size: batchSize)
                #expect(try server.waitOnLoop { core.statistics.connectionsOpen == 0 })
                let baselineDescriptors = ProcessResources.openDescriptorCount()
                let baselineResident = ProcessResources.residentBytes()
                let baselineHeap = ProcessResources.heapBytesInUse()

                let started = ContinuousClock.now
                for _ in 0..<batches {
                    try Self.runBatch(server, size: batchSize)
                    let drained = try server.waitOnLoop { core.statistics.connectionsOpen == 0 }
                    #expect(drained, "the server closed every connection of the batch")
                }
                let elapsed = ContinuousClock.now - started

                let statistics = try server.statistics()
                #expect(statistics.connectionsTotal == (batches + 1) * batchSize)
                #expect(statistics.connectionsRejected == 0)
                #expect(statistics.connectionsOpen == 0)
                #expect(ProcessResources.socketCount(localPort: server.port) == 1, "only the listener remains")
                // Other suites may hold descriptors for a moment when they run
                // in parallel with this one, so the count may take a while to
                // come back.
                var descriptors = ProcessResources.openDescriptorCount()
                let deadline = ContinuousClock.now + .seconds(5)
                while descriptors > baselineDescriptors, ContinuousClock.now < deadline {
                    Thread.sleep(forTimeInterval: 0.05)
                    descriptors = ProcessResources.openDescriptorCount()
                }
                // Allocations of suites running in parallel come and go, so
                // the smallest of a few samples is taken.
                var heapGrowth = ProcessResources.heapBytesInUse() - baselineHeap
                for _ in 0..<20 where heapGrowth >= 2 * 1024 * 1024 {
                    Thread.sleep(forTimeInterval: 0.1)
                    heapGrowth = min(heapGrowth, ProcessResources.heapBytesInUse() - baselineHeap)
                }
                let residentGrowth = ProcessResources.residentBytes() - baselineResident
                print(
                    "\(batches * batchSize) connections in \(elapsed): descriptors \(baselineDescriptors) -> \(descriptors), heap in use grew by \(heapGrowth / 1024) KiB, resident set by \(residentGrowth / 1024) KiB"
                )
                #expect(descriptors <= baselineDescriptors)
                // Leaking the 256-byte field array of each connection would
                // grow the heap by about 2.6 MiB, and leaking the connection
                // structure by far more.
                #expect(heapGrowth < 2 * 1024 * 1024)
                #expect(residentGrowth < 8 * 1024 * 1024)
            }
        }

        /// Times `count` requests, each on a new connection that the server
        /// closes after the response, and `count` more on one keep-alive
        /// connection.
        static func measureLatency(_ server: TestServer, count: Int) throws -> (fresh: [Duration], keepAlive: [Duration]) {
            var fresh: [Duration] = []
            for _ in 0..<count {
                let started = ContinuousClock.now
                let client = try server.connect()
                try client.send(request("/probe", fields: ["Connection: close"]))
                let response = try client.readResponse()
                fresh.append(ContinuousClock.now - started)
                #expect(response.status == 200)
            }
            var keepAlive: [Duration] = []
            let client = try server.connect()
            for _ in 0..<count {
                let started = ContinuousClock.now
                try client.send(request("/probe"))
                let response = try client.readResponse()
                keepAlive.append(ContinuousClock.now - started)
                #expect(response.status == 200)
            }
            return (fresh, keepAlive)
        }

        /// Measures an honest client's latency with and without 1000
        /// connections that sent half a header and then nothing. The figures
        /// are printed. The checks are that every honest request gets a 200
        /// and that the slow connections stay open within their deadline.
        @Test func honestLatencyBesideSlowHeaders() throws {
            let slowCount = 1000
            let requests = 200
            ProcessResources.raiseOpenFileLimit(to: 4 * slowCount)
            let configuration = HardeningTests.configuration { $0.headerTimeout = 60 }
            try withServer(HardeningTests.router(calls: PathCounter()), configuration: configuration) { server in
                let core = server.server
                let alone = try Self.measureLatency(server, count: requests)

                var slow: [HTTPClient] = []
                for _ in 0..<slowCount {
                    let client = try server.connect()
                    try client.send("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
                    slow.append(client)
                }
                #expect(try server.waitOnLoop { core.statistics.connectionsOpen == slowCount })
                let beside = try Self.measureLatency(server, count: requests)

                let statistics = try server.statistics()
                #expect(statistics.headerTimeouts == 0)
                #expect(statistics.connectionsOpen >= slowCount, "the slow connections are still open")
                print("honest latency, new connection per request: \(LatencySummary(alone.fresh)) alone; \(LatencySummary(beside.fresh)) beside \(slowCount) slow headers")
                print("honest latency, one keep-alive connection: \(LatencySummary(alone.keepAlive)) alone; \(LatencySummary(beside.keepAlive)) beside \(slowCount) slow headers")

                slow.removeAll()
                #expect(try server.waitOnLoop { core.statistics.connectionsOpen == 0 })
            }
        }
    }
}
