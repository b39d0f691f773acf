import Dispatch
import Foundation
import Testing
import UVHTTP

#if canImport(Glibc)
import Glibc
#endif

@testable import PlexGeneral

/// Fixed values shared by the loopback servers of the endpoint tests.
enum LoopbackFixture {
    static let machineIdentifier = "5d1c9e0b7a3f42e8b6c4d2a0f8e6c4a2b0d8f6e4"
    static let adminToken = "owner-token-7c41"
    static let sharedName = "alice"
    static let sharedToken = "alice-token-2b9e"
    static let version = "1.40.2.8395-c67dce28e"
    static let friendlyName = "Loopback Den"

    /// The settings every test server starts from: an owner, one shared user,
    /// a fixed version and name.
    static var baseSettings: [String: Any] {
        [
            "friendlyName": friendlyName,
            "adminToken": adminToken,
            "sharedTokens": [["name": sharedName, "token": sharedToken]],
            "version": version,
        ]
    }

    /// `transient-` followed by a lowercase hyphenated version 4 UUID.
    static var transientTokenPattern: Regex<Substring> {
        /transient-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/
    }

    /// Encodes `settings` over ``baseSettings`` as a configuration file's JSON.
    /// A key whose value is `NSNull` is removed from the base.
    static func configurationJSON(_ settings: [String: Any]) throws -> Data {
        var merged = baseSettings
        for (key, value) in settings {
            merged[key] = value is NSNull ? nil : value
        }
        return try JSONSerialization.data(withJSONObject: merged, options: [.sortedKeys])
    }
}

/// Why the loopback client or server set-up failed.
struct LoopbackError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

// MARK: - Server

/// A ``PlexServer`` behind an ``HTTPServer`` listening on 127.0.0.1 at a port
/// the kernel picks, with its loop running on a thread of its own.
final class LoopbackServer {
    let plex: PlexServer
    let server: HTTPServer
    let port: Int

    /// Starts a server whose configuration is ``LoopbackFixture/baseSettings``
    /// overridden by `settings`.
    convenience init(settings: [String: Any] = [:], configurationPath: String? = nil) throws {
        let json = try LoopbackFixture.configurationJSON(settings)
        try self.init(configuration: try ServerConfiguration(json: json), configurationPath: configurationPath)
    }

    init(configuration: ServerConfiguration, configurationPath: String?) throws {
        let identity = PlexServer.Identity(
            machineIdentifier: LoopbackFixture.machineIdentifier, adminToken: LoopbackFixture.adminToken,
            configurationPath: configurationPath)
        plex = try PlexServer(configuration: configuration, identity: identity, log: { _ in })
        server = try HTTPServer(router: plex.makeRouter())
        port = try server.listen(host: "127.0.0.1", port: 0)
        try plex.attach(to: server, listeningHost: "127.0.0.1", port: port)
        server.start()
    }

    /// Stops the loop and waits until its thread has finished.
    func stop() {
        server.stop()
        server.waitUntilStopped()
    }

    /// Sends a GET on a new connection and reads its response.
    func send(_ target: String, headers: [(String, String)] = []) throws -> WireResponse {
        try send("GET", target, headers: headers)
    }

    /// Sends one request on a new connection and reads its response.
    func send(_ method: String, _ target: String, headers: [(String, String)] = []) throws -> WireResponse {
        let connection = try WireConnection(port: port)
        try connection.send(WireConnection.request(method, target, headers: headers))
        return try connection.readResponse(isHeadRequest: method == "HEAD")
    }

    /// Sends a GET with the owner's token in the `X-Plex-Token` header.
    func sendAsOwner(_ target: String, headers: [(String, String)] = []) throws -> WireResponse {
        try send("GET", target, headers: [("X-Plex-Token", LoopbackFixture.adminToken)] + headers)
    }

    /// Mints a transient token with `token` as the caller and returns it.
    func mintTransientToken(as token: String) throws -> String {
        let response = try send(
            "POST", "/security/token?type=delegation&scope=all", headers: [("X-Plex-Token", token)])
        guard response.status == 200 else {
            throw LoopbackError("minting a transient token returned status \(response.status)")
        }
        guard let container = parseXML(response.body)?.first, let minted = container.attributes["token"] else {
            throw LoopbackError("minting a transient token returned no token: \(response.text)")
        }
        return minted
    }

    /// Runs `work` on the loop thread and waits for it, for calls such as
    /// ``PlexServer/apply(_:)`` that must not race with the handlers.
    func onLoop(_ work: @escaping (PlexServer) throws -> Void) throws {
        let task = LoopTask(plex: plex, work: work)
        server.execute { task.run() }
        guard task.done.wait(timeout: .now() + 5) == .success else {
            throw LoopbackError("timed out after 5 seconds waiting for the loop to run the work")
        }
        if let error = task.error {
            throw error
        }
    }
}

/// Starts a loopback server, passes it to `body` and stops it afterwards,
/// whether `body` returns or throws.
func withLoopbackServer<Result>(
    settings: [String: Any] = [:], configurationPath: String? = nil,
    _ body: (LoopbackServer) throws -> Result
) throws -> Result {
    let server = try LoopbackServer(settings: settings, configurationPath: configurationPath)
    defer { server.stop() }
    return try body(server)
}

/// Work handed to the loop thread, with the signal that it finished.
private final class LoopTask: @unchecked Sendable {
    // Unchecked because `plex` and `work` are used only on the loop thread,
    // and `error` is read only after `done` has been signalled.
    let plex: PlexServer
    let work: (PlexServer) throws -> Void
    let done = DispatchSemaphore(value: 0)
    var error: Error?

    init(plex: PlexServer, work: @escaping (PlexServer) throws -> Void) {
        self.plex = plex
        self.work = work
    }

    func run() {
        do {
            try work(plex)
        } catch {
            self.error = error
        }
        done.signal()
    }
}

// MARK: - Client

/// One response as read from the socket.
struct WireResponse {
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// Returns the first value of the field `name`, compared without regard to case.
    func header(_ name: String) -> String? {
        values(name).first
    }

    /// Returns every value of the field `name`, in the order received.
    func values(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name.lowercased() == lowered }.map(\.value)
    }

    /// Returns the comma-separated items of every `name` field, trimmed and lowercased.
    func listItems(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The text between `<title>` and `</title>` of an HTML body, or nil.
    var htmlTitle: String? {
        guard let start = text.range(of: "<title>"), let end = text.range(of: "</title>"),
            start.upperBound <= end.lowerBound
        else {
            return nil
        }
        return String(text[start.upperBound..<end.lowerBound])
    }
}

/// A blocking TCP connection to a loopback test server that reads responses
/// with a strict HTTP/1.1 parser.
///
/// Each read waits at most 5 seconds, so a server that never responds fails
/// the test instead of hanging it.
final class WireConnection {
    private let descriptor: Int32
    private var buffered: [UInt8] = []

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw LoopbackError("socket failed: errno \(errno)")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw LoopbackError("connect to 127.0.0.1:\(port) failed: errno \(code)")
        }
    }

    deinit {
        close(descriptor)
    }

    /// Formats a request with a `Host` field, the given fields and an empty
    /// body. POST and PUT requests carry `Content-Length: 0`.
    static func request(_ method: String, _ target: String, headers: [(String, String)] = []) -> String {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers {
            text += "\(name): \(value)\r\n"
        }
        if method == "POST" || method == "PUT" {
            text += "Content-Length: 0\r\n"
        }
        return text + "\r\n"
    }

    /// Writes all of `text`.
    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 && errno == EINTR {
                continue
            }
            guard written > 0 else {
                throw LoopbackError("send failed: errno \(errno)")
            }
            offset += written
        }
    }

    /// Reads one response. A response to HEAD has no body, whatever its
    /// `Content-Length` is.
    func readResponse(isHeadRequest: Bool = false) throws -> WireResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd = try findSeparator(separator)
        while headEnd == nil {
            try receive()
            headEnd = try findSeparator(separator)
        }
        let head = Array(buffered[..<headEnd!])
        buffered.removeFirst(headEnd! + separator.count)
        var response = try Self.parseHead(head)

        let bodyLength: Int
        if isHeadRequest || response.status < 200 || response.status == 204 || response.status == 304 {
            bodyLength = 0
        } else {
            let lengths = response.values("Content-Length")
            guard lengths.count == 1, let length = Int(lengths[0]), lengths[0].allSatisfy(\.isASCII),
                length >= 0
            else {
                throw LoopbackError("response needs exactly one valid Content-Length, got \(lengths)")
            }
            bodyLength = length
        }
        while buffered.count < bodyLength {
            try receive()
        }
        response.body = Array(buffered[..<bodyLength])
        buffered.removeFirst(bodyLength)
        return response
    }

    /// Waits up to `milliseconds` and returns the bytes that arrived beyond
    /// the responses read so far, for checking that nothing follows.
    func readExtraBytes(waitingMilliseconds milliseconds: Int32) -> [UInt8] {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        if poll(&poller, 1, milliseconds) > 0 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                buffered += chunk[..<count]
            }
        }
        let extra = buffered
        buffered.removeAll()
        return extra
    }

    private func findSeparator(_ separator: [UInt8]) throws -> Int? {
        guard buffered.count >= separator.count else { return nil }
        for start in 0...(buffered.count - separator.count)
        where buffered[start..<start + separator.count].elementsEqual(separator) {
            return start
        }
        guard buffered.count <= 64 * 1024 else {
            throw LoopbackError("response head longer than 64 KiB")
        }
        return nil
    }

    private func receive() throws {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count < 0 && errno == EINTR {
            return
        }
        guard count > 0 else {
            let reason = count == 0 ? "the server closed the connection" : "recv failed: errno \(errno)"
            throw LoopbackError("\(reason) with \(buffered.count) bytes of an incomplete response")
        }
        buffered += chunk[..<count]
    }

    /// Parses a status line and header fields: CRLF line ends, the version
    /// `HTTP/1.1`, a three-digit status, field names that are tokens, and no
    /// folded or bare-CR lines.
    static func parseHead(_ head: [UInt8]) throws -> WireResponse {
        guard head.allSatisfy({ $0 < 0x80 }) else {
            throw LoopbackError("response head contains non-ASCII bytes")
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        guard !lines.contains(where: { $0.contains("\r") || $0.contains("\n") }) else {
            throw LoopbackError("response head contains a bare CR or LF")
        }
        let statusLine = lines[0]
        guard let match = statusLine.wholeMatch(of: /HTTP\/1\.1 ([1-9][0-9]{2}) (.+)/) else {
            throw LoopbackError("invalid status line \(statusLine.debugDescription)")
        }
        var response = WireResponse(status: Int(match.1)!, reason: String(match.2), headers: [], body: [])
        for line in lines.dropFirst() {
            guard let field = line.wholeMatch(of: /([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*/) else {
                throw LoopbackError("invalid header field line \(line.debugDescription)")
            }
            response.headers.append((String(field.1), String(field.2)))
        }
        return response
    }
}

// MARK: - Bodies

/// The XML prolog that starts every XML body, with its newline.
let xmlProlog = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/// Parses an XML body strictly and returns its root when the root is
/// `MediaContainer`, or nil otherwise.
func mediaContainerXML(_ response: WireResponse) -> ParsedElement? {
    guard let root = parseXML(response.body)?.first, root.name == "MediaContainer", root.depth == 0 else {
        return nil
    }
    return root
}

/// Returns the elements directly under the XML root, in document order.
func xmlChildren(_ response: WireResponse, named name: String) -> [ParsedElement] {
    (parseXML(response.body) ?? []).filter { $0.depth == 1 && $0.name == name }
}

/// Decodes a JSON body and returns the object under `MediaContainer`.
func mediaContainerJSON(_ response: WireResponse) -> [String: Any]? {
    decodeJSONObject(response.body)?["MediaContainer"] as? [String: Any]
}
