/// An address at which clients can reach a server, as listed in `/security/resources`.
public struct Connection: Sendable, Equatable {
    /// The URI scheme, written as the `protocol` attribute.
    public enum Scheme: String, Sendable, Equatable {
        /// Plain HTTP.
        case http
        /// HTTP over TLS.
        case https
    }

    /// The URI scheme.
    public let scheme: Scheme
    /// An IPv4 or IPv6 address without brackets, or a host name.
    public let address: String
    /// The TCP port, from 1 to 65535.
    public let port: Int
    /// Whether the address is on the server's LAN.
    public let local: Bool
    /// Whether the connection goes through a relay.
    public let relay: Bool
    /// The URI `scheme://address:port`, with an IPv6 address in brackets.
    public let uri: String

    /// Creates a connection and derives its URI.
    public init(scheme: Scheme, address: String, port: Int, local: Bool, relay: Bool = false) {
        self.scheme = scheme
        self.address = address
        self.port = port
        self.local = local
        self.relay = relay
        let host = address.contains(":") ? "[\(address)]" : address
        self.uri = "\(scheme.rawValue)://\(host):\(port)"
    }
}
