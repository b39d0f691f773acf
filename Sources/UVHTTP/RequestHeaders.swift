internal import CUVHTTP

/// The header fields of a request, looked up without regard to case and
/// without building strings until one is asked for.
public struct RequestHeaders: Sequence {
    let request: Request

    /// The number of header fields, repeated names counted each time.
    public var count: Int { Int(request.raw.pointee.header_count) }

    private func field(_ index: Int) -> uvh_header_t {
        request.raw.pointee.headers[index]
    }

    /// The first value of the field `name`, or nil when absent.
    public subscript(name: String) -> String? {
        guard let value = firstValueBytes(name) else { return nil }
        return String(decoding: value, as: UTF8.self)
    }

    /// Every value of the field `name`, in the order received.
    public func values(_ name: String) -> [String] {
        var result: [String] = []
        forEachValue(name) { result.append(String(decoding: $0, as: UTF8.self)) }
        return result
    }

    /// The bytes of the first value of the field `name`, valid while the
    /// handler runs.
    public func firstValueBytes(_ name: String) -> UnsafeRawBufferPointer? {
        var name = name
        return name.withUTF8 { wanted in
            for index in 0..<count {
                let header = field(index)
                if ASCII.equalsIgnoringCase(request.bytes(header.name), UnsafeRawBufferPointer(wanted)) {
                    return request.bytes(header.value)
                }
            }
            return nil
        }
    }

    /// Calls `body` with the bytes of each value of the field `name`.
    public func forEachValue(_ name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        var name = name
        name.withUTF8 { wanted in
            for index in 0..<count {
                let header = field(index)
                if ASCII.equalsIgnoringCase(request.bytes(header.name), UnsafeRawBufferPointer(wanted)) {
                    body(request.bytes(header.value))
                }
            }
        }
    }

    /// Iterates the fields as (name, value) strings.
    public func makeIterator() -> AnyIterator<(name: String, value: String)> {
        var index = 0
        return AnyIterator {
            guard index < count else { return nil }
            let header = field(index)
            index += 1
            return (
                String(decoding: request.bytes(header.name), as: UTF8.self),
                String(decoding: request.bytes(header.value), as: UTF8.self)
            )
        }
    }
}

enum ASCII {
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    static func equalsIgnoringCase(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where lowercased(lhs[index]) != lowercased(rhs[index]) {
            return false
        }
        return true
    }
}
