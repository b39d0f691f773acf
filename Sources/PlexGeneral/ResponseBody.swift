/// Builders for the response bodies, in XML or JSON, appended to a byte buffer.
///
/// XML bodies start with an XML declaration and a newline, and put `size` first on
/// `MediaContainer`. Booleans are `1`/`0` in XML and `true`/`false` in JSON, integers
/// are plain decimals, and lists stay comma-separated strings. JSON bodies have the
/// shape `{"MediaContainer":{...}}` with child elements as arrays (or, for `Device`,
/// an object).
public enum ResponseBody {
    /// Appends the `/identity` body: `size="0"`, `claimed`, `machineIdentifier` and `version`.
    public static func appendIdentity(
        to buffer: inout [UInt8], format: BodyFormat, machineIdentifier: String, version: String,
        claimed: Bool = true
    ) {
        beginContainer(in: &buffer, format: format)
        var attributes = AttributeWriter(format: format)
        attributes.write("size", 0, to: &buffer)
        attributes.write("claimed", claimed, to: &buffer)
        attributes.write("machineIdentifier", machineIdentifier, to: &buffer)
        attributes.write("version", version, to: &buffer)
        switch format {
        case .xml:
            buffer.appendASCII(">\n</MediaContainer>\n")
        case .json:
            buffer.appendASCII("}}")
        }
    }

    /// Appends the `/security/token` body, `<MediaContainer size="0" token="..."/>`.
    public static func appendTransientToken(to buffer: inout [UInt8], format: BodyFormat, token: String) {
        beginContainer(in: &buffer, format: format)
        var attributes = AttributeWriter(format: format)
        attributes.write("size", 0, to: &buffer)
        attributes.write("token", token, to: &buffer)
        endEmptyContainer(in: &buffer, format: format)
    }

    /// Appends a small HTML error page whose title is the status's reason phrase, as
    /// Plex sends for 400, 401, 403 and 404.
    public static func appendHTMLError(to buffer: inout [UInt8], status: Int) {
        let reason = reasonPhrase(status: status)
        buffer.appendASCII("<html><head><title>")
        buffer.appendASCII(reason)
        buffer.appendASCII("</title></head><body><h1>")
        buffer.appendDecimal(status)
        buffer.appendASCII(" ")
        buffer.appendASCII(reason)
        buffer.appendASCII("</h1></body></html>")
    }

    /// The `Content-Type` of the bodies from `appendHTMLError`.
    public static let htmlContentType: StaticString = "text/html"

    /// Returns the HTTP reason phrase for the statuses this server sends, or `Error` for others.
    public static func reasonPhrase(status: Int) -> StaticString {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 417: "Expectation Failed"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }

    /// Writes the XML declaration and `<MediaContainer`, or `{"MediaContainer":{`.
    static func beginContainer(in buffer: inout [UInt8], format: BodyFormat) {
        switch format {
        case .xml:
            buffer.appendASCII("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer")
        case .json:
            buffer.appendASCII("{\"MediaContainer\":{")
        }
    }

    /// Closes a container that has attributes but no children.
    static func endEmptyContainer(in buffer: inout [UInt8], format: BodyFormat) {
        switch format {
        case .xml:
            buffer.appendASCII("/>\n")
        case .json:
            buffer.appendASCII("}}")
        }
    }
}

/// Writes the attributes of one element: ` name="value"` in XML, or `"name":value`
/// members separated by commas in JSON.
struct AttributeWriter {
    let format: BodyFormat
    private var isFirst = true

    init(format: BodyFormat) {
        self.format = format
    }

    mutating func write(_ name: StaticString, _ value: String, to buffer: inout [UInt8]) {
        writeName(name, to: &buffer)
        switch format {
        case .xml:
            buffer.appendXMLEscaped(value)
            buffer.append(UInt8(ascii: "\""))
        case .json:
            buffer.appendJSONString(value)
        }
    }

    mutating func write(_ name: StaticString, _ value: Int, to buffer: inout [UInt8]) {
        writeName(name, to: &buffer)
        buffer.appendDecimal(value)
        if format == .xml {
            buffer.append(UInt8(ascii: "\""))
        }
    }

    mutating func write(_ name: StaticString, _ value: Bool, to buffer: inout [UInt8]) {
        writeName(name, to: &buffer)
        switch format {
        case .xml:
            buffer.appendASCII(value ? "1\"" : "0\"")
        case .json:
            buffer.appendASCII(value ? "true" : "false")
        }
    }

    /// Writes everything before the value: ` name="` in XML, `,"name":` in JSON.
    private mutating func writeName(_ name: StaticString, to buffer: inout [UInt8]) {
        switch format {
        case .xml:
            buffer.append(UInt8(ascii: " "))
            buffer.appendASCII(name)
            buffer.appendASCII("=\"")
        case .json:
            if !isFirst {
                buffer.append(UInt8(ascii: ","))
            }
            buffer.append(UInt8(ascii: "\""))
            buffer.appendASCII(name)
            buffer.appendASCII("\":")
        }
        isFirst = false
    }
}
