/// A request method.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method token as it appears on the request line, such as `GET`.
    public let rawValue: String

    /// Creates a method from its token.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static let get = HTTPMethod("GET")
    public static let head = HTTPMethod("HEAD")
    public static let post = HTTPMethod("POST")
    public static let put = HTTPMethod("PUT")
    public static let delete = HTTPMethod("DELETE")
    public static let patch = HTTPMethod("PATCH")
    public static let options = HTTPMethod("OPTIONS")
}
