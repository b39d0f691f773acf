import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One element seen by XMLParser, with its attributes.
struct ParsedElement {
    let name: String
    let attributes: [String: String]
    let depth: Int
}

/// Parses XML with Foundation's strict parser and returns the elements in document order,
/// or nil when the document is not well-formed.
func parseXML(_ bytes: [UInt8]) -> [ParsedElement]? {
    let collector = ElementCollector()
    let parser = XMLParser(data: Data(bytes))
    parser.delegate = collector
    guard parser.parse() else {
        return nil
    }
    return collector.elements
}

private final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [ParsedElement] = []
    private var depth = 0

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        elements.append(ParsedElement(name: elementName, attributes: attributes, depth: depth))
        depth += 1
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        depth -= 1
    }
}

/// Decodes a JSON document whose root is an object, or returns nil.
func decodeJSONObject(_ bytes: [UInt8]) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
}

/// Converts an IPv4 or IPv6 literal to its network-order bytes with inet_pton.
func addressBytes(_ text: String) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 16)
    if inet_pton(AF_INET, text, &bytes) == 1 {
        return Array(bytes.prefix(4))
    }
    precondition(inet_pton(AF_INET6, text, &bytes) == 1, "not an IP address: \(text)")
    return bytes
}

/// Creates a fresh directory under the system temporary directory.
func makeTemporaryDirectory() -> String {
    var template = Array((NSTemporaryDirectory() + "/plexgeneral-tests-XXXXXX").utf8CString)
    let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(result != nil, "mkdtemp failed")
    return String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Removes a directory created by `makeTemporaryDirectory`.
func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Returns the permission bits of a file, or nil when stat fails.
func permissionBits(_ path: String) -> mode_t? {
    var status = stat()
    guard stat(path, &status) == 0 else {
        return nil
    }
    return status.st_mode & 0o7777
}
