internal import CUVHTTP

/// The loop-thread side of ``HTTPServer``: it owns the C server, receives its
/// callbacks, routes requests and writes responses. Every method runs on the
/// loop thread, except ``wake()``.
final class ServerCore: @unchecked Sendable {
    // Unchecked because only the loop thread touches its state; other
    // threads reach it through `wake()`, which calls the thread-safe
    // uv_async_send.
    let router: Router
    let configuration: HTTPServer.Configuration
    let logHandler: LogHandler?
    private var server: OpaquePointer?
    private var onWake: () -> Void = {}
    private var stopped = false

    /// Closures of timers and signal watchers, kept alive for the C side.
    private var watchers: [Watcher] = []

    /// Connections whose request is deferred, by connection id.
    var deferred: [UInt64: OpaquePointer] = [:]
    /// The connections whose deferred handler is running now, innermost
    /// last, and whether each one's responder already answered during the
    /// call. There can be more than one because a handler that answers
    /// another deferred request lets that connection dispatch its next one.
    var dispatching: [(id: UInt64, answered: Bool)] = []

    let accessLogHandler: AccessLogHandler?

    init(
        router: Router, configuration: HTTPServer.Configuration, logHandler: LogHandler?,
        accessLogHandler: AccessLogHandler?
    ) {
        self.router = router
        self.configuration = configuration
        self.logHandler = logHandler
        self.accessLogHandler = accessLogHandler
    }

    func open(onWake: @escaping () -> Void) throws {
        self.onWake = onWake
        var limits = uvh_limits_t()
        uvh_limits_init(&limits)
        limits.max_head_bytes = UInt32(clamping: configuration.maxHeadBytes)
        limits.max_header_count = UInt32(clamping: configuration.maxHeaderCount)
        limits.max_target_bytes = UInt32(clamping: configuration.maxTargetBytes)
        limits.max_body_bytes = UInt32(clamping: configuration.maxBodyBytes)
        limits.max_connections = UInt32(clamping: configuration.maxConnections)
        limits.output_high_water = UInt32(clamping: configuration.outputHighWater)
        limits.keep_alive_timeout_ms = UInt32(clamping: configuration.keepAliveTimeout * 1000)
        limits.header_timeout_ms = Self.milliseconds(configuration.headerTimeout)
        limits.body_timeout_ms = Self.milliseconds(configuration.bodyTimeout)
        limits.write_timeout_ms = Self.milliseconds(configuration.writeTimeout)
        limits.max_chunk_extension_bytes = UInt32(clamping: configuration.maxChunkExtensionBytes)
        limits.max_requests_per_connection = UInt32(clamping: configuration.maxRequestsPerConnection)
        var callbacks = uvh_callbacks_t()
        callbacks.on_request = { context, conn, request in
            ServerCore.from(context).handle(conn: conn!, request: request!)
        }
        callbacks.on_error = { context, conn, status, reason in
            ServerCore.from(context).reject(conn: conn!, status: Int(status), reason: reason)
        }
        callbacks.on_expect_continue = { context, conn, request in
            ServerCore.from(context).expectContinue(conn: conn!, request: request!)
        }
        callbacks.on_deferred_close = { context, id in
            ServerCore.from(context).deferred[id] = nil
        }
        callbacks.on_wake = { context in
            ServerCore.from(context).onWake()
        }
        callbacks.on_log = { context, level, message, detail in
            let core = ServerCore.from(context)
            var metadata: [String: String] = [:]
            if let detail { metadata["error"] = String(cString: detail) }
            core.log(LogLevel(rawValue: Int(level)) ?? .debug, String(cString: message!), metadata)
        }
        guard let server = uvh_server_create(&callbacks, Unmanaged.passUnretained(self).toOpaque(), &limits) else {
            throw UVError(code: -12, operation: "create loop")
        }
        self.server = server
    }

    private static func milliseconds(_ seconds: Double) -> UInt32 {
        UInt32(clamping: Int((max(seconds, 0) * 1000).rounded()))
    }

    private static func from(_ context: UnsafeMutableRawPointer?) -> ServerCore {
        Unmanaged<ServerCore>.fromOpaque(context!).takeUnretainedValue()
    }

    func close() {
        if let server {
            uvh_server_destroy(server)
            self.server = nil
        }
    }

    func listen(host: String, port: Int) throws -> Int {
        var bound: Int32 = 0
        let error = uvh_server_listen(server, host, Int32(port), &bound)
        guard error == 0 else {
            throw UVError(code: error, operation: "listen on \(host) port \(port)")
        }
        log(.info, "listening", ["host": host, "port": "\(bound)"])
        return Int(bound)
    }

    func run() throws {
        let error = uvh_server_run(server)
        log(.info, "stopped", statisticsMetadata())
        guard error == 0 else { throw UVError(code: error, operation: "close loop") }
    }

    func stop(gracePeriod: Double) {
        if !stopped {
            log(.info, "stopping", [
                "connections": "\(statistics.connectionsOpen)", "grace_period_seconds": "\(gracePeriod)",
            ])
        }
        stopped = true
        uvh_server_stop(server, UInt64((max(gracePeriod, 0) * 1000).rounded()))
    }

    final class Watcher {
        let work: () -> Void
        init(_ work: @escaping () -> Void) { self.work = work }
    }

    private static let runWatcher: uvh_event_cb = { argument in
        Unmanaged<Watcher>.fromOpaque(argument!).takeUnretainedValue().work()
    }

    func addTimer(milliseconds: UInt64, _ work: @escaping () -> Void) throws {
        let watcher = Watcher(work)
        watchers.append(watcher)
        let error = uvh_server_add_timer(server, milliseconds, ServerCore.runWatcher,
                                         Unmanaged.passUnretained(watcher).toOpaque())
        guard error == 0 else { throw UVError(code: error, operation: "start timer") }
    }

    func addSignal(_ signal: Int32, _ work: @escaping () -> Void) throws {
        let watcher = Watcher(work)
        watchers.append(watcher)
        let error = uvh_server_add_signal(server, signal, ServerCore.runWatcher,
                                          Unmanaged.passUnretained(watcher).toOpaque())
        guard error == 0 else { throw UVError(code: error, operation: "watch signal \(signal)") }
    }

    /// Wakes the loop; the C side ignores it once the loop is closing.
    func wake() {
        uvh_server_wake(server)
    }

    var statistics: HTTPServer.Statistics {
        var stats = uvh_stats_t()
        uvh_server_stats(server, &stats)
        return HTTPServer.Statistics(
            connectionsOpen: Int(stats.connections_open),
            connectionsTotal: Int(stats.connections_total),
            connectionsRejected: Int(stats.connections_rejected),
            requests: Int(stats.requests),
            parseErrors: Int(stats.parse_errors),
            headerTimeouts: Int(stats.header_timeouts),
            bodyTimeouts: Int(stats.body_timeouts),
            idleTimeouts: Int(stats.idle_timeouts),
            writeTimeouts: Int(stats.write_timeouts)
        )
    }

    private func statisticsMetadata() -> [String: String] {
        let stats = statistics
        return [
            "connections_total": "\(stats.connectionsTotal)",
            "connections_rejected": "\(stats.connectionsRejected)",
            "requests": "\(stats.requests)",
            "parse_errors": "\(stats.parseErrors)",
            "header_timeouts": "\(stats.headerTimeouts)",
            "body_timeouts": "\(stats.bodyTimeouts)",
            "idle_timeouts": "\(stats.idleTimeouts)",
            "write_timeouts": "\(stats.writeTimeouts)",
        ]
    }

    func log(_ level: LogLevel, _ message: String, _ metadata: [String: String] = [:]) {
        guard let logHandler else { return }
        let ordered = metadata.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
        logHandler(LogRecord(level: level, message: message, metadata: ordered))
    }
}

// MARK: - Requests

extension ServerCore {
    fileprivate func handle(conn: OpaquePointer, request raw: UnsafePointer<uvh_request_t>) -> Int32 {
        var request = Request(raw: raw, method: MethodTable.method(raw))
        let access = accessLogHandler == nil ? nil : PendingAccess(request)
        switch router.match(method: request.method, path: request.pathBytes) {
        case .miss(let miss):
            send(router.fallback(request, miss), for: request, on: conn, access: access)
            return Int32(UVH_RESPONDED)
        case .found(let route, let captures):
            if !route.parameterNames.isEmpty {
                request.parameters = PathParameters(names: route.parameterNames, path: request.pathBytes, ranges: captures)
            }
            switch route.action {
            case .immediate(let handler):
                send(handler(request), for: request, on: conn, access: access)
                return Int32(UVH_RESPONDED)
            case .deferred(let handler):
                return runDeferred(handler, request: request, conn: conn, access: access)
            }
        }
    }

    /// Decides whether a request with `Expect: 100-continue` may send its
    /// body: yes when a route will take it; otherwise the fallback's answer
    /// goes out at once and its status is returned (RFC 9110 section
    /// 10.1.1).
    fileprivate func expectContinue(conn: OpaquePointer, request raw: UnsafePointer<uvh_request_t>) -> Int32 {
        let request = Request(raw: raw, method: MethodTable.method(raw))
        guard case .miss(let miss) = router.match(method: request.method, path: request.pathBytes) else {
            return Int32(UVH_CONTINUE)
        }
        var response = router.fallback(request, miss)
        response.closesConnection = true
        send(response, for: request, on: conn, access: accessLogHandler == nil ? nil : PendingAccess(request))
        return Int32(response.status.code)
    }

    private func runDeferred(
        _ handler: DeferredHandler, request: Request, conn: OpaquePointer, access: PendingAccess?
    ) -> Int32 {
        let responder = Responder(core: self, request: request, configuration: configuration, access: access)
        dispatching.append((request.connectionID, false))
        deferred[request.connectionID] = conn
        handler(request, responder)
        let answered = dispatching.removeLast().answered
        if answered {
            deferred[request.connectionID] = nil
            return Int32(UVH_RESPONDED)
        }
        return Int32(UVH_DEFERRED)
    }

    /// Writes `response` to `conn`, replacing it with a 500 when one of its
    /// fields could not be written safely.
    func send(_ response: borrowing Response, for request: Request, on conn: OpaquePointer, access: PendingAccess?) {
        let context = ResponseEncoder.Context(
            isHead: request.method == .head,
            minorVersion: request.version.minor,
            keepAlive: request.keepAlive && !response.closesConnection && !stopped,
            keepAliveTimeoutSeconds: configuration.keepAliveTimeout,
            access: access
        )
        send(response, context: context, on: conn)
    }

    func send(_ response: borrowing Response, context: borrowing ResponseEncoder.Context, on conn: OpaquePointer) {
        if let invalid = response.headers.entries.first(where: { !FieldValidation.isValid(name: $0.name, value: $0.value) }) {
            log(.error, "response header field rejected", ["field": invalid.name, "status": "\(response.status.code)"])
            var replacement = Response.text("Internal Server Error\n", status: .internalServerError)
            replacement.closesConnection = true
            return send(replacement, context: context, on: conn)
        }
        let keepAlive = context.keepAlive && !response.closesConnection && !stopped
        guard ResponseEncoder.write(
            response, context: context, keepAlive: keepAlive, date: uvh_server_date(server), conn: conn)
        else {
            log(.error, "out of memory for response")
            uvh_conn_close_after_output(conn)
            return
        }
        if !keepAlive {
            uvh_conn_close_after_output(conn)
        }
        if let access = context.access, let accessLogHandler {
            accessLogHandler(access.entry(status: response.status.code, bodyBytes: response.body.count))
        }
    }

    fileprivate func reject(conn: OpaquePointer, status code: Int, reason: UnsafePointer<CChar>?) {
        log(.debug, "request rejected", ["status": "\(code)", "reason": reason.map { String(cString: $0) } ?? ""])
        var response = router.rejection(HTTPStatus.code(code))
        response.closesConnection = true
        let access = accessLogHandler == nil ? nil : PendingAccess(rejectedOn: conn)
        let context = ResponseEncoder.Context(
            isHead: false, minorVersion: 1, keepAlive: false, keepAliveTimeoutSeconds: 0, access: access)
        send(response, context: context, on: conn)
    }
}

/// Maps a request's method bytes to ``HTTPMethod`` values without building
/// a string for the common methods.
enum MethodTable {
    private static let known: [HTTPMethod] = [.get, .head, .post, .put, .delete, .patch, .options]

    static func method(_ raw: UnsafePointer<uvh_request_t>) -> HTTPMethod {
        let span = raw.pointee.method
        let bytes = UnsafeRawBufferPointer(start: raw.pointee.base! + Int(span.offset), count: Int(span.length))
        if bytes.count == 3 && bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E")
            && bytes[2] == UInt8(ascii: "T")
        {
            return .get
        }
        for method in known where equals(bytes, method.rawValue) {
            return method
        }
        return HTTPMethod(String(decoding: bytes, as: UTF8.self))
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        guard bytes.count == name.utf8.count else { return false }
        return zip(bytes, name.utf8).allSatisfy { $0 == $1 }
    }
}
