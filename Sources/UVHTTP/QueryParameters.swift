/// The parameters of a request's query string, percent-decoded, with `+`
/// read as a space as HTML forms write it.
public struct QueryParameters: Sequence {
    let bytes: UnsafeRawBufferPointer

    /// The decoded value of the first parameter whose decoded name is `name`.
    public subscript(name: String) -> String? {
        var wanted = name
        return wanted.withUTF8 { wantedBytes in
            var found: String?
            forEachPair { key, value in
                guard found == nil, PercentDecoding.equals(key, decodedTo: wantedBytes) else { return }
                found = PercentDecoding.decode(value, plusAsSpace: true)
            }
            return found
        }
    }

    /// Every parameter as decoded (name, value) strings, in order. A
    /// parameter without `=` has an empty value.
    public var items: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        forEachPair { key, value in
            result.append((PercentDecoding.decode(key, plusAsSpace: true), PercentDecoding.decode(value, plusAsSpace: true)))
        }
        return result
    }

    /// Iterates the (name, value) pairs in order.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        items.makeIterator()
    }

    /// Calls `body` with the raw bytes of each `name=value` pair, skipping
    /// empty pairs.
    func forEachPair(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "&") {
                end += 1
            }
            if end > start {
                var equals = start
                while equals < end && bytes[equals] != UInt8(ascii: "=") {
                    equals += 1
                }
                let key = UnsafeRawBufferPointer(rebasing: bytes[start..<equals])
                let valueStart = Swift.min(equals + 1, end)
                body(key, UnsafeRawBufferPointer(rebasing: bytes[valueStart..<end]))
            }
            start = end + 1
        }
    }
}

/// Decodes one query-string component as ``QueryParameters`` reads it:
/// percent escapes, `+` as a space, and a `%` not followed by two hex digits
/// kept as it is. Code that must recognise the names the server reads, such
/// as a log redactor, decodes with this.
public func decodeQueryComponent(_ component: some StringProtocol) -> String {
    var bytes = Array(component.utf8)
    return bytes.withUnsafeMutableBytes { PercentDecoding.decode(UnsafeRawBufferPointer($0), plusAsSpace: true) }
}

/// Percent-decoding per RFC 3986 section 2.1. A `%` not followed by two hex
/// digits is kept as it is.
enum PercentDecoding {
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Calls `body` with each decoded byte of `encoded`.
    static func forEachDecodedByte(_ encoded: UnsafeRawBufferPointer, plusAsSpace: Bool, _ body: (UInt8) -> Bool) {
        var index = 0
        while index < encoded.count {
            var byte = encoded[index]
            if byte == UInt8(ascii: "%"), index + 2 < encoded.count,
                let high = hexValue(encoded[index + 1]), let low = hexValue(encoded[index + 2])
            {
                byte = high << 4 | low
                index += 2
            } else if byte == UInt8(ascii: "+") && plusAsSpace {
                byte = UInt8(ascii: " ")
            }
            if !body(byte) { return }
            index += 1
        }
    }

    static func decode(_ encoded: UnsafeRawBufferPointer, plusAsSpace: Bool) -> String {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(encoded.count)
        forEachDecodedByte(encoded, plusAsSpace: plusAsSpace) { byte in
            decoded.append(byte)
            return true
        }
        return String(decoding: decoded, as: UTF8.self)
    }

    /// Whether `encoded`, once decoded, equals `expected`, without building
    /// the decoded copy.
    static func equals(_ encoded: UnsafeRawBufferPointer, decodedTo expected: UnsafeBufferPointer<UInt8>) -> Bool {
        var position = 0
        var matches = true
        forEachDecodedByte(encoded, plusAsSpace: true) { byte in
            guard position < expected.count, expected[position] == byte else {
                matches = false
                return false
            }
            position += 1
            return true
        }
        return matches && position == expected.count
    }
}
