/// A resource source as clients name it: `server://<machineIdentifier>` for a Plex
/// server or `provider://<identifier>` for a media provider.
public struct SourceReference: Sendable, Hashable, CustomStringConvertible {
    /// The kind of source, given by the prefix.
    public enum Kind: Sendable, Hashable {
        /// A Plex Media Server, written `server://`.
        case server
        /// A media provider, written `provider://`.
        case provider
    }

    /// The kind of source.
    public let kind: Kind
    /// The identifier after the prefix, without any path.
    public let identifier: String

    /// Creates a reference from its parts. `identifier` must satisfy `isValidIdentifier`.
    public init(kind: Kind, identifier: String) {
        self.kind = kind
        self.identifier = identifier
    }

    /// Parses a `source` query parameter after URL decoding, or returns nil when it is malformed.
    ///
    /// A `server://` source may carry a path after the identifier, such as
    /// `server://<id>/com.plexapp.plugins.library`, which is accepted and ignored.
    /// A `provider://` source is the identifier alone.
    public init?(parsing text: some StringProtocol) {
        let rest: Substring
        if text.hasPrefix("server://") {
            kind = .server
            rest = Substring(text.dropFirst("server://".count))
        } else if text.hasPrefix("provider://") {
            kind = .provider
            rest = Substring(text.dropFirst("provider://".count))
        } else {
            return nil
        }

        let identifierEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if kind == .provider && identifierEnd != rest.endIndex {
            return nil
        }
        let identifier = rest[..<identifierEnd]
        guard Self.isValidIdentifier(identifier) else {
            return nil
        }
        self.identifier = String(identifier)
    }

    /// Tests whether an identifier is non-empty printable ASCII without `/`, `?`, `#` or spaces.
    public static func isValidIdentifier(_ identifier: some StringProtocol) -> Bool {
        !identifier.isEmpty
            && identifier.utf8.allSatisfy { byte in
                byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "/") && byte != UInt8(ascii: "?")
                    && byte != UInt8(ascii: "#")
            }
    }

    /// The source in `server://<identifier>` or `provider://<identifier>` form.
    public var description: String {
        switch kind {
        case .server: "server://\(identifier)"
        case .provider: "provider://\(identifier)"
        }
    }
}

/// A device listed in the server's catalogue of known sources, returned by
/// `/security/resources` for its `source`.
public struct SourceEntry: Sendable, Equatable, CustomReflectable {
    /// The source that clients request, such as `provider://tv.plex.provider.vod`.
    public let source: SourceReference
    /// The device name, written as the `name` attribute.
    public let name: String
    /// The device's client identifier.
    public let clientIdentifier: String
    /// The token clients use with the device, or nil to omit the attribute.
    public let accessToken: String?
    /// The addresses at which clients reach the device.
    public let connections: [Connection]

    /// Creates a catalogue entry.
    public init(
        source: SourceReference, name: String, clientIdentifier: String, accessToken: String?,
        connections: [Connection]
    ) {
        self.source = source
        self.name = name
        self.clientIdentifier = clientIdentifier
        self.accessToken = accessToken
        self.connections = connections
    }

    /// A mirror that hides the access token, so that `dump` and `print` do not show it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "source": source.description,
                "name": name,
                "clientIdentifier": clientIdentifier,
                "accessToken": accessToken == nil ? "none" : "<redacted>",
                "connections": connections,
            ])
    }
}
