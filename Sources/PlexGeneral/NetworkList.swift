#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A set of IPv4 and IPv6 networks whose clients the server admits without a token.
///
/// An IPv4 address and its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) are the same
/// address for matching, so a client that reaches a dual-stack socket matches the
/// IPv4 entries, and an IPv4 client matches an entry such as `::ffff:10.0.0.0/104`.
public struct NetworkList: Sendable, Equatable, CustomStringConvertible {
    struct IPv4Network: Sendable, Equatable {
        var address: UInt32
        var mask: UInt32
    }

    struct IPv6Network: Sendable, Equatable {
        var high: UInt64
        var low: UInt64
        var maskHigh: UInt64
        var maskLow: UInt64
    }

    var ipv4Networks: [IPv4Network] = []
    var ipv6Networks: [IPv6Network] = []

    /// Creates an empty list, which matches no address.
    public init() {}

    /// Parses a comma-separated list as Plex writes it, for example
    /// `192.168.1.0/255.255.255.0, 10.0.0.0/8, fd00::/8, 127.0.0.1`.
    ///
    /// Each entry is `IP`, `IP/netmask` (dotted IPv4 netmask with contiguous bits) or
    /// `IP/prefix`. Whitespace around entries is ignored and empty entries are skipped.
    /// Host bits set in the address are cleared, so `192.168.1.7/24` means `192.168.1.0/24`.
    public init(parsing text: String) throws(NetworkListError) {
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = trimWhitespace(entry)
            if trimmed.isEmpty {
                continue
            }
            try add(entry: trimmed)
        }
    }

    /// Parses one network per array element, with the same entry syntax as `init(parsing:)`.
    ///
    /// An empty element is an error here, because a list written as an array has no
    /// separators that could leave an empty entry by accident.
    public init(entries: [String]) throws(NetworkListError) {
        for entry in entries {
            try append(entry: entry)
        }
    }

    /// Parses one entry, which must not be empty, and adds its network to the list.
    mutating func append(entry: String) throws(NetworkListError) {
        let trimmed = trimWhitespace(Substring(entry))
        if trimmed.isEmpty {
            throw NetworkListError(entry: "", reason: "empty entry")
        }
        try add(entry: trimmed)
    }

    /// The number of networks in the list.
    public var count: Int {
        ipv4Networks.count + ipv6Networks.count
    }

    /// Whether the list contains no network.
    public var isEmpty: Bool {
        ipv4Networks.isEmpty && ipv6Networks.isEmpty
    }

    /// Tests whether an address lies in one of the networks, without allocating.
    ///
    /// `bytes` is the address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    /// Any other length matches nothing.
    public func contains(address bytes: some Collection<UInt8>) -> Bool {
        var index = bytes.startIndex
        var byteCount = 0
        var high: UInt64 = 0
        var low: UInt64 = 0
        while index != bytes.endIndex {
            if byteCount == 16 {
                return false
            }
            if byteCount < 8 {
                high = high << 8 | UInt64(bytes[index])
            } else {
                low = low << 8 | UInt64(bytes[index])
            }
            byteCount += 1
            bytes.formIndex(after: &index)
        }

        switch byteCount {
        case 4:
            let ipv4 = UInt32(truncatingIfNeeded: high)
            return containsIPv4(ipv4) || containsIPv6(high: 0, low: 0xffff_0000_0000 | UInt64(ipv4))
        case 16:
            if high == 0 && low >> 32 == 0xffff {
                let ipv4 = UInt32(truncatingIfNeeded: low)
                if containsIPv4(ipv4) {
                    return true
                }
            }
            return containsIPv6(high: high, low: low)
        default:
            return false
        }
    }

    /// The networks in `address/prefix` form, IPv4 first, for logging.
    public var description: String {
        var parts: [String] = []
        for network in ipv4Networks {
            parts.append("\(formatIPv4(network.address))/\(network.mask.nonzeroBitCount)")
        }
        for network in ipv6Networks {
            let prefix = network.maskHigh.nonzeroBitCount + network.maskLow.nonzeroBitCount
            parts.append("\(formatIPv6(high: network.high, low: network.low))/\(prefix)")
        }
        return parts.joined(separator: ",")
    }

    private func containsIPv4(_ address: UInt32) -> Bool {
        for network in ipv4Networks where address & network.mask == network.address {
            return true
        }
        return false
    }

    private func containsIPv6(high: UInt64, low: UInt64) -> Bool {
        for network in ipv6Networks
        where high & network.maskHigh == network.high && low & network.maskLow == network.low {
            return true
        }
        return false
    }

    private mutating func add(entry: Substring) throws(NetworkListError) {
        let text = String(entry)
        let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])

        if let ipv4 = parseIPv4(addressText) {
            var mask: UInt32 = .max
            if parts.count == 2 {
                mask = try parseIPv4Mask(parts[1], entry: text)
            }
            ipv4Networks.append(IPv4Network(address: ipv4 & mask, mask: mask))
            return
        }

        if let (high, low) = parseIPv6(addressText) {
            var prefix = 128
            if parts.count == 2 {
                if parts[1].contains(".") {
                    throw NetworkListError(
                        entry: text,
                        reason: "a dotted netmask applies to IPv4 only, so write an IPv6 network as address/prefix")
                }
                prefix = try parsePrefixLength(parts[1], maximum: 128, entry: text)
            }
            let (maskHigh, maskLow) = ipv6Mask(prefixLength: prefix)
            ipv6Networks.append(
                IPv6Network(high: high & maskHigh, low: low & maskLow, maskHigh: maskHigh, maskLow: maskLow))
            return
        }

        throw NetworkListError(entry: text, reason: "not an IPv4 or IPv6 address")
    }

    private func parseIPv4Mask(_ text: Substring, entry: String) throws(NetworkListError) -> UInt32 {
        if text.contains(".") {
            guard let mask = parseIPv4(String(text)) else {
                throw NetworkListError(entry: entry, reason: "netmask is not a dotted IPv4 address")
            }
            // A contiguous mask is ones followed by zeros, so its complement plus one is a power of two.
            let inverted = ~mask
            guard inverted & (inverted &+ 1) == 0 else {
                throw NetworkListError(
                    entry: entry, reason: "netmask bits are not contiguous (expected a form such as 255.255.255.0)")
            }
            return mask
        }
        let prefix = try parsePrefixLength(text, maximum: 32, entry: entry)
        return prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix)
    }

    private func parsePrefixLength(_ text: Substring, maximum: Int, entry: String) throws(NetworkListError) -> Int {
        let family = maximum == 32 ? "IPv4" : "IPv6"
        guard !text.isEmpty, text.utf8.count <= 3, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let prefix = Int(text), prefix <= maximum
        else {
            throw NetworkListError(entry: entry, reason: "prefix length must be 0 to \(maximum) for \(family)")
        }
        return prefix
    }
}

/// An invalid entry in a network list.
public struct NetworkListError: Error, Equatable, CustomStringConvertible {
    /// The entry as written, without surrounding whitespace.
    public let entry: String
    /// The reason the entry is invalid.
    public let reason: String

    /// A message naming the entry, such as `invalid network "10.0.0.0/33": prefix length must be 0 to 32 for IPv4`.
    public var description: String {
        "invalid network \"\(entry)\": \(reason)"
    }
}

private func trimWhitespace(_ text: Substring) -> Substring {
    guard let first = text.firstIndex(where: { !$0.isWhitespace }),
        let last = text.lastIndex(where: { !$0.isWhitespace })
    else {
        return text[text.endIndex...]
    }
    return text[first...last]
}

/// Parses a dotted-quad IPv4 address with inet_pton, returning it in host byte order.
func parseIPv4(_ text: String) -> UInt32? {
    var address = in_addr()
    guard inet_pton(AF_INET, text, &address) == 1 else {
        return nil
    }
    return UInt32(bigEndian: address.s_addr)
}

/// Parses an IPv6 address with inet_pton, returning its first and last 8 bytes as big-endian integers.
func parseIPv6(_ text: String) -> (high: UInt64, low: UInt64)? {
    var bytes = (UInt64(0), UInt64(0))
    let result = withUnsafeMutableBytes(of: &bytes) { buffer in
        inet_pton(AF_INET6, text, buffer.baseAddress)
    }
    guard result == 1 else {
        return nil
    }
    return (UInt64(bigEndian: bytes.0), UInt64(bigEndian: bytes.1))
}

private func ipv6Mask(prefixLength: Int) -> (high: UInt64, low: UInt64) {
    switch prefixLength {
    case 0:
        return (0, 0)
    case 1...64:
        return (UInt64.max << UInt64(64 - prefixLength), 0)
    case 65..<128:
        return (UInt64.max, UInt64.max << UInt64(128 - prefixLength))
    default:
        return (UInt64.max, UInt64.max)
    }
}

private func formatIPv4(_ address: UInt32) -> String {
    var value = in_addr(s_addr: address.bigEndian)
    return formatAddress(family: AF_INET, &value)
}

private func formatIPv6(high: UInt64, low: UInt64) -> String {
    var bytes = (high.bigEndian, low.bigEndian)
    return formatAddress(family: AF_INET6, &bytes)
}

private func formatAddress<Address>(family: Int32, _ address: inout Address) -> String {
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let written = withUnsafeBytes(of: &address) { buffer in
        inet_ntop(family, buffer.baseAddress, &text, socklen_t(text.count))
    }
    guard written != nil else {
        return "?"
    }
    return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
