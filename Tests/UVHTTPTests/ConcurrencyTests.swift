import Foundation
import Testing
@testable import UVHTTP

/// Many clients at once against one loop.
struct ConcurrencyTests {
    @Test func manyConcurrentClientsAreServed() throws {
        let clients = 50
        let requestsPerClient = 20
        try withServer(standardRouter()) { server in
            let failures = Recorder<String>()
            let correct = Counter()
            let group = DispatchGroup()
            for clientIndex in 0..<clients {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    do {
                        let client = try server.connect()
                        for requestIndex in 0..<requestsPerClient {
                            let id = "\(clientIndex)-\(requestIndex)"
                            try client.send(request("/n/\(id)"))
                            let response = try client.readResponse()
                            if response.status == 200 && response.text == id {
                                correct.increment()
                            } else {
                                failures.append("\(id): \(response.status) \(response.text)")
                            }
                        }
                    } catch {
                        failures.append("client \(clientIndex): \(error)")
                    }
                }
                thread.stackSize = 256 * 1024
                thread.start()
            }
            #expect(group.wait(timeout: .now() + 30) == .success)
            #expect(failures.all == [])
            #expect(correct.count == clients * requestsPerClient)
            let statistics = try server.statistics()
            #expect(statistics.requests == clients * requestsPerClient)
            #expect(statistics.connectionsTotal == clients)
            #expect(statistics.parseErrors == 0)
        }
    }

    @Test func pipelinedClientsKeepOwnOrder() throws {
        let clients = 20
        let requestsPerClient = 50
        try withServer(standardRouter()) { server in
            let connections = try (0..<clients).map { _ in try server.connect() }
            for (clientIndex, client) in connections.enumerated() {
                try client.send((0..<requestsPerClient).map { request("/n/\(clientIndex)-\($0)") }.joined())
            }
            var mismatches: [String] = []
            for (clientIndex, client) in connections.enumerated() {
                for requestIndex in 0..<requestsPerClient {
                    let text = try client.readResponse().text
                    if text != "\(clientIndex)-\(requestIndex)" { mismatches.append(text) }
                }
            }
            #expect(mismatches == [])
            #expect(try server.statistics().requests == clients * requestsPerClient)
        }
    }
}
