import Foundation

/// Derives the connections to advertise from the address the server listens
/// on, for configurations that list none.
enum ListeningAddresses {
    /// One connection for a specific address; for a wildcard address (`0.0.0.0`
    /// or `::`), one per IPv4 address of the machine's interfaces, loopback
    /// last. Private, link-local and loopback addresses are marked local.
    static func connections(host: String, port: Int) -> [Connection] {
        let addresses: [String]
        if host == "0.0.0.0" || host == "::" || host.isEmpty {
            addresses = interfaceAddresses()
        } else {
            addresses = [host == "localhost" ? "127.0.0.1" : host]
        }
        return addresses.map { address in
            Connection(scheme: .http, address: address, port: port, local: isLocal(address))
        }
    }

    private static func interfaceAddresses() -> [String] {
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0 else { return ["127.0.0.1"] }
        defer { freeifaddrs(first) }
        var addresses: [String] = []
        var loopback: [String] = []
        var current = first
        while let entry = current {
            current = entry.pointee.ifa_next
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else {
                continue
            }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var ipv4 = UnsafeRawPointer(address).load(as: sockaddr_in.self).sin_addr
            guard inet_ntop(AF_INET, &ipv4, &text, socklen_t(text.count)) != nil else { continue }
            let name = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if name.hasPrefix("127.") {
                loopback.append(name)
            } else if !addresses.contains(name) {
                addresses.append(name)
            }
        }
        return addresses + loopback.prefix(1)
    }

    /// Whether an address is on the local network: loopback, RFC 1918
    /// private, link-local, or their IPv6 counterparts.
    static func isLocal(_ address: String) -> Bool {
        let parts = address.split(separator: ".").compactMap { Int($0) }
        if parts.count == 4 {
            switch (parts[0], parts[1]) {
            case (127, _), (10, _), (192, 168), (169, 254): return true
            case (172, 16...31): return true
            default: return false
            }
        }
        let lowered = address.lowercased()
        return lowered == "::1" || lowered.hasPrefix("fe80:") || lowered.hasPrefix("fc") || lowered.hasPrefix("fd")
    }
}
