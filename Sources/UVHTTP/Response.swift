/// Response header fields set by a handler, in the order they are written.
///
/// The server adds `Date`, `Content-Length` and, when needed, `Connection`
/// and `Keep-Alive` itself; fields of those names set here are written too,
/// so leave them out.
public struct HTTPFields: Sequence, ExpressibleByDictionaryLiteral, Sendable {
    var entries: [(name: String, value: String)] = []

    /// Creates an empty set of fields.
    public init() {}

    /// Creates fields from (name, value) pairs, keeping their order.
    public init(dictionaryLiteral elements: (String, String)...) {
        entries = elements.map { (name: $0.0, value: $0.1) }
    }

    /// Appends a field, keeping any earlier one of the same name.
    public mutating func add(_ name: String, _ value: String) {
        entries.append((name, value))
    }

    /// Replaces every field named `name` (any case) with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        entries.append((name, value))
    }

    /// Removes every field named `name`, compared without regard to case.
    public mutating func remove(_ name: String) {
        let lowered = name.lowercased()
        entries.removeAll { $0.name.lowercased() == lowered }
    }

    /// The first value of the field `name`, compared without regard to case.
    public subscript(name: String) -> String? {
        let lowered = name.lowercased()
        return entries.first { $0.name.lowercased() == lowered }?.value
    }

    /// The number of fields.
    public var count: Int { entries.count }

    /// Iterates the (name, value) pairs in order.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        entries.makeIterator()
    }
}

/// A response a handler returns.
public struct Response: Sendable {
    /// The status.
    public var status: HTTPStatus
    /// Header fields, written after those of ``prepared``.
    public var headers: HTTPFields
    /// The body. For HEAD requests the server sends its length, not its bytes.
    public var body: [UInt8]
    /// Whether the server closes the connection after this response.
    public var closesConnection: Bool = false
    /// Pre-encoded status line and fields that are copied in front of
    /// ``headers``.
    public private(set) var prepared: PreparedResponse?

    /// Creates a response.
    public init(status: HTTPStatus = .ok, headers: HTTPFields = HTTPFields(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Creates a response from a pre-encoded one. Its body is shared, not
    /// copied, and fields added to ``headers`` follow its own.
    public init(_ prepared: PreparedResponse) {
        self.status = prepared.status
        self.headers = HTTPFields()
        self.body = prepared.body
        self.prepared = prepared
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }
}

/// Raised when a field name or value cannot be written safely.
public struct HTTPFieldError: Error, CustomStringConvertible {
    /// The name of the offending field.
    public let name: String
    /// The error, naming the field and the rule it breaks.
    public var description: String {
        "header field \(name.debugDescription): names must be tokens and values must not contain CR, LF or NUL"
    }
}

/// A response encoded once and sent many times: its status line and header
/// fields are stored as wire bytes, and its body is shared by every response
/// made from it. Rebuild it when its content changes.
public final class PreparedResponse: Sendable {
    /// The status.
    public let status: HTTPStatus
    /// The body.
    public let body: [UInt8]
    /// The status line and fields as written on the wire.
    let head: [UInt8]
    /// The fields alone as written on the wire, used when a response made
    /// from this one changes its status.
    let fields: [UInt8]

    /// Encodes a response. Throws ``HTTPFieldError`` when a field could not
    /// be written safely.
    public init(status: HTTPStatus = .ok, headers: HTTPFields, body: [UInt8]) throws {
        var fields: [UInt8] = []
        for field in headers.entries {
            guard FieldValidation.isValid(name: field.name, value: field.value) else {
                throw HTTPFieldError(name: field.name)
            }
            fields += field.name.utf8
            fields += ": ".utf8
            fields += field.value.utf8
            fields += "\r\n".utf8
        }
        self.status = status
        self.body = body
        self.fields = fields
        self.head = ResponseEncoder.statusLine(status) + fields
    }
}

enum FieldValidation {
    /// Whether `byte` may appear in a field name: an RFC 9110 section 5.6.2
    /// token character.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Whether a field can be written without letting its content end the
    /// line: the name is a non-empty token and the value has no CR, LF or
    /// NUL (RFC 9110 section 5.5).
    static func isValid(name: String, value: String) -> Bool {
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else { return false }
        return !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }
}
