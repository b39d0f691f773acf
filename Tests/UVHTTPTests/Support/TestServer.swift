import Foundation
import Synchronization
import Testing
@testable import UVHTTP

/// How a test server's loop ended.
enum LoopEnding: Equatable, CustomStringConvertible {
    /// `run()` returned normally: every handle was closed.
    case clean
    /// `run()` threw, for example because a handle was left open.
    case failed(String)
    /// `run()` had not returned when the test stopped waiting.
    case stillRunning

    var description: String {
        switch self {
        case .clean: return "clean"
        case .failed(let error): return "failed: \(error)"
        case .stillRunning: return "still running"
        }
    }
}

/// An ``HTTPServer`` on 127.0.0.1 and a free port, its loop run with
/// `try run()` on a thread of its own so that an error from it is seen.
final class TestServer: Sendable {
    let server: HTTPServer
    let port: Int
    private let loopError = Mutex<String?>(nil)
    private let loopThreadID = Mutex<pthread_t?>(nil)
    private let loopReturned = DispatchSemaphore(value: 0)

    init(router: Router, configuration: HTTPServer.Configuration = HTTPServer.Configuration()) throws {
        let server = try HTTPServer(router: router, configuration: configuration)
        self.server = server
        port = try server.listen(host: "127.0.0.1", port: 0)
        let thread = Thread { [self] in
            loopThreadID.withLock { $0 = pthread_self() }
            do {
                try server.run()
            } catch {
                loopError.withLock { $0 = "\(error)" }
            }
            loopReturned.signal()
        }
        thread.name = "uvhttp-test-loop"
        thread.start()
    }

    /// The thread that runs the loop.
    var loopThread: pthread_t? { loopThreadID.withLock { $0 } }

    /// Opens a new connection to the server.
    func connect(timeout: Duration = .seconds(5)) throws -> HTTPClient {
        try HTTPClient(port: port, timeout: timeout)
    }

    /// Runs `work` on the loop thread and returns its result.
    func onLoop<T: Sendable>(_ work: @escaping @Sendable () -> T) throws -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        server.execute {
            let value = work()
            result.withLock { $0 = value }
            done.signal()
        }
        guard done.wait(timeout: .now() + 5) == .success else {
            throw ClientError("timed out after 5 s waiting for the loop to run a job")
        }
        return result.withLock { $0! }
    }

    /// Reads the server's counters on the loop thread.
    func statistics() throws -> HTTPServer.Statistics {
        try onLoop { [server] in server.statistics }
    }

    /// Waits on the loop until `condition` holds, checking it once per job.
    func waitOnLoop(until condition: @escaping @Sendable () -> Bool) throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if try onLoop(condition) { return true }
            Thread.sleep(forTimeInterval: 0.002)
        }
        return false
    }

    /// Stops the server, gracefully unless `gracePeriod` is given, and waits
    /// for `run()` to return.
    func stop(gracePeriod: Double? = nil) -> LoopEnding {
        if let gracePeriod {
            server.stop(gracePeriod: gracePeriod)
        } else {
            server.stop()
        }
        return waitForLoop()
    }

    /// Waits for `run()` to return, after a stop issued elsewhere. The wait
    /// outlasts the default grace period of ``HTTPServer/stop(gracePeriod:)``.
    func waitForLoop(timeout: Double = 15) -> LoopEnding {
        guard loopReturned.wait(timeout: .now() + timeout) == .success else { return .stillRunning }
        loopReturned.signal()
        server.waitUntilStopped()
        if let error = loopError.withLock({ $0 }) { return .failed(error) }
        return .clean
    }
}

/// Runs `body` against a fresh server, then stops it and checks that the
/// loop closes with no handle left, whether or not `body` threw.
func withServer<T>(
    _ router: Router,
    configuration: HTTPServer.Configuration = HTTPServer.Configuration(),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (TestServer) throws -> T
) throws -> T {
    let server = try TestServer(router: router, configuration: configuration)
    let outcome = Result { try body(server) }
    let ending = server.stop()
    #expect(ending == .clean, "the loop closes with no handle left", sourceLocation: sourceLocation)
    return try outcome.get()
}

/// A count shared between handlers on the loop thread and the test.
final class Counter: Sendable {
    private let value = Mutex(0)

    func increment() {
        value.withLock { $0 += 1 }
    }

    var count: Int { value.withLock { $0 } }
}

/// Values recorded by handlers, read by the test.
final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) {
        values.withLock { $0.append(value) }
    }

    var all: [Value] { values.withLock { $0 } }
}

/// Holds a value that only the loop thread touches, so it can cross into
/// `execute` closures.
final class LoopOwned<Value>: @unchecked Sendable {
    var value: Value

    init(_ value: Value) {
        self.value = value
    }
}

/// Builds a request without a body, with `Host` and any extra fields.
func request(
    _ target: String, method: String = "GET", version: String = "HTTP/1.1", fields: [String] = []
) -> String {
    var text = "\(method) \(target) \(version)\r\nHost: localhost\r\n"
    for field in fields {
        text += field + "\r\n"
    }
    return text + "\r\n"
}

/// Builds a request with a `Content-Length` body.
func request(_ target: String, method: String = "POST", body: [UInt8], fields: [String] = []) -> [UInt8] {
    var head = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.count)\r\n"
    for field in fields {
        head += field + "\r\n"
    }
    return Array((head + "\r\n").utf8) + body
}

/// Encodes `body` in chunked transfer coding, in chunks of at most
/// `chunkSize` bytes.
func chunked(_ body: [UInt8], chunkSize: Int) -> [UInt8] {
    var encoded: [UInt8] = []
    var start = 0
    while start < body.count {
        let end = min(start + chunkSize, body.count)
        encoded += Array(String(end - start, radix: 16).utf8) + [13, 10]
        encoded += body[start..<end]
        encoded += [13, 10]
        start = end
    }
    return encoded + Array("0\r\n\r\n".utf8)
}
