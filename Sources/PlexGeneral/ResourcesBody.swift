extension ResponseBody {
    /// Appends the `/security/resources` body: one `Device` with its `Connection` children.
    ///
    /// In JSON, `Device` is an object and `Connection` an array, because the Speakeasy
    /// Plex SDK rejects a `Device` array. `local` is always written and `relay` only when
    /// true, in both formats. `accessToken` is omitted when nil.
    public static func appendResources(
        to buffer: inout [UInt8], format: BodyFormat, name: String, clientIdentifier: String,
        accessToken: String?, connections: [Connection]
    ) {
        beginContainer(in: &buffer, format: format)
        var containerAttributes = AttributeWriter(format: format)
        containerAttributes.write("size", 1, to: &buffer)
        switch format {
        case .xml:
            buffer.appendASCII(">\n<Device")
        case .json:
            buffer.appendASCII(",\"Device\":{")
        }

        var deviceAttributes = AttributeWriter(format: format)
        deviceAttributes.write("name", name, to: &buffer)
        deviceAttributes.write("clientIdentifier", clientIdentifier, to: &buffer)
        if let accessToken {
            deviceAttributes.write("accessToken", accessToken, to: &buffer)
        }

        switch format {
        case .xml:
            buffer.appendASCII(">\n")
            for connection in connections {
                buffer.appendASCII("<Connection")
                appendConnectionAttributes(connection, to: &buffer, format: format)
                buffer.appendASCII("/>\n")
            }
            buffer.appendASCII("</Device>\n</MediaContainer>\n")
        case .json:
            buffer.appendASCII(",\"Connection\":[")
            for (index, connection) in connections.enumerated() {
                if index > 0 {
                    buffer.append(UInt8(ascii: ","))
                }
                buffer.append(UInt8(ascii: "{"))
                appendConnectionAttributes(connection, to: &buffer, format: format)
                buffer.append(UInt8(ascii: "}"))
            }
            buffer.appendASCII("]}}}")
        }
    }

    private static func appendConnectionAttributes(
        _ connection: Connection, to buffer: inout [UInt8], format: BodyFormat
    ) {
        var attributes = AttributeWriter(format: format)
        attributes.write("protocol", connection.scheme.rawValue, to: &buffer)
        attributes.write("address", connection.address, to: &buffer)
        attributes.write("port", connection.port, to: &buffer)
        attributes.write("uri", connection.uri, to: &buffer)
        attributes.write("local", connection.local, to: &buffer)
        if connection.relay {
            attributes.write("relay", true, to: &buffer)
        }
    }
}
