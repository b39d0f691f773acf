import Foundation
import Testing

@testable import PlexGeneral

@Suite("Byte writers")
struct ByteWritersTests {
    @Test(
        "XML escaping",
        arguments: [
            ("plain", "plain"),
            ("<&\"'>", "&lt;&amp;&quot;&apos;&gt;"),
            ("tab\tLF\nCR\r", "tab&#9;LF&#10;CR&#13;"),
            ("a\u{01}b\u{1F}c\u{00}", "abc"),
            ("x\u{FFFE}y\u{FFFF}z", "xyz"),
            ("\u{FFFD}\u{FEFF}", "\u{FFFD}\u{FEFF}"),
            ("é漢🎉", "é漢🎉"),
            ("", ""),
        ])
    func xmlEscaping(input: String, expected: String) {
        var buffer: [UInt8] = []
        buffer.appendXMLEscaped(input)
        #expect(String(decoding: buffer, as: UTF8.self) == expected)
    }

    @Test("XML escaping appends after existing bytes")
    func xmlEscapingAppends() {
        var buffer = Array("x=".utf8)
        buffer.appendXMLEscaped("a&b")
        #expect(buffer == Array("x=a&amp;b".utf8))
    }

    @Test("XML escaping survives a strict parser")
    func xmlEscapingRoundTrip() throws {
        let value = "Ünïcødé <server> & \"friends\" 'quoted'\ttab\nline\u{01}\u{FFFF}🎉"
        var document = Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Root value=\"".utf8)
        document.appendXMLEscaped(value)
        document.appendASCII("\"/>")

        let elements = try #require(parseXML(document))
        #expect(elements.first?.attributes["value"] == "Ünïcødé <server> & \"friends\" 'quoted'\ttab\nline🎉")
    }

    @Test(
        "JSON string escaping",
        arguments: [
            ("plain", #""plain""#),
            (#"say "hi" \ bye"#, #""say \"hi\" \\ bye""#),
            ("line\nfeed\ttab\r", #""line\u000afeed\u0009tab\u000d""#),
            ("\u{00}\u{1F}", #""\u0000\u001f""#),
            ("é漢🎉/\u{7F}", "\"é漢🎉/\u{7F}\""),
            ("", #""""#),
        ])
    func jsonEscaping(input: String, expected: String) {
        var buffer: [UInt8] = []
        buffer.appendJSONString(input)
        #expect(String(decoding: buffer, as: UTF8.self) == expected)
    }

    @Test("JSON escaping survives JSONSerialization")
    func jsonEscapingRoundTrip() throws {
        var input = "<&\"'>\\ Ünïcødé 🎉"
        for scalar in 0..<0x20 {
            input.unicodeScalars.append(Unicode.Scalar(UInt8(scalar)))
        }
        var document = Array("{\"value\":".utf8)
        document.appendJSONString(input)
        document.appendASCII("}")

        let object = try #require(decodeJSONObject(document))
        #expect(object["value"] as? String == input)
    }

    @Test(
        "Decimal integers",
        arguments: [
            (0, "0"), (7, "7"), (10, "10"), (32400, "32400"), (-1, "-1"), (-172_800, "-172800"),
            (Int.max, "9223372036854775807"), (Int.min, "-9223372036854775808"),
        ])
    func decimalIntegers(value: Int, expected: String) {
        var buffer = Array("n=".utf8)
        buffer.appendDecimal(value)
        #expect(String(decoding: buffer, as: UTF8.self) == "n=" + expected)
    }

    @Test("Literal and UTF-8 appends")
    func literalAppends() {
        var buffer: [UInt8] = []
        buffer.appendASCII("<a>")
        buffer.appendUTF8("é&")
        #expect(buffer == Array("<a>é&".utf8))
    }
}
