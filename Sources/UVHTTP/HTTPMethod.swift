/// A request method.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method token as it appears on the request line, such as `GET`.
    public let rawValue: String
    /// A small number for the methods declared below, 0 for any other, so
    /// routing compares integers rather than strings.
    let code: UInt8

    /// Creates a method from its token.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
        self.code = HTTPMethod.knownTokens.firstIndex(of: rawValue).map { UInt8($0 + 1) } ?? 0
    }

    private init(known rawValue: String, code: UInt8) {
        self.rawValue = rawValue
        self.code = code
    }

    /// The tokens of the methods declared below, in the order of their codes.
    static let knownTokens = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    /// Compares two methods by their tokens.
    public static func == (lhs: HTTPMethod, rhs: HTTPMethod) -> Bool {
        if lhs.code != 0 || rhs.code != 0 { return lhs.code == rhs.code }
        return lhs.rawValue == rhs.rawValue
    }

    /// Hashes the token, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawValue)
    }

    /// The method token.
    public var description: String { rawValue }

    /// `GET`.
    public static let get = HTTPMethod(known: "GET", code: 1)
    /// `HEAD`.
    public static let head = HTTPMethod(known: "HEAD", code: 2)
    /// `POST`.
    public static let post = HTTPMethod(known: "POST", code: 3)
    /// `PUT`.
    public static let put = HTTPMethod(known: "PUT", code: 4)
    /// `DELETE`.
    public static let delete = HTTPMethod(known: "DELETE", code: 5)
    /// `PATCH`.
    public static let patch = HTTPMethod(known: "PATCH", code: 6)
    /// `OPTIONS`.
    public static let options = HTTPMethod(known: "OPTIONS", code: 7)
}
