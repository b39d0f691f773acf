internal import CUVHTTP

/// Writes responses by hand into a connection's output buffer.
enum ResponseEncoder {
    /// What the encoder needs to know about the request being answered.
    struct Context {
        var isHead: Bool
        var minorVersion: Int
        var keepAlive: Bool
        var keepAliveTimeoutSeconds: Int
        /// What the access log needs, when one is kept.
        var access: PendingAccess?
    }

    static func statusLine(_ status: HTTPStatus) -> [UInt8] {
        Array("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n".utf8)
    }

    /// Appends `response` to the output of `conn`, with `Connection: close`
    /// unless `keepAlive`. Returns false when the output buffer could not
    /// grow.
    static func write(
        _ response: borrowing Response, context: borrowing Context, keepAlive: Bool, date: UnsafePointer<CChar>,
        conn: OpaquePointer
    ) -> Bool {
        let hasBody = !response.status.forbidsBody
        let sendsBody = hasBody && !context.isHead
        let usesPreparedHead = response.prepared.map { $0.status.code == response.status.code } ?? false

        var length = 0
        if let prepared = response.prepared {
            length += usesPreparedHead ? prepared.head.count : statusLineLength(response.status) + prepared.fields.count
        } else {
            length += statusLineLength(response.status)
        }
        length += 37  // "Date: " + 29 + CRLF
        for field in response.headers.entries {
            length += field.name.utf8.count + field.value.utf8.count + 4
        }
        length += 48  // Content-Length with up to 20 digits, and its CRLF
        length += 64  // Connection and Keep-Alive fields
        length += 2
        if sendsBody { length += response.body.count }

        guard let start = uvh_conn_reserve(conn, length) else { return false }
        var cursor = Cursor(UnsafeMutableRawPointer(start))

        if let prepared = response.prepared {
            if usesPreparedHead {
                cursor.append(prepared.head)
            } else {
                appendStatusLine(response.status, to: &cursor)
                cursor.append(prepared.fields)
            }
        } else {
            appendStatusLine(response.status, to: &cursor)
        }
        cursor.appendLiteral("Date: ")
        cursor.append(UnsafeRawBufferPointer(start: date, count: 29))
        cursor.appendLiteral("\r\n")
        for field in response.headers.entries {
            cursor.append(field.name)
            cursor.appendLiteral(": ")
            cursor.append(field.value)
            cursor.appendLiteral("\r\n")
        }
        if hasBody {
            cursor.appendLiteral("Content-Length: ")
            cursor.appendDecimal(response.body.count)
            cursor.appendLiteral("\r\n")
        }
        if !keepAlive {
            cursor.appendLiteral("Connection: close\r\n")
        } else {
            if context.minorVersion == 0 {
                cursor.appendLiteral("Connection: keep-alive\r\n")
            }
            if context.keepAliveTimeoutSeconds > 0 {
                cursor.appendLiteral("Keep-Alive: timeout=")
                cursor.appendDecimal(context.keepAliveTimeoutSeconds)
                cursor.appendLiteral("\r\n")
            }
        }
        cursor.appendLiteral("\r\n")
        if sendsBody {
            cursor.append(response.body)
        }
        uvh_conn_commit(conn, cursor.position - UnsafeMutableRawPointer(start))
        return true
    }

    private static func statusLineLength(_ status: HTTPStatus) -> Int {
        15 + status.reasonPhrase.utf8.count
    }

    private static func appendStatusLine(_ status: HTTPStatus, to cursor: inout Cursor) {
        cursor.appendLiteral("HTTP/1.1 ")
        cursor.appendDecimal(status.code)
        cursor.appendLiteral(" ")
        cursor.append(status.reasonPhrase)
        cursor.appendLiteral("\r\n")
    }
}

/// A write position in reserved output space. The caller reserves enough
/// space first, so appends do not check bounds.
struct Cursor {
    var position: UnsafeMutableRawPointer

    init(_ position: UnsafeMutableRawPointer) {
        self.position = position
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        position.copyMemory(from: source, byteCount: bytes.count)
        position += bytes.count
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    mutating func appendLiteral(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    mutating func appendDecimal(_ value: Int) {
        var remaining = UInt(max(value, 0))
        var digits = 1
        var scale: UInt = 10
        while remaining >= scale && digits < 19 {
            digits += 1
            scale &*= 10
        }
        var index = digits
        repeat {
            index -= 1
            position.storeBytes(of: UInt8(ascii: "0") &+ UInt8(remaining % 10), toByteOffset: index, as: UInt8.self)
            remaining /= 10
        } while index > 0
        position += digits
    }
}
