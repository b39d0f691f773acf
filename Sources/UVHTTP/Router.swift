#if canImport(Glibc)
import Glibc
#endif

/// A handler that answers a request before returning.
public typealias Handler = (Request) -> Response

/// A handler that answers later, through its ``Responder``, for work that
/// must not block the loop. The connection reads no further request until
/// the response is sent, so pipelined answers stay in order.
public typealias DeferredHandler = (Request, Responder) -> Void

/// Why no route served a request.
public enum RouteMiss: Sendable, Equatable {
    /// No route has this path.
    case notFound
    /// Routes have this path, but none with this method. `allow` lists the
    /// methods they accept, as the `Allow` field writes them.
    case methodNotAllowed(allow: String)
}

/// A table from method and path to handler, built once before the server
/// starts and matched without allocating.
///
/// Paths are matched segment by segment on the bytes as sent. A segment
/// written `:name` matches any one non-empty segment and captures it in
/// ``Request/parameters``. A single trailing slash is ignored, so `/a/` is
/// the same resource as `/a`. GET routes also serve HEAD, without the body.
public struct Router {
    enum Segment {
        case literal([UInt8])
        case parameter(String)
    }

    enum Action {
        case immediate(Handler)
        case deferred(DeferredHandler)
    }

    /// A class, so handing a matched route around costs one reference
    /// count rather than one per field.
    final class Route {
        let method: HTTPMethod?
        let segments: [Segment]
        let parameterNames: [String]
        let action: Action

        init(method: HTTPMethod?, segments: [Segment], parameterNames: [String], action: Action) {
            self.method = method
            self.segments = segments
            self.parameterNames = parameterNames
            self.action = action
        }
    }

    var routes: [Route] = []

    /// The routes in a form matched without reference counting: plain
    /// integers, with each literal path's bytes in ``literalBytes``.
    struct CompiledRoute {
        /// Offset and length in ``literalBytes`` of the path without its
        /// trailing slash, for routes without parameters.
        var pathStart: Int
        var pathLength: Int
        /// ``HTTPMethod/code``: 0 for any method, 255 for a method without a
        /// code, whose token ``routes`` holds.
        var methodCode: UInt8
        var hasParameters: Bool
    }

    var compiled: [CompiledRoute] = []
    var literalBytes: [UInt8] = []

    /// Builds the response for a request no route serves. The default sends
    /// a plain-text 404, or a 405 with `Allow`.
    public var fallback: (Request, RouteMiss) -> Response = { _, miss in
        switch miss {
        case .notFound:
            return .text("Not Found\n", status: .notFound)
        case .methodNotAllowed(let allow):
            var response = Response.text("Method Not Allowed\n", status: .methodNotAllowed)
            response.headers.add("Allow", allow)
            return response
        }
    }

    /// Builds the response to a request the server rejected before routing
    /// it: a parse error, a framing rule, a limit or a timeout. The server
    /// closes the connection after it. The default sends the status as
    /// plain text.
    public var rejection: @Sendable (HTTPStatus) -> Response = { status in
        .text("\(status.reasonPhrase)\n", status: status)
    }

    /// Creates an empty table.
    public init() {}

    /// Adds a route for `method` (or every method when nil) and `path`.
    /// Routes are tried in the order added.
    public mutating func add(_ method: HTTPMethod?, _ path: String, _ handler: @escaping Handler) {
        append(method, path, .immediate(handler))
    }

    /// Adds a route whose handler answers later through a ``Responder``.
    public mutating func addDeferred(_ method: HTTPMethod?, _ path: String, _ handler: @escaping DeferredHandler) {
        append(method, path, .deferred(handler))
    }

    /// Adds a GET route, which also serves HEAD.
    public mutating func get(_ path: String, _ handler: @escaping Handler) {
        add(.get, path, handler)
    }

    /// Adds a POST route.
    public mutating func post(_ path: String, _ handler: @escaping Handler) {
        add(.post, path, handler)
    }

    private mutating func append(_ method: HTTPMethod?, _ path: String, _ action: Action) {
        precondition(path.hasPrefix("/"), "route path must start with '/', got \(path.debugDescription)")
        let segments = Router.split(Array(path.utf8)).map { bytes -> Segment in
            if bytes.first == UInt8(ascii: ":") {
                return .parameter(String(decoding: bytes.dropFirst(), as: UTF8.self))
            }
            return .literal(bytes)
        }
        let names = segments.compactMap { segment -> String? in
            if case .parameter(let name) = segment { return name }
            return nil
        }
        routes.append(Route(method: method, segments: segments, parameterNames: names, action: action))
        var literal = Array(path.utf8)
        if literal.count > 1 && literal.last == UInt8(ascii: "/") { literal.removeLast() }
        compiled.append(CompiledRoute(
            pathStart: literalBytes.count, pathLength: literal.count,
            methodCode: method.map { $0.code == 0 ? 255 : $0.code } ?? 0, hasParameters: !names.isEmpty))
        literalBytes += literal
    }

    /// Splits a path into segments, dropping the leading slash and one
    /// trailing slash.
    static func split(_ path: [UInt8]) -> [[UInt8]] {
        var trimmed = path[...]
        if trimmed.first == UInt8(ascii: "/") { trimmed = trimmed.dropFirst() }
        if trimmed.last == UInt8(ascii: "/") { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
    }

    /// The result of matching a request against the table.
    enum Match {
        case found(Route, captures: [Range<Int>])
        case miss(RouteMiss)
    }

    /// Finds the route for `method` and `path`, the path's bytes as sent.
    func match(method: HTTPMethod, path: UnsafeRawBufferPointer) -> Match {
        var pathMatched = false
        var headFallback: Int?
        let found: Int? = literalBytes.withUnsafeBytes { literals in
            compiled.withUnsafeBufferPointer { table in
                for index in table.indices {
                    let entry = table[index]
                    guard pathMatches(entry, index: index, path: path, literals: literals) else { continue }
                    pathMatched = true
                    if entry.methodCode == 0 || methodMatches(entry, index: index, method) {
                        return index
                    }
                    if method.code == HTTPMethod.head.code && entry.methodCode == HTTPMethod.get.code
                        && headFallback == nil
                    {
                        headFallback = index
                    }
                }
                return nil
            }
        }
        if let index = found ?? headFallback {
            let route = routes[index]
            let captures = compiled[index].hasParameters ? Router.capture(route.segments, in: path) ?? [] : []
            return .found(route, captures: captures)
        }
        guard pathMatched else { return .miss(.notFound) }
        return .miss(.methodNotAllowed(allow: allowedMethods(path: path)))
    }

    private func methodMatches(_ entry: CompiledRoute, index: Int, _ method: HTTPMethod) -> Bool {
        if entry.methodCode != 255 { return entry.methodCode == method.code }
        return routes[index].method == method
    }

    /// Compares a route's literal path with the request's, ignoring one
    /// trailing slash; routes with parameters take the segment matcher.
    private func pathMatches(
        _ entry: CompiledRoute, index: Int, path: UnsafeRawBufferPointer, literals: UnsafeRawBufferPointer
    ) -> Bool {
        if entry.hasParameters {
            return Router.capture(routes[index].segments, in: path) != nil
        }
        var length = path.count
        if length > 1 && path[length - 1] == UInt8(ascii: "/") { length -= 1 }
        // An absolute-form target without a path (`http://host`) names the
        // root, as RFC 9112 section 3.2.2 reads an empty path.
        if length == 0 { return entry.pathLength == 1 }
        guard length == entry.pathLength else { return false }
        return memcmp(path.baseAddress!, literals.baseAddress! + entry.pathStart, length) == 0
    }

    private func allowedMethods(path: UnsafeRawBufferPointer) -> String {
        var names: [String] = []
        for route in routes where Router.capture(route.segments, in: path) != nil {
            guard let method = route.method else { continue }
            if !names.contains(method.rawValue) { names.append(method.rawValue) }
            if method == .get && !names.contains("HEAD") { names.append("HEAD") }
        }
        return names.joined(separator: ", ")
    }

    /// Matches `segments` against `path`; returns the ranges captured by
    /// parameter segments, or nil when the path does not match.
    static func capture(_ segments: [Segment], in path: UnsafeRawBufferPointer) -> [Range<Int>]? {
        // An absolute-form target without a path (`http://host`) names the
        // root, as RFC 9112 section 3.2.2 reads an empty path.
        if path.count == 0 { return segments.isEmpty ? [] : nil }
        var end = path.count
        if end > 1 && path[end - 1] == UInt8(ascii: "/") { end -= 1 }
        guard end > 0, path[0] == UInt8(ascii: "/") else { return nil }
        var position = 1
        var captures: [Range<Int>] = []
        if segments.isEmpty { return position >= end ? captures : nil }
        for (index, segment) in segments.enumerated() {
            guard position <= end else { return nil }
            var segmentEnd = position
            while segmentEnd < end && path[segmentEnd] != UInt8(ascii: "/") {
                segmentEnd += 1
            }
            switch segment {
            case .literal(let bytes):
                guard segmentEnd - position == bytes.count else { return nil }
                for offset in 0..<bytes.count where path[position + offset] != bytes[offset] {
                    return nil
                }
            case .parameter:
                guard segmentEnd > position else { return nil }
                captures.append(position..<segmentEnd)
            }
            let isLast = index == segments.count - 1
            if isLast { return segmentEnd == end ? captures : nil }
            position = segmentEnd + 1
        }
        return nil
    }
}
