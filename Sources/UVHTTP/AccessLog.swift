#if canImport(Glibc)
import Glibc
#endif
internal import CUVHTTP

/// One answered request, as an access log records it.
public struct AccessLogEntry: Sendable {
    /// The request method.
    public let method: HTTPMethod
    /// The request target as sent, query included. It may carry secrets such
    /// as tokens, so redact before writing it anywhere.
    public let target: String
    /// The response status code.
    public let status: Int
    /// Body bytes of the response (the length sent for HEAD, though no body
    /// goes out).
    public let bodyBytes: Int
    /// Microseconds from the complete request to its response being queued.
    public let microseconds: Int
    /// The client's address.
    public let peer: SocketAddress?
}

/// Receiver of one ``AccessLogEntry`` per answered request, called on the
/// loop thread after the response is queued. It should buffer rather than
/// write per call. A request rejected before routing (a parse error, a
/// limit or a timeout) is reported with method and target `-`, because the
/// server did not read them whole.
public typealias AccessLogHandler = (AccessLogEntry) -> Void

/// The parts of a request an access log entry needs, copied when the request
/// arrives because a deferred response outlives the request's views.
struct PendingAccess {
    let method: HTTPMethod
    let target: String
    let peer: SocketAddress?
    let startNanoseconds: UInt64

    init(_ request: Request) {
        method = request.method
        target = request.target
        peer = request.peerAddress
        startNanoseconds = PendingAccess.now()
    }

    /// The entry for a request rejected before routing, of which only the
    /// peer is known.
    init(rejectedOn conn: OpaquePointer) {
        method = HTTPMethod("-")
        target = "-"
        peer = SocketAddress(uvh_conn_peer(conn))
        startNanoseconds = PendingAccess.now()
    }

    func entry(status: Int, bodyBytes: Int) -> AccessLogEntry {
        let elapsed = PendingAccess.now() &- startNanoseconds
        return AccessLogEntry(
            method: method, target: target, status: status, bodyBytes: bodyBytes,
            microseconds: Int(elapsed / 1000), peer: peer)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
