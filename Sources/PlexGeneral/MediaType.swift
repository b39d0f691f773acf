/// The format of a response body: Plex's XML, or the same data as JSON.
public enum BodyFormat: Sendable, Equatable {
    /// XML, the format Plex uses unless the request's `Accept` header prefers JSON.
    case xml
    /// JSON, written only when the request's `Accept` header prefers it.
    case json

    /// Chooses the format for a request from its `Accept` header value, by the rule of `prefersJSON(accept:)`.
    public init(accept: some Collection<UInt8>) {
        self = prefersJSON(accept: accept) ? .json : .xml
    }

    /// Chooses the format for a request from its optional `Accept` header value. No header gives XML.
    public init(accept: String?) {
        self = prefersJSON(accept: accept) ? .json : .xml
    }

    /// The `Content-Type` header value. JSON carries no charset parameter, because
    /// node-plex-api parses a body as JSON only when the type is exactly `application/json`.
    public var contentType: StaticString {
        switch self {
        case .xml: "text/xml;charset=utf-8"
        case .json: "application/json"
        }
    }
}

/// Decides from an `Accept` header value whether a response should be JSON.
///
/// The result is JSON only when the header lists `application/json` itself (not
/// through a wildcard) with q > 0, and its q is at least the q of both XML types,
/// `application/xml` and `text/xml`. Each XML type takes its q from the most
/// specific range that matches it (`application/xml`, then `application/*`, then
/// `*/*`). So `*/*` alone, `application/xml` and an empty header all give XML,
/// while `application/json, */*` gives JSON. Media types and parameter names
/// compare case-insensitively, and a range whose q value is malformed is ignored.
public func prefersJSON(accept: some Collection<UInt8>) -> Bool {
    if let result = accept.withContiguousStorageIfAvailable({ prefersJSON(acceptBytes: $0) }) {
        return result
    }
    return Array(accept).withUnsafeBufferPointer { prefersJSON(acceptBytes: $0) }
}

/// Decides from an optional `Accept` header value whether a response should be JSON.
public func prefersJSON(accept: String?) -> Bool {
    guard var accept else {
        return false
    }
    return accept.withUTF8 { prefersJSON(acceptBytes: $0) }
}

/// The highest q value, in thousandths, of the ranges that name one media type or wildcard.
/// A value of -1 means that no range names it.
private struct AcceptQualities {
    var applicationJSON = -1
    var applicationXML = -1
    var textXML = -1
    var applicationAny = -1
    var textAny = -1
    var any = -1

    /// Returns the higher q of the two XML types, each taken from the most specific range that matches it.
    func effectiveXMLQuality() -> Int {
        let application = applicationXML >= 0 ? applicationXML : (applicationAny >= 0 ? applicationAny : any)
        let text = textXML >= 0 ? textXML : (textAny >= 0 ? textAny : any)
        return max(application, text)
    }
}

private func prefersJSON(acceptBytes bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var qualities = AcceptQualities()
    var rangeStart = 0
    while rangeStart <= bytes.count {
        var rangeEnd = rangeStart
        while rangeEnd < bytes.count && bytes[rangeEnd] != UInt8(ascii: ",") {
            rangeEnd += 1
        }
        record(range: bytes[rangeStart..<rangeEnd], in: &qualities)
        rangeStart = rangeEnd + 1
    }
    return qualities.applicationJSON > 0 && qualities.applicationJSON >= qualities.effectiveXMLQuality()
}

/// Parses one media range such as `application/json;q=0.8` and records its q value.
private func record(range: Slice<UnsafeBufferPointer<UInt8>>, in qualities: inout AcceptQualities) {
    var segmentEnd = range.firstIndex(of: UInt8(ascii: ";")) ?? range.endIndex
    let mediaType = trimmed(range[range.startIndex..<segmentEnd])
    var quality = 1000
    while segmentEnd < range.endIndex {
        let parameterStart = segmentEnd + 1
        segmentEnd = range[parameterStart...].firstIndex(of: UInt8(ascii: ";")) ?? range.endIndex
        let parameter = range[parameterStart..<segmentEnd]
        guard let equalsIndex = parameter.firstIndex(of: UInt8(ascii: "=")),
            equalsIgnoringCase(trimmed(parameter[..<equalsIndex]), "q")
        else {
            continue
        }
        guard let parsed = parseQuality(trimmed(parameter[(equalsIndex + 1)...])) else {
            return
        }
        quality = parsed
    }

    if equalsIgnoringCase(mediaType, "application/json") {
        qualities.applicationJSON = max(qualities.applicationJSON, quality)
    } else if equalsIgnoringCase(mediaType, "application/xml") {
        qualities.applicationXML = max(qualities.applicationXML, quality)
    } else if equalsIgnoringCase(mediaType, "text/xml") {
        qualities.textXML = max(qualities.textXML, quality)
    } else if equalsIgnoringCase(mediaType, "application/*") {
        qualities.applicationAny = max(qualities.applicationAny, quality)
    } else if equalsIgnoringCase(mediaType, "text/*") {
        qualities.textAny = max(qualities.textAny, quality)
    } else if equalsIgnoringCase(mediaType, "*/*") {
        qualities.any = max(qualities.any, quality)
    }
}

/// Parses an HTTP qvalue (`0`, `0.5`, `1.000`; at most three decimals, at most 1) in thousandths.
private func parseQuality(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
    guard let first = text.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else {
        return nil
    }
    var value = Int(first - UInt8(ascii: "0")) * 1000
    var index = text.index(after: text.startIndex)
    if index == text.endIndex {
        return value
    }
    guard text[index] == UInt8(ascii: "."), text.distance(from: index, to: text.endIndex) <= 4 else {
        return nil
    }
    index = text.index(after: index)
    var scale = 100
    while index != text.endIndex {
        let digit = text[index]
        guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else {
            return nil
        }
        value += Int(digit - UInt8(ascii: "0")) * scale
        scale /= 10
        index = text.index(after: index)
    }
    return value <= 1000 ? value : nil
}

private func trimmed(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
    var start = text.startIndex
    var end = text.endIndex
    while start < end && (text[start] == UInt8(ascii: " ") || text[start] == UInt8(ascii: "\t")) {
        start += 1
    }
    while end > start && (text[end - 1] == UInt8(ascii: " ") || text[end - 1] == UInt8(ascii: "\t")) {
        end -= 1
    }
    return text[start..<end]
}

/// Compares bytes with a lowercase ASCII literal, ignoring the case of ASCII letters in the bytes.
private func equalsIgnoringCase(_ text: Slice<UnsafeBufferPointer<UInt8>>, _ lowercase: StaticString) -> Bool {
    guard text.count == lowercase.utf8CodeUnitCount else {
        return false
    }
    return lowercase.withUTF8Buffer { expected in
        var index = text.startIndex
        for expectedByte in expected {
            var byte = text[index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
                byte += 0x20
            }
            if byte != expectedByte {
                return false
            }
            index += 1
        }
        return true
    }
}
