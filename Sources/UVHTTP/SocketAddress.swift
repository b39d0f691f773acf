#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address and port.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public let addressBytes: [UInt8]
    /// The port number.
    public let port: Int

    /// Creates an address from its network-order bytes and a port.
    public init(addressBytes: [UInt8], port: Int) {
        self.addressBytes = addressBytes
        self.port = port
    }

    init?(_ address: UnsafePointer<sockaddr>?) {
        guard let address else { return nil }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let ipv4 = UnsafeRawPointer(address).load(as: sockaddr_in.self)
            var bytes = ipv4.sin_addr
            addressBytes = withUnsafeBytes(of: &bytes) { Array($0) }
            port = Int(UInt16(bigEndian: ipv4.sin_port))
        case AF_INET6:
            let ipv6 = UnsafeRawPointer(address).load(as: sockaddr_in6.self)
            var bytes = ipv6.sin6_addr
            addressBytes = withUnsafeBytes(of: &bytes) { Array($0) }
            port = Int(UInt16(bigEndian: ipv6.sin6_port))
        default:
            return nil
        }
    }

    /// Whether this is an IPv6 address.
    public var isIPv6: Bool { addressBytes.count == 16 }

    /// The address in text form, such as `127.0.0.1` or `::1`.
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv6 ? AF_INET6 : AF_INET
        let converted = addressBytes.withUnsafeBytes { source in
            inet_ntop(family, source.baseAddress, &text, socklen_t(text.count))
        }
        guard converted != nil else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `host:port`, with IPv6 hosts in brackets.
    public var description: String {
        isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
