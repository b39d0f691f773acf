/// A request method.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method token as it appears on the request line, such as `GET`.
    public let rawValue: String

    /// Creates a method from its token.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    /// The method token.
    public var description: String { rawValue }

    /// `GET`.
    public static let get = HTTPMethod("GET")
    /// `HEAD`.
    public static let head = HTTPMethod("HEAD")
    /// `POST`.
    public static let post = HTTPMethod("POST")
    /// `PUT`.
    public static let put = HTTPMethod("PUT")
    /// `DELETE`.
    public static let delete = HTTPMethod("DELETE")
    /// `PATCH`.
    public static let patch = HTTPMethod("PATCH")
    /// `OPTIONS`.
    public static let options = HTTPMethod("OPTIONS")
}
