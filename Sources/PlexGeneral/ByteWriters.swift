// Encoders that append UTF-8 text to a byte buffer, so response bodies are built
// without intermediate Strings. They are internal so that they do not add
// methods to every [UInt8] in the modules that import PlexGeneral.

extension Array where Element == UInt8 {
    /// Appends the UTF-8 bytes of a literal, such as a fixed element name or attribute name.
    @inline(__always)
    mutating func appendASCII(_ literal: StaticString) {
        literal.withUTF8Buffer { bytes in
            append(contentsOf: bytes)
        }
    }

    /// Appends a string's UTF-8 bytes unchanged.
    mutating func appendUTF8(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            append(contentsOf: bytes)
        }
    }

    /// Appends an integer in decimal, with a leading `-` when negative.
    mutating func appendDecimal(_ value: Int) {
        if value < 0 {
            append(0x2D)
        }
        appendDecimal(value.magnitude)
    }

    /// Appends an unsigned integer in decimal.
    mutating func appendDecimal(_ value: UInt) {
        let start = endIndex
        var remaining = value
        repeat {
            append(0x30 &+ UInt8(truncatingIfNeeded: remaining % 10))
            remaining /= 10
        } while remaining != 0
        self[start...].reverse()
    }

    /// Appends text escaped for an XML attribute value delimited by double quotes.
    ///
    /// `& < > " '` become entity references, and tab, LF and CR become character
    /// references so that parsers do not normalize them to spaces. Characters that
    /// XML 1.0 forbids even as references (C0 controls other than tab, LF and CR,
    /// U+FFFE and U+FFFF) are dropped, because no conforming parser would accept them.
    mutating func appendXMLEscaped(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            appendXMLEscaped(bytes)
        }
    }

    /// Appends UTF-8 bytes escaped for an XML attribute value, by the rules of `appendXMLEscaped(_: String)`.
    mutating func appendXMLEscaped(_ bytes: UnsafeBufferPointer<UInt8>) {
        var runStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            var replacement: StaticString? = nil
            var skipCount = 0
            switch byte {
            case 0x26: replacement = "&amp;"
            case 0x3C: replacement = "&lt;"
            case 0x3E: replacement = "&gt;"
            case 0x22: replacement = "&quot;"
            case 0x27: replacement = "&apos;"
            case 0x09: replacement = "&#9;"
            case 0x0A: replacement = "&#10;"
            case 0x0D: replacement = "&#13;"
            case 0x00..<0x20: skipCount = 1
            case 0xEF:
                // U+FFFE and U+FFFF are encoded as EF BF BE and EF BF BF.
                if index + 2 < bytes.count && bytes[index + 1] == 0xBF && bytes[index + 2] & 0xFE == 0xBE {
                    skipCount = 3
                }
            default:
                break
            }
            if replacement == nil && skipCount == 0 {
                index += 1
                continue
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            if let replacement {
                appendASCII(replacement)
                index += 1
            } else {
                index += skipCount
            }
            runStart = index
        }
        append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
    }

    /// Appends text as a JSON string literal, including the surrounding quotes.
    ///
    /// `"` and `\` are escaped with a backslash and control characters below U+0020
    /// are written as `\u00XX`. Everything else, non-ASCII included, stays UTF-8.
    mutating func appendJSONString(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            appendJSONString(bytes)
        }
    }

    /// Appends UTF-8 bytes as a JSON string literal, by the rules of `appendJSONString(_: String)`.
    mutating func appendJSONString(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(0x22)
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == 0x22 || byte == 0x5C else {
                continue
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            if byte < 0x20 {
                appendASCII("\\u00")
                append(hexDigit(byte >> 4))
                append(hexDigit(byte & 0x0F))
            } else {
                append(0x5C)
                append(byte)
            }
            runStart = index + 1
        }
        append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        append(0x22)
    }
}

/// Returns the lowercase hexadecimal digit for a value from 0 to 15.
@inline(__always)
func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? 0x30 &+ value : 0x57 &+ value
}
