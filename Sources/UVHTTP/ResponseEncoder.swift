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

    /// Appends `response` to the output of `conn`. Returns false when the
    /// output buffer could not grow.
    static func write(
        _ response: Response, context: Context, date: UnsafePointer<CChar>, conn: OpaquePointer
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
        cursor.append("Date: ")
        cursor.append(UnsafeRawBufferPointer(start: date, count: 29))
        cursor.append("\r\n")
        for field in response.headers.entries {
            cursor.append(field.name)
            cursor.append(": ")
            cursor.append(field.value)
            cursor.append("\r\n")
        }
        if hasBody {
            cursor.append("Content-Length: ")
            cursor.appendDecimal(response.body.count)
            cursor.append("\r\n")
        }
        if !context.keepAlive {
            cursor.append("Connection: close\r\n")
        } else {
            if context.minorVersion == 0 {
                cursor.append("Connection: keep-alive\r\n")
            }
            if context.keepAliveTimeoutSeconds > 0 {
                cursor.append("Keep-Alive: timeout=")
                cursor.appendDecimal(context.keepAliveTimeoutSeconds)
                cursor.append("\r\n")
            }
        }
        cursor.append("\r\n")
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
        cursor.append("HTTP/1.1 ")
        cursor.appendDecimal(status.code)
        cursor.append(" ")
        cursor.append(status.reasonPhrase)
        cursor.append("\r\n")
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

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    mutating func appendDecimal(_ value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var remaining = UInt64(max(value, 0))
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            } while remaining > 0
            append(UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }
}
