internal import CUVHTTP

/// A request as the handler sees it.
///
/// The request borrows the connection's buffers: its views are valid only
/// while the handler runs. Copy what must outlive the call, for example with
/// ``bodyBytes`` or by converting a header to `String`.
public struct Request {
    let raw: UnsafePointer<uvh_request_t>
    /// The request method.
    public let method: HTTPMethod
    /// Byte range of the path within the request target, without the query.
    let pathSpan: Range<Int>
    /// Byte range of the query after `?`, empty when there is none.
    let querySpan: Range<Int>
    /// Values captured by the route's `:name` segments.
    public internal(set) var parameters: PathParameters

    init(raw: UnsafePointer<uvh_request_t>, method: HTTPMethod) {
        self.raw = raw
        self.method = method
        let target = raw.pointee.target
        let start = Int(target.offset)
        let end = start + Int(target.length)
        let base = raw.pointee.base!
        let pathStart = Request.pathStart(base: base, start: start, end: end)
        var queryMark = pathStart
        while queryMark < end && base[queryMark] != UInt8(ascii: "?") {
            queryMark += 1
        }
        pathSpan = pathStart..<queryMark
        querySpan = (queryMark < end ? queryMark + 1 : end)..<end
        parameters = PathParameters()
    }

    /// Finds where the path begins: the target itself in origin form
    /// (`/a/b`), or after the authority in absolute form (`http://h/a/b`),
    /// as RFC 9112 section 3.2 allows.
    private static func pathStart(base: UnsafePointer<CChar>, start: Int, end: Int) -> Int {
        guard start < end, base[start] != CChar(UInt8(ascii: "/")) else { return start }
        var index = start
        var slashes = 0
        while index < end {
            if base[index] == CChar(UInt8(ascii: "/")) {
                slashes += 1
                if slashes == 3 { return index }
            }
            index += 1
        }
        return slashes == 2 ? end : start
    }

    var base: UnsafeRawPointer { UnsafeRawPointer(raw.pointee.base!) }

    func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    func bytes(_ span: uvh_span_t) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + Int(span.offset), count: Int(span.length))
    }

    /// The request target exactly as sent, such as `/identity?x=1`.
    public var target: String { String(decoding: bytes(raw.pointee.target), as: UTF8.self) }

    /// The path as sent, without the query and not percent-decoded.
    public var path: String { String(decoding: pathBytes, as: UTF8.self) }

    /// The path's bytes as sent, without the query.
    public var pathBytes: UnsafeRawBufferPointer { bytes(pathSpan) }

    /// The query's percent-decoded parameters.
    public var query: QueryParameters { QueryParameters(bytes: bytes(querySpan)) }

    /// The header fields, in the order received.
    public var headers: RequestHeaders { RequestHeaders(request: self) }

    /// The body, valid while the handler runs. Chunked bodies arrive decoded.
    public var body: UnsafeRawBufferPointer { bytes(raw.pointee.body) }

    /// A copy of the body.
    public var bodyBytes: [UInt8] { Array(body) }

    /// The HTTP version as (major, minor), such as (1, 1).
    public var version: (major: Int, minor: Int) {
        (Int(raw.pointee.http_major), Int(raw.pointee.http_minor))
    }

    /// Whether the connection may stay open after this request, by HTTP/1.0
    /// and 1.1 rules and the `Connection` header.
    public var keepAlive: Bool { raw.pointee.keep_alive != 0 }

    /// An identifier of the connection that carried the request, unique for
    /// the life of the server.
    public var connectionID: UInt64 { raw.pointee.connection_id }

    /// The address of the peer that sent the request.
    public var peerAddress: SocketAddress? { SocketAddress(raw.pointee.peer) }
}

/// Values captured by `:name` segments of a route.
public struct PathParameters {
    var names: [String] = []
    var path: UnsafeRawBufferPointer?
    var ranges: [Range<Int>] = []

    /// The percent-decoded value captured for the segment `:name`.
    public subscript(name: String) -> String? {
        guard let index = names.firstIndex(of: name), let path, index < ranges.count else { return nil }
        let slice = UnsafeRawBufferPointer(rebasing: path[ranges[index]])
        return PercentDecoding.decode(slice, plusAsSpace: false)
    }
}
