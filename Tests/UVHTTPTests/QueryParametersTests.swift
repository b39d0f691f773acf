import Testing
@testable import UVHTTP

/// Query decoding on the raw bytes after `?`.
struct QueryParametersTests {
    static func value(_ query: String, _ name: String) -> String? {
        Array(query.utf8).withUnsafeBytes { QueryParameters(bytes: $0)[name] }
    }

    static func items(_ query: String) -> [String] {
        Array(query.utf8).withUnsafeBytes { bytes in
            QueryParameters(bytes: bytes).items.map { "\($0.name)=\($0.value)" }
        }
    }

    @Test(arguments: [
        ("q=a%20b", "q", "a b"),
        ("q=a+b", "q", "a b"),
        ("q=a%2Bb", "q", "a+b"),
        ("q=%2b", "q", "+"),
        ("q=100%25", "q", "100%"),
        ("q=%zz", "q", "%zz"),
        ("q=%4", "q", "%4"),
        ("q=%", "q", "%"),
        ("q=a%2", "q", "a%2"),
        ("q=%C3%A9t%C3%A9", "q", "été"),
        ("q=été", "q", "été"),
        ("q=a=b", "q", "a=b"),
        ("q=", "q", ""),
    ])
    func valuesAreDecoded(query: String, name: String, expected: String) {
        #expect(Self.value(query, name) == expected)
    }

    @Test(arguments: [
        ("na%6De=x", "name", "x"),
        ("first+name=x", "first name", "x"),
        ("a%2Bb=x", "a+b", "x"),
        ("%C3%A9t%C3%A9=x", "été", "x"),
        ("=x", "", "x"),
    ])
    func namesAreDecoded(query: String, name: String, expected: String) {
        #expect(Self.value(query, name) == expected)
    }

    @Test(arguments: [
        ("a=1", "b"),
        ("a+b=1", "a+b"),
        ("ab=1", "a"),
        ("a=1", "ab"),
        ("", "a"),
    ])
    func missingNameHasNoValue(query: String, name: String) {
        #expect(Self.value(query, name) == nil)
    }

    @Test func firstRepeatedNameWins() {
        #expect(Self.value("id=1&id=2&id=3", "id") == "1")
    }

    @Test func itemsKeepRepeatedNames() {
        #expect(Self.items("id=1&x=0&id=2&id=3") == ["id=1", "x=0", "id=2", "id=3"])
    }

    @Test func nameWithoutEqualsHasEmptyValue() {
        #expect(Self.value("flag&a=1", "flag") == "")
        #expect(Self.items("flag&a=1") == ["flag=", "a=1"])
    }

    @Test(arguments: [
        ("&&a=1&&b=2&", ["a=1", "b=2"]),
        ("&", []),
        ("", []),
    ])
    func emptyPairsAreSkipped(query: String, expected: [String]) {
        #expect(Self.items(query) == expected)
    }

    @Test func itemsDecodeNamesAndValues() {
        #expect(Self.items("na%6De=a+b%21&%C3%A9=%C3%A9") == ["name=a b!", "é=é"])
    }

    @Test func invalidUTF8BecomesReplacement() {
        #expect(Self.value("q=%FF", "q") == "\u{FFFD}")
    }

    @Test func sequenceIteratesItems() {
        let names = Array("a=1&b=2".utf8).withUnsafeBytes { bytes in
            QueryParameters(bytes: bytes).map(\.name)
        }
        #expect(names == ["a", "b"])
    }

    @Test(arguments: [
        ("X-Plex-To%6Ben%zz", "X-Plex-Token%zz"),
        ("a+b%20c", "a b c"),
        ("%2", "%2"),
        ("plain", "plain"),
    ])
    func componentDecodesAsQueryDoes(encoded: String, decoded: String) {
        #expect(decodeQueryComponent(encoded) == decoded)
    }
}
