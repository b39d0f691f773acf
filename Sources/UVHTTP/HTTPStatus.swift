/// A response status code and its reason phrase.
public struct HTTPStatus: Hashable, Sendable, CustomStringConvertible {
    /// The three-digit status code.
    public let code: Int
    /// The reason phrase written after the code on the status line.
    public let reasonPhrase: String

    /// Creates a status. `code` must be in 100...999.
    public init(code: Int, reasonPhrase: String) {
        precondition((100...999).contains(code), "HTTP status code must have three digits, got \(code)")
        self.code = code
        self.reasonPhrase = reasonPhrase
    }

    /// The code and reason phrase, such as `404 Not Found`.
    public var description: String { "\(code) \(reasonPhrase)" }

    /// Whether a response with this status has no body and no
    /// `Content-Length` (RFC 9110 sections 8.6 and 15: 1xx, 204 and 304).
    public var forbidsBody: Bool { code < 200 || code == 204 || code == 304 }

    /// `100 Continue`.
    public static let `continue` = HTTPStatus(code: 100, reasonPhrase: "Continue")
    /// `200 OK`.
    public static let ok = HTTPStatus(code: 200, reasonPhrase: "OK")
    /// `201 Created`.
    public static let created = HTTPStatus(code: 201, reasonPhrase: "Created")
    /// `204 No Content`.
    public static let noContent = HTTPStatus(code: 204, reasonPhrase: "No Content")
    /// `304 Not Modified`.
    public static let notModified = HTTPStatus(code: 304, reasonPhrase: "Not Modified")
    /// `400 Bad Request`.
    public static let badRequest = HTTPStatus(code: 400, reasonPhrase: "Bad Request")
    /// `401 Unauthorized`.
    public static let unauthorized = HTTPStatus(code: 401, reasonPhrase: "Unauthorized")
    /// `403 Forbidden`.
    public static let forbidden = HTTPStatus(code: 403, reasonPhrase: "Forbidden")
    /// `404 Not Found`.
    public static let notFound = HTTPStatus(code: 404, reasonPhrase: "Not Found")
    /// `405 Method Not Allowed`.
    public static let methodNotAllowed = HTTPStatus(code: 405, reasonPhrase: "Method Not Allowed")
    /// `408 Request Timeout`.
    public static let requestTimeout = HTTPStatus(code: 408, reasonPhrase: "Request Timeout")
    /// `413 Content Too Large`.
    public static let contentTooLarge = HTTPStatus(code: 413, reasonPhrase: "Content Too Large")
    /// `414 URI Too Long`.
    public static let uriTooLong = HTTPStatus(code: 414, reasonPhrase: "URI Too Long")
    /// `417 Expectation Failed`.
    public static let expectationFailed = HTTPStatus(code: 417, reasonPhrase: "Expectation Failed")
    /// `431 Request Header Fields Too Large`.
    public static let requestHeaderFieldsTooLarge = HTTPStatus(
        code: 431, reasonPhrase: "Request Header Fields Too Large")
    /// `500 Internal Server Error`.
    public static let internalServerError = HTTPStatus(code: 500, reasonPhrase: "Internal Server Error")
    /// `501 Not Implemented`.
    public static let notImplemented = HTTPStatus(code: 501, reasonPhrase: "Not Implemented")
    /// `503 Service Unavailable`.
    public static let serviceUnavailable = HTTPStatus(code: 503, reasonPhrase: "Service Unavailable")
    /// `505 HTTP Version Not Supported`.
    public static let httpVersionNotSupported = HTTPStatus(code: 505, reasonPhrase: "HTTP Version Not Supported")

    /// The status for `code`, with the standard reason phrase when the code
    /// is one of the statics above.
    public static func code(_ code: Int) -> HTTPStatus {
        let known: [HTTPStatus] = [
            .continue, .ok, .created, .noContent, .notModified, .badRequest, .unauthorized, .forbidden,
            .notFound, .methodNotAllowed, .requestTimeout, .contentTooLarge, .uriTooLong,
            .expectationFailed, .requestHeaderFieldsTooLarge, .internalServerError, .notImplemented,
            .serviceUnavailable, .httpVersionNotSupported,
        ]
        return known.first { $0.code == code } ?? HTTPStatus(code: code, reasonPhrase: "Status \(code)")
    }
}
