import Foundation
import UVHTTP

/// The responses that change only with the configuration, encoded once in
/// both formats and rebuilt when the configuration changes. A class, so
/// reaching one response costs one reference count, not one per field.
final class PreparedResponses {
    let identityXML: PreparedResponse
    let identityJSON: PreparedResponse
    let serverInfoXML: PreparedResponse
    let serverInfoJSON: PreparedResponse
    let preflight: PreparedResponse
    private let errors: [Int: PreparedResponse]

    /// Fields every response carries, errors included.
    static let commonFields: [(String, String)] = [
        ("X-Plex-Protocol", "1.0"),
        ("Cache-Control", "no-cache"),
    ]

    init(configuration: ServerConfiguration, machineIdentifier: String, updatedAt: Int) throws {
        identityXML = try Self.body(.xml) { buffer in
            ResponseBody.appendIdentity(
                to: &buffer, format: .xml, machineIdentifier: machineIdentifier, version: configuration.version)
        }
        identityJSON = try Self.body(.json) { buffer in
            ResponseBody.appendIdentity(
                to: &buffer, format: .json, machineIdentifier: machineIdentifier, version: configuration.version)
        }
        let info = ServerInfo(
            friendlyName: configuration.friendlyName, machineIdentifier: machineIdentifier,
            version: configuration.version, platformVersion: ServerInfo.currentPlatformVersion(),
            updatedAt: updatedAt, hasSharedUsers: !configuration.sharedTokens.isEmpty,
            directories: PlexServer.directories)
        serverInfoXML = try Self.body(.xml) { ResponseBody.appendServerInfo(to: &$0, format: .xml, info: info) }
        serverInfoJSON = try Self.body(.json) { ResponseBody.appendServerInfo(to: &$0, format: .json, info: info) }
        preflight = try PreparedResponse(
            status: .ok,
            headers: Self.fields([
                ("Access-Control-Allow-Methods", CORS.allowedMethods),
                ("Access-Control-Max-Age", CORS.maxAgeSeconds),
            ]),
            body: [])
        var errors: [Int: PreparedResponse] = [:]
        for status in [HTTPStatus.badRequest, .unauthorized, .forbidden, .notFound, .methodNotAllowed] {
            var body: [UInt8] = []
            ResponseBody.appendHTMLError(to: &body, status: status.code)
            errors[status.code] = try PreparedResponse(
                status: status, headers: Self.fields([("Content-Type", "\(ResponseBody.htmlContentType)")]),
                body: body)
        }
        self.errors = errors
    }

    private static func fields(_ extra: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in extra + commonFields {
            fields.add(name, value)
        }
        return fields
    }

    private static func body(_ format: BodyFormat, _ encode: (inout [UInt8]) -> Void) throws -> PreparedResponse {
        var buffer: [UInt8] = []
        encode(&buffer)
        return try PreparedResponse(
            status: .ok, headers: fields([("Content-Type", "\(format.contentType)")]), body: buffer)
    }

    static func format(of request: Request) -> BodyFormat {
        guard let accept = request.headers.firstValueBytes("Accept") else { return .xml }
        return BodyFormat(accept: accept)
    }

    func identity(for request: Request) -> PreparedResponse {
        Self.format(of: request) == .json ? identityJSON : identityXML
    }

    func serverInfo(for request: Request) -> PreparedResponse {
        Self.format(of: request) == .json ? serverInfoJSON : serverInfoXML
    }

    /// The HTML error page for `status`, one of 400, 401, 403, 404 and 405.
    func error(_ status: HTTPStatus) -> PreparedResponse {
        guard let response = errors[status.code] else {
            preconditionFailure("no prepared error page for status \(status.code)")
        }
        return response
    }

    /// The HTML error page for a request the HTTP server rejected before
    /// routing it, carrying the common fields like every other response.
    static func rejection(_ status: HTTPStatus) -> Response {
        var body: [UInt8] = []
        ResponseBody.appendHTMLError(to: &body, status: status.code)
        var response = dynamic(.xml, status: status, body: body)
        response.headers.set("Content-Type", "\(ResponseBody.htmlContentType)")
        return response
    }

    /// Creates a response with a body built per request, carrying the common
    /// fields.
    static func dynamic(_ format: BodyFormat, status: HTTPStatus = .ok, body: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers.add("Content-Type", "\(format.contentType)")
        for (name, value) in commonFields {
            headers.add(name, value)
        }
        return Response(status: status, headers: headers, body: body)
    }
}

/// Cross-origin rules for Plex Web, which runs at another origin.
enum CORS {
    static let allowedMethods = "GET, POST, PUT, DELETE, OPTIONS, HEAD"
    /// Two weeks, as Plex Media Server sends.
    static let maxAgeSeconds = "1209600"
    static let baseHeaders = ["x-plex-token", "accept", "content-type", "x-plex-client-identifier", "x-plex-product"]

    /// Adds the fields that let a page from `origin` read `response`.
    static func allowingOrigin(_ origin: String, _ response: consuming Response) -> Response {
        var response = response
        response.headers.add("Access-Control-Allow-Origin", origin)
        response.headers.add("Vary", "Origin, X-Plex-Token")
        return response
    }

    /// The `Access-Control-Allow-Headers` value: the headers the browser
    /// asked for plus the Plex ones, skipping any name that is not a valid
    /// field name.
    static func allowedHeaders(requested: String) -> String {
        var names = baseHeaders
        for part in requested.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces).lowercased()
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte), !names.contains(name) else { continue }
            names.append(name)
        }
        return names.joined(separator: ", ")
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
