import Foundation
import Synchronization
internal import CUVHTTP

/// An HTTP/1.1 server on one libuv loop thread.
///
/// Build a ``Router``, create the server, ``listen(host:port:)`` on one or
/// more addresses, then ``run()`` on the current thread or ``start()`` a
/// thread of its own. Handlers run on the loop thread, one at a time, so
/// state they share needs no lock. Other threads reach the loop through
/// ``execute(_:)`` and end it with ``stop()``.
public final class HTTPServer: @unchecked Sendable {
    // Unchecked because `core` is touched only on the loop thread, or
    // before the loop starts; the other members are locked or immutable.
    private let core: ServerCore
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let state = Mutex<LifeCycle>(.idle)
    private let finished = DispatchSemaphore(value: 0)

    private enum LifeCycle {
        case idle
        case running
        case stopped
    }

    /// Creates a server that answers with `router`, reports its events to
    /// `logHandler` and, when given, each answered request to
    /// `accessLogHandler`.
    /// - Throws: ``UVError`` when the loop cannot be created.
    public init(
        router: Router, configuration: Configuration = Configuration(), logHandler: LogHandler? = nil,
        accessLogHandler: AccessLogHandler? = nil
    ) throws {
        core = ServerCore(
            router: router, configuration: configuration, logHandler: logHandler,
            accessLogHandler: accessLogHandler)
        try core.open { [unowned self] in self.runJobs() }
    }

    deinit {
        core.close()
    }

    /// Listens on `host` (a numeric IPv4 or IPv6 address or a resolvable
    /// name) and `port`; port 0 picks a free one. Call before the loop runs.
    /// - Returns: the port bound.
    /// - Throws: ``UVError`` when the address cannot be resolved or bound.
    @discardableResult
    public func listen(host: String, port: Int) throws -> Int {
        try core.listen(host: host, port: port)
    }

    /// Runs the loop on the calling thread until ``stop()`` is called.
    /// - Throws: ``UVError`` when a handle was left open at the end.
    public func run() throws {
        try state.withLock { lifeCycle in
            guard case .idle = lifeCycle else { throw UVError(code: -16, operation: "run") }
            lifeCycle = .running
        }
        defer {
            state.withLock { $0 = .stopped }
            finished.signal()
        }
        try core.run()
    }

    /// Runs the loop on a new thread and returns at once.
    public func start() {
        let thread = Thread { [self] in
            do {
                try run()
            } catch {
                core.log(.error, "server loop ended with an error", ["error": "\(error)"])
            }
        }
        thread.name = "uvhttp-loop"
        thread.start()
    }

    /// Stops the server gracefully: closes the listeners and idle
    /// connections at once, lets requests in progress finish with
    /// `Connection: close`, and closes whatever remains after `gracePeriod`
    /// seconds; then ``run()`` returns. Safe from any thread, and from a
    /// handler. A second call may shorten the grace period; 0 closes every
    /// connection at once.
    public func stop(gracePeriod: Double = 10) {
        execute { [core] in core.stop(gracePeriod: gracePeriod) }
    }

    /// Blocks until a loop started by ``run()`` or ``start()`` has returned.
    public func waitUntilStopped() {
        finished.wait()
        finished.signal()
    }

    /// Runs `work` on the loop thread soon. Safe from any thread; this is how
    /// other threads hand results to handlers and ``Responder``s. Once the
    /// server has stopped, `work` never runs.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(work) }
        core.wake()
    }

    /// Calls `work` on the loop thread every `interval` seconds until the
    /// server stops. Call before the loop runs, or on the loop thread.
    /// - Throws: ``UVError`` when the timer cannot be created.
    public func addTimer(every interval: Double, _ work: @escaping () -> Void) throws {
        try core.addTimer(milliseconds: UInt64(max(interval, 0.001) * 1000), work)
    }

    /// Calls `work` on the loop thread each time the process receives
    /// `signal`, such as `SIGTERM`, until the server stops. Call before the
    /// loop runs, or on the loop thread.
    /// - Throws: ``UVError`` when the signal cannot be watched.
    public func addSignalHandler(_ signal: Int32, _ work: @escaping () -> Void) throws {
        try core.addSignal(signal, work)
    }

    /// The server's counters. Read them on the loop thread, for example in
    /// ``execute(_:)``, or after the loop has stopped.
    public var statistics: Statistics { core.statistics }

    private func runJobs() {
        let pending = jobs.withLock { jobs -> [@Sendable () -> Void] in
            let taken = jobs
            jobs.removeAll(keepingCapacity: true)
            return taken
        }
        for job in pending {
            job()
        }
    }
}

extension HTTPServer {
    /// Limits and timeouts of a server.
    public struct Configuration: Sendable, Equatable {
        /// Maximum bytes of request line and header fields; 431 beyond.
        public var maxHeadBytes = 16 * 1024
        /// Maximum header fields in a request; 431 beyond.
        public var maxHeaderCount = 100
        /// Maximum bytes of the request target; 414 beyond.
        public var maxTargetBytes = 8 * 1024
        /// Maximum body bytes; 413 beyond.
        public var maxBodyBytes = 1024 * 1024
        /// Maximum open connections; further ones are closed as they are
        /// accepted and counted in ``Statistics/connectionsRejected``.
        public var maxConnections = 10_000
        /// Unsent output bytes past which the server stops reading from a
        /// connection until its output drains.
        public var outputHighWater = 1024 * 1024
        /// Seconds an idle keep-alive connection stays open; 0 keeps it open.
        /// Sent to clients as `Keep-Alive: timeout=N`.
        public var keepAliveTimeout = 20
        /// Seconds from a request's first byte to the end of its header; 408
        /// beyond. Bytes trickling in do not extend it. 0 disables it.
        public var headerTimeout: Double = 10
        /// Seconds allowed between two reads of a request body; 408 beyond.
        /// 0 disables it.
        public var bodyTimeout: Double = 10
        /// Seconds a response may wait for the client to read it before the
        /// connection is closed. 0 disables it.
        public var writeTimeout: Double = 30
        /// Maximum chunk-extension bytes per chunk; 413 beyond.
        public var maxChunkExtensionBytes = 16 * 1024
        /// Maximum requests per connection; the last is answered with
        /// `Connection: close`. 0 means unlimited.
        public var maxRequestsPerConnection = 0

        /// Creates the default configuration.
        public init() {}
    }

    /// Counters of a server since it started.
    public struct Statistics: Sendable, Equatable {
        /// Connections open now.
        public var connectionsOpen: Int
        /// Connections accepted, including those rejected.
        public var connectionsTotal: Int
        /// Connections closed at accept because ``Configuration/maxConnections`` were open.
        public var connectionsRejected: Int
        /// Requests parsed completely and handed to a handler.
        public var requests: Int
        /// Requests rejected by the parser, a framing rule, a limit or a
        /// timeout.
        public var parseErrors: Int
        /// Requests whose header did not arrive within ``Configuration/headerTimeout``.
        public var headerTimeouts: Int
        /// Requests whose body stalled longer than ``Configuration/bodyTimeout``.
        public var bodyTimeouts: Int
        /// Keep-alive connections closed after ``Configuration/keepAliveTimeout``.
        public var idleTimeouts: Int
        /// Connections closed because the client did not read within
        /// ``Configuration/writeTimeout``.
        public var writeTimeouts: Int
    }
}

/// An error from libuv, such as a port already in use.
public struct UVError: Error, CustomStringConvertible, Equatable {
    /// The negative libuv error code.
    public let code: Int32
    /// What was being done, such as `listen on 127.0.0.1:80`.
    public let operation: String

    /// Creates an error from a libuv code.
    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// libuv's name for the code, such as `EADDRINUSE`.
    public var name: String { String(cString: uvh_error_name(code)) }

    /// The operation, libuv's message and the error name.
    public var description: String {
        "\(operation) failed: \(String(cString: uvh_error_message(code))) (\(name))"
    }
}
