import Foundation
import Glibc

/// Why a test client gave up.
struct ClientError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// How a connection ended as the client saw it.
enum ConnectionEnding: Equatable, CustomStringConvertible {
    /// The server closed its side in order: `recv` returned 0.
    case eof
    /// The server reset the connection.
    case reset
    /// Nothing ended the connection before the client stopped waiting.
    case timedOut

    var description: String {
        switch self {
        case .eof: return "EOF"
        case .reset: return "reset"
        case .timedOut: return "timed out"
        }
    }
}

/// One response as it came off the wire, parsed strictly.
struct HTTPResponse {
    var version: String
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// Returns the first value of the field `name`, compared without regard
    /// to case.
    func header(_ name: String) -> String? {
        values(name).first
    }

    /// Returns every value of the field `name`, in order.
    func values(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name.lowercased() == lowered }.map(\.value)
    }

    /// The header fields other than `Date`, as `name: value` lines, for
    /// comparing two responses to the same request.
    var fieldsWithoutDate: [String] {
        headers.filter { $0.name.lowercased() != "date" }.map { "\($0.name): \($0.value)" }
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking TCP client for one connection to a test server on loopback.
///
/// Reads wait at most `timeout` for the next byte, so a server that does
/// not respond fails the test instead of hanging it. One thread may send
/// while another reads; the received state belongs to the reading thread.
final class HTTPClient: @unchecked Sendable {
    let descriptor: Int32
    let timeout: Duration
    /// Bytes received but not yet returned as a response.
    private(set) var buffered: [UInt8] = []
    /// Set once the server closed or reset the connection.
    private(set) var ending: ConnectionEnding?

    init(port: Int, timeout: Duration = .seconds(5)) throws {
        self.timeout = timeout
        // The socket is stored only once connected: a throw after every
        // property is set runs deinit, which would close it a second time.
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw ClientError("socket failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(socketDescriptor)
            throw ClientError("connect to 127.0.0.1:\(port) failed: errno \(code)")
        }
        var on: Int32 = 1
        setsockopt(socketDescriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        descriptor = socketDescriptor
    }

    deinit {
        close(descriptor)
    }

    // MARK: Sending

    /// Sends every byte of `bytes`, in one write or one write per byte.
    func send(_ bytes: [UInt8], bytewise: Bool = false) throws {
        if bytewise {
            for byte in bytes {
                try sendAll([byte])
            }
        } else {
            try sendAll(bytes)
        }
    }

    func send(_ text: String, bytewise: Bool = false) throws {
        try send(Array(text.utf8), bytewise: bytewise)
    }

    private func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { buffer in
                Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw ClientError("send failed: errno \(errno)")
            }
            offset += sent
        }
    }

    /// Closes the client's sending side; the server reads EOF.
    func shutdownWrite() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    // MARK: Receiving

    /// Reads one response. Set `head` for the response to a HEAD request,
    /// which has no body whatever its `Content-Length`.
    func readResponse(head: Bool = false) throws -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let (response, consumed) = try ResponseParser.parse(buffered, head: head) {
                buffered.removeFirst(consumed)
                return response
            }
            if let ending {
                throw ClientError("connection ended (\(ending)) inside a response after \(buffered.count) bytes")
            }
            guard receive(until: deadline) else {
                throw ClientError("timed out after \(timeout) with \(buffered.count) bytes of an incomplete response")
            }
        }
    }

    /// Reads until the server ends the connection or `wait` passes, and
    /// returns which came first. Bytes read on the way stay in ``buffered``.
    func readUntilClosed(wait: Duration? = nil) -> ConnectionEnding {
        let deadline = ContinuousClock.now + (wait ?? timeout)
        while ending == nil {
            guard receive(until: deadline) else { return .timedOut }
        }
        return ending!
    }

    /// Waits `wait` for bytes and returns what came, for checking that
    /// nothing does.
    func readAvailable(wait: Duration) -> [UInt8] {
        let deadline = ContinuousClock.now + wait
        while ending == nil, receive(until: deadline) {}
        let bytes = buffered
        buffered.removeAll()
        return bytes
    }

    /// Waits for input until `deadline` and appends it to ``buffered``.
    /// Returns false when the deadline passed first.
    private func receive(until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        let (seconds, attoseconds) = remaining.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, milliseconds)
        if ready < 0 && errno == EINTR { return true }
        guard ready > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffered += chunk[..<count]
        } else if count == 0 {
            ending = .eof
        } else if errno == ECONNRESET {
            ending = .reset
        } else if errno != EINTR && errno != EAGAIN {
            ending = .reset
        }
        return true
    }
}

/// A strict HTTP/1.1 response parser: CRLF line ends only, token field
/// names, a status line of the form `HTTP/1.1 NNN reason`, and bodies framed
/// by `Content-Length` alone.
enum ResponseParser {
    static let maxHeadBytes = 64 * 1024

    /// Parses the response at the start of `bytes`. Returns nil while it is
    /// incomplete, or the response and the number of bytes it took.
    static func parse(_ bytes: [UInt8], head: Bool) throws -> (HTTPResponse, Int)? {
        guard let headEnd = find([13, 10, 13, 10], in: bytes) else {
            if bytes.count > maxHeadBytes { throw ClientError("response head longer than \(maxHeadBytes) bytes") }
            return nil
        }
        let lines = try splitLines(Array(bytes[..<headEnd]))
        guard let statusLine = lines.first else { throw ClientError("empty response head") }
        var response = try parseStatusLine(statusLine)
        for line in lines.dropFirst() {
            response.headers.append(try parseField(line))
        }

        guard response.values("Transfer-Encoding").isEmpty else {
            throw ClientError("unexpected Transfer-Encoding: the server frames bodies by Content-Length")
        }
        let lengths = response.values("Content-Length")
        guard lengths.count <= 1 else { throw ClientError("\(lengths.count) Content-Length fields") }

        let bodyStart = headEnd + 4
        let forbidsBody = response.status < 200 || response.status == 204 || response.status == 304
        if head || forbidsBody {
            return (response, bodyStart)
        }
        guard let lengthText = lengths.first else {
            throw ClientError("status \(response.status) without Content-Length")
        }
        guard !lengthText.isEmpty, lengthText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let length = Int(lengthText)
        else {
            throw ClientError("invalid Content-Length \(lengthText.debugDescription)")
        }
        guard bytes.count >= bodyStart + length else { return nil }
        response.body = Array(bytes[bodyStart..<(bodyStart + length)])
        return (response, bodyStart + length)
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
            if Array(bytes[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }

    /// Splits on CRLF; a lone CR or LF is an error.
    private static func splitLines(_ head: [UInt8]) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < head.count {
            let byte = head[index]
            if byte == 13 {
                guard index + 1 < head.count, head[index + 1] == 10 else { throw ClientError("bare CR in head") }
                lines.append(current)
                current = []
                index += 2
                continue
            }
            if byte == 10 { throw ClientError("bare LF in head") }
            current.append(byte)
            index += 1
        }
        lines.append(current)
        return lines
    }

    private static func parseStatusLine(_ line: [UInt8]) throws -> HTTPResponse {
        let text = String(decoding: line, as: UTF8.self)
        let prefix = "HTTP/1.1 "
        guard text.hasPrefix(prefix) else { throw ClientError("invalid status line \(text.debugDescription)") }
        let rest = Array(text.utf8.dropFirst(prefix.utf8.count))
        guard rest.count >= 4, rest[0...2].allSatisfy({ $0 >= 48 && $0 <= 57 }), rest[3] == 32,
            let status = Int(String(decoding: rest[0...2], as: UTF8.self))
        else {
            throw ClientError("invalid status line \(text.debugDescription)")
        }
        let reason = String(decoding: rest[4...], as: UTF8.self)
        return HTTPResponse(version: "HTTP/1.1", status: status, reason: reason, headers: [], body: [])
    }

    private static func parseField(_ line: [UInt8]) throws -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            throw ClientError("field name missing: \(String(decoding: line, as: UTF8.self).debugDescription)")
        }
        let name = line[..<colon]
        guard name.allSatisfy(isTokenByte) else {
            throw ClientError("invalid field name \(String(decoding: name, as: UTF8.self).debugDescription)")
        }
        var value = line[(colon + 1)...]
        while let first = value.first, first == 32 || first == 9 { value = value.dropFirst() }
        while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
        guard !value.contains(0) else { throw ClientError("NUL in field value") }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
