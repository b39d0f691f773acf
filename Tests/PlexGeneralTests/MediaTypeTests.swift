import Testing

@testable import PlexGeneral

@Suite("Accept negotiation")
struct MediaTypeTests {
    static let cases: [(accept: String, json: Bool)] = [
        ("", false),
        ("*/*", false),
        ("application/xml", false),
        ("text/xml", false),
        ("application/*", false),
        ("application/json", true),
        ("APPLICATION/JSON", true),
        ("Application/Json", true),
        ("application/json; charset=utf-8", true),
        ("application/json, text/plain, */*", true),
        ("application/json, */*;q=0.1", true),
        ("application/json;q=0", false),
        ("application/json;Q=0", false),
        ("application/json;q=0.000", false),
        ("application/json;q=0.001", true),
        ("application/json;q=1.0", true),
        ("application/json;q=1.000", true),
        ("application/json;q=0.5, application/xml", false),
        ("application/xml;q=0.5, application/json", true),
        ("application/json;q=0.5, application/xml;q=0.5", true),
        ("text/xml, application/json;q=0.9", false),
        ("application/json;q=0.8, */*", false),
        ("application/json;q=0.5, application/*;q=0.9", false),
        ("application/json;q=0.5, text/*;q=0.9", false),
        ("application/json;q=0.5, application/*;q=0.9, application/xml;q=0.1, text/xml;q=0.1", true),
        ("application/json;q=0.5, application/xml;q=0", true),
        (" application/json ; q=0.7 , application/xml;q=0.6", true),
        ("application/json;q=1.5", false),
        ("application/json;q=abc", false),
        ("application/json;q=0.1234", false),
        ("application/json;q=", false),
        ("application/json;q=1.5, application/json;q=0.4, */*;q=0.3", true),
        ("application/jsonx", false),
        ("application/json-patch+json", false),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false),
        (",,application/json,,", true),
    ]

    @Test("Accept header as bytes", arguments: cases)
    func acceptBytes(accept: String, json: Bool) {
        #expect(prefersJSON(accept: Array(accept.utf8)) == json)
    }

    @Test("Accept header as string", arguments: cases)
    func acceptString(accept: String, json: Bool) {
        #expect(prefersJSON(accept: accept) == json)
    }

    @Test("Accept header in non-contiguous storage", arguments: cases)
    func acceptNonContiguous(accept: String, json: Bool) {
        let bytes = Array(accept.utf8).reversed().reversed()
        #expect(prefersJSON(accept: bytes) == json)
    }

    @Test("Missing Accept header gives XML")
    func missingAccept() {
        #expect(prefersJSON(accept: nil) == false)
        #expect(BodyFormat(accept: nil) == .xml)
    }

    @Test("Body format and content type")
    func bodyFormat() {
        let json = BodyFormat(accept: Array("application/json".utf8))
        let xml = BodyFormat(accept: "application/xml")
        #expect(json == .json)
        #expect(xml == .xml)
        #expect(json.contentType.description == "application/json")
        #expect(xml.contentType.description == "text/xml;charset=utf-8")
    }
}
