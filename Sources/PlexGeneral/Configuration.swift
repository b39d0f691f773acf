import Foundation
import UVHTTP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The server settings read from the JSON configuration file.
///
/// Every key is optional. Unknown keys and values of the wrong type are errors, so a
/// misspelled key cannot silently leave a default in place.
public struct ServerConfiguration: Sendable, Equatable, CustomReflectable {
    /// The version reported when the file sets none.
    public static let defaultVersion = "1.0.0.0-000000000"
    /// The port Plex Media Server listens on by default.
    public static let defaultPort = 32400

    /// The server name shown to clients. Defaults to the host name.
    public var friendlyName: String
    /// The owner's token, or nil to use the token kept in the state directory.
    public var adminToken: String?
    /// Tokens of users who may use the server with shared-user rights.
    public var sharedTokens: [SharedToken]
    /// Networks whose clients get owner rights without a token. Defaults to none.
    public var allowedNetworks: NetworkList
    /// The addresses `/security/resources` lists for this server. Defaults to none.
    public var advertisedConnections: [Connection]
    /// The catalogue of other servers and providers known to `/security/resources`.
    public var sources: [SourceEntry]
    /// The version string in `N.N.N.N-hhhhhhhhh` form.
    public var version: String
    /// Seconds a transient token stays valid, from 1 to 172800 (48 hours).
    public var transientTokenLifetimeSeconds: Int
    /// The maximum number of live transient tokens, at least 1.
    public var maxTransientTokens: Int
    /// The TCP port to listen on, from 0 to 65535.
    public var port: Int
    /// The IPv4 or IPv6 address to listen on.
    public var bind: String
    /// The directory that keeps the machine identifier and generated admin token, or nil for none.
    public var stateDirectory: String?
    /// The HTTP server's limits and timeouts.
    public var http: HTTPServer.Configuration
    /// The least severe log level written: `error`, `warning`, `info` or `debug`.
    public var logLevel: String
    /// Where the access log goes: a file path, `-` for standard error, or nil for none.
    public var accessLog: String?
    /// Seconds a stop waits for requests in progress before closing their connections.
    public var stopGracePeriodSeconds: Int

    /// The log levels `logLevel` accepts, most severe first.
    public static let logLevels = ["error", "warning", "info", "debug"]

    /// Creates a configuration with every default, as an empty file `{}` gives.
    public init() {
        friendlyName = currentHostName()
        adminToken = nil
        sharedTokens = []
        allowedNetworks = NetworkList()
        advertisedConnections = []
        sources = []
        version = Self.defaultVersion
        transientTokenLifetimeSeconds = TransientTokenStore.maximumLifetimeSeconds
        maxTransientTokens = 1_000_000
        port = Self.defaultPort
        bind = "0.0.0.0"
        stateDirectory = nil
        http = HTTPServer.Configuration()
        logLevel = "info"
        accessLog = nil
        stopGracePeriodSeconds = 10
    }

    /// Parses and validates the configuration file's contents.
    public init(json: Data) throws(ConfigurationError) {
        self.init()
        let root = try JSONObjectReader(parsing: json)
        try root.rejectUnknownKeys(allowed: Self.keys)

        if let name = try root.string("friendlyName") {
            guard !name.isEmpty else {
                throw root.error("friendlyName", "empty. Give a name, or remove the key to use the host name.")
            }
            friendlyName = name
        }
        if let token = try root.string("adminToken") {
            try validateToken(
                token, keyPath: root.keyPath("adminToken"),
                emptyFix: "Set a non-empty token, or remove the key to use the token kept in the state directory.")
            adminToken = token
        }
        sharedTokens = try parseSharedTokens(root, adminToken: adminToken)
        allowedNetworks = try parseAllowedNetworks(root)
        if let connections = try root.array("advertisedConnections") {
            advertisedConnections = try parseConnections(connections, keyPath: root.keyPath("advertisedConnections"))
        }
        sources = try parseSourceEntries(root)
        try HTTPSettingKeys.parse(root, into: &http)
        try parseDaemonSettings(root)

        if let version = try root.string("version") {
            guard isValidVersion(version) else {
                throw root.error(
                    "version",
                    "invalid value \"\(version)\". Use the form N.N.N.N-hhhhhhhhh with nine lowercase hexadecimal digits after the hyphen, such as \(Self.defaultVersion)."
                )
            }
            self.version = version
        }
        if let lifetime = try root.int("transientTokenLifetimeSeconds") {
            guard lifetime >= 1 else {
                throw root.error("transientTokenLifetimeSeconds", "\(lifetime) is too small. Use at least 1 second.")
            }
            guard lifetime <= TransientTokenStore.maximumLifetimeSeconds else {
                throw root.error(
                    "transientTokenLifetimeSeconds",
                    "\(lifetime) is above the 48-hour maximum. Use at most \(TransientTokenStore.maximumLifetimeSeconds) seconds."
                )
            }
            transientTokenLifetimeSeconds = lifetime
        }
        if let maximum = try root.int("maxTransientTokens") {
            guard maximum >= 1 else {
                throw root.error("maxTransientTokens", "\(maximum) is too small. Use at least 1.")
            }
            maxTransientTokens = maximum
        }
        if let port = try root.int("port") {
            guard (0...65535).contains(port) else {
                throw root.error("port", "\(port) is out of range. Use a port from 0 to 65535.")
            }
            self.port = port
        }
        if let bind = try root.string("bind") {
            guard parseIPv4(bind) != nil || parseIPv6(bind) != nil else {
                throw root.error(
                    "bind", "invalid address \"\(bind)\". Use an IPv4 or IPv6 address, such as 0.0.0.0 or ::.")
            }
            self.bind = bind
        }
        if let directory = try root.string("stateDirectory") {
            guard !directory.isEmpty else {
                throw root.error("stateDirectory", "empty. Give a directory path, or remove the key.")
            }
            stateDirectory = directory
        }
    }

    private mutating func parseDaemonSettings(_ root: JSONObjectReader) throws(ConfigurationError) {
        if let level = try root.string("logLevel") {
            guard Self.logLevels.contains(level) else {
                throw root.error(
                    "logLevel", "invalid value \"\(level)\". Use one of \(Self.logLevels.joined(separator: ", ")).")
            }
            logLevel = level
        }
        if let path = try root.string("accessLog") {
            guard !path.isEmpty else {
                throw root.error("accessLog", "empty. Give a file path or - for standard error, or remove the key.")
            }
            accessLog = path
        }
        if let seconds = try root.int("stopGracePeriodSeconds") {
            guard (0...3600).contains(seconds) else {
                throw root.error("stopGracePeriodSeconds", "\(seconds) is out of range. Use 0 to 3600 seconds.")
            }
            stopGracePeriodSeconds = seconds
        }
    }

    /// The maximum size of a configuration file, 16 MiB, far above any real catalogue.
    static let maximumFileSize = 16 * 1024 * 1024

    /// Reads and parses a configuration file. Errors name the file when it cannot be read.
    public init(contentsOfFile path: String) throws(ConfigurationError) {
        let reason: String
        switch readFile(atPath: path, maximumSize: Self.maximumFileSize) {
        case .contents(let bytes):
            try self.init(json: Data(bytes))
            return
        case .missing:
            reason = errnoDescription(ENOENT)
        case .tooLarge:
            reason = "larger than 16 MiB"
        case .failed(let code):
            reason = errnoDescription(code)
        }
        throw ConfigurationError(
            keyPath: nil,
            message: "cannot read configuration file \(path): \(reason). Check the path and its permissions.")
    }

    /// Parses only the `sources` catalogue from the configuration file's contents, for a
    /// catalogue reload. Other keys are neither read nor validated.
    public static func parseSources(json: Data) throws(ConfigurationError) -> [SourceEntry] {
        let root = try JSONObjectReader(parsing: json)
        return try parseSourceEntries(root)
    }

    /// A mirror that hides every token, so that `dump` and `print` show none.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "friendlyName": friendlyName,
                "adminToken": adminToken == nil ? "none" : "<redacted>",
                "sharedTokens": sharedTokens,
                "allowedNetworks": allowedNetworks.description,
                "advertisedConnections": advertisedConnections,
                "sources": sources,
                "version": version,
                "transientTokenLifetimeSeconds": transientTokenLifetimeSeconds,
                "maxTransientTokens": maxTransientTokens,
                "port": port,
                "bind": bind,
                "stateDirectory": stateDirectory ?? "none",
                "http": http,
                "logLevel": logLevel,
                "accessLog": accessLog ?? "none",
                "stopGracePeriodSeconds": stopGracePeriodSeconds,
            ])
    }

    /// Every key the configuration file accepts.
    public static let keys = [
        "adminToken", "advertisedConnections", "allowedNetworks", "bind", "friendlyName", "maxTransientTokens",
        "port", "sharedTokens", "sources", "stateDirectory", "transientTokenLifetimeSeconds", "version",
        "logLevel", "accessLog", "stopGracePeriodSeconds",
    ] + HTTPSettingKeys.all.map(\.name)
}

/// A shared user's token and the name that identifies the user.
public struct SharedToken: Sendable, Equatable, CustomReflectable {
    /// The user's name, which becomes the access level `.shared(name:)`.
    public let name: String
    /// The token the user sends as `X-Plex-Token`.
    public let token: String

    /// Creates a shared user's entry.
    public init(name: String, token: String) {
        self.name = name
        self.token = token
    }

    /// A mirror that hides the token.
    public var customMirror: Mirror {
        Mirror(self, children: ["name": name, "token": "<redacted>"])
    }
}

/// An invalid configuration, with a message that names the key and the fix.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The path of the offending key, such as `sharedTokens[1].token`, or nil when the
    /// error concerns the whole file.
    public let keyPath: String?
    /// The problem and its fix, as sentences.
    public let message: String

    /// Creates an error for a key path.
    public init(keyPath: String?, message: String) {
        self.keyPath = keyPath
        self.message = message
    }

    /// The key path and message, such as `sharedTokens[1].token: missing. Give each shared user a non-empty token.`
    public var description: String {
        guard let keyPath else {
            return message
        }
        return "\(keyPath): \(message)"
    }
}

// MARK: - Sections

private func parseSharedTokens(
    _ root: JSONObjectReader, adminToken: String?
) throws(ConfigurationError) -> [SharedToken] {
    guard let entries = try root.array("sharedTokens") else {
        return []
    }
    var result: [SharedToken] = []
    var firstIndexByToken: [String: Int] = [:]
    for (index, value) in entries.enumerated() {
        let entry = try JSONObjectReader(value, keyPath: "\(root.keyPath("sharedTokens"))[\(index)]")
        try entry.rejectUnknownKeys(allowed: ["name", "token"])

        guard let name = try entry.string("name") else {
            throw entry.error("name", "missing. Give each shared user a non-empty name.")
        }
        guard !name.isEmpty else {
            throw entry.error("name", "empty. Give each shared user a non-empty name.")
        }
        guard let token = try entry.string("token") else {
            throw entry.error("token", "missing. Give each shared user a non-empty token.")
        }
        try validateToken(token, keyPath: entry.keyPath("token"), emptyFix: "Give each shared user a non-empty token.")
        if token == adminToken {
            throw entry.error("token", "same as adminToken. Give shared users tokens that differ from the admin token.")
        }
        if let firstIndex = firstIndexByToken[token] {
            throw entry.error(
                "token", "same as sharedTokens[\(firstIndex)].token. Give each shared user a different token.")
        }
        firstIndexByToken[token] = index
        result.append(SharedToken(name: name, token: token))
    }
    return result
}

private func parseAllowedNetworks(_ root: JSONObjectReader) throws(ConfigurationError) -> NetworkList {
    let key = "allowedNetworks"
    guard let value = root.object[key] else {
        return NetworkList()
    }
    if let text = value as? String {
        do {
            return try NetworkList(parsing: text)
        } catch {
            throw root.error(key, "\(error). Correct or remove the entry.")
        }
    }
    guard let elements = value as? [Any] else {
        throw root.error(key, "expected a string or an array of strings, found \(jsonTypeName(value)).")
    }
    var list = NetworkList()
    for (index, element) in elements.enumerated() {
        let elementPath = "\(root.keyPath(key))[\(index)]"
        guard let entry = element as? String else {
            throw ConfigurationError(keyPath: elementPath, message: "expected a string, found \(jsonTypeName(element)).")
        }
        do {
            try list.append(entry: entry)
        } catch {
            throw ConfigurationError(keyPath: elementPath, message: "\(error). Correct or remove the entry.")
        }
    }
    return list
}

private func parseConnections(_ values: [Any], keyPath: String) throws(ConfigurationError) -> [Connection] {
    var result: [Connection] = []
    for (index, value) in values.enumerated() {
        let entry = try JSONObjectReader(value, keyPath: "\(keyPath)[\(index)]")
        try entry.rejectUnknownKeys(allowed: ["address", "local", "port", "protocol", "relay"])

        guard let schemeText = try entry.string("protocol") else {
            throw entry.error("protocol", "missing. Set it to \"http\" or \"https\".")
        }
        guard let scheme = Connection.Scheme(rawValue: schemeText) else {
            throw entry.error("protocol", "invalid value \"\(schemeText)\". Use \"http\" or \"https\".")
        }
        guard let address = try entry.string("address") else {
            throw entry.error("address", "missing. Give the IP address or host name that clients connect to.")
        }
        guard isValidConnectionAddress(address) else {
            throw entry.error(
                "address",
                "invalid address \"\(address)\". Use an IPv4 address, an IPv6 address without brackets, or a host name.")
        }
        guard let port = try entry.int("port") else {
            throw entry.error("port", "missing. Give the TCP port that clients connect to, such as 32400.")
        }
        guard (1...65535).contains(port) else {
            throw entry.error("port", "\(port) is out of range. Use a port from 1 to 65535.")
        }
        guard let local = try entry.bool("local") else {
            throw entry.error("local", "missing. Set it to true for an address on the server's LAN, false otherwise.")
        }
        let relay = try entry.bool("relay") ?? false
        result.append(Connection(scheme: scheme, address: address, port: port, local: local, relay: relay))
    }
    return result
}

private func parseSourceEntries(_ root: JSONObjectReader) throws(ConfigurationError) -> [SourceEntry] {
    guard let values = try root.array("sources") else {
        return []
    }
    var result: [SourceEntry] = []
    var firstIndexBySource: [SourceReference: Int] = [:]
    for (index, value) in values.enumerated() {
        let entry = try JSONObjectReader(value, keyPath: "\(root.keyPath("sources"))[\(index)]")
        try entry.rejectUnknownKeys(allowed: ["accessToken", "clientIdentifier", "connections", "name", "source"])

        guard let sourceText = try entry.string("source") else {
            throw entry.error("source", "missing. Give the source as server://<identifier> or provider://<identifier>.")
        }
        guard let source = SourceReference(parsing: sourceText), source.description == sourceText else {
            throw entry.error(
                "source",
                "invalid value \"\(sourceText)\". Use server://<identifier> or provider://<identifier>, with no path after the identifier."
            )
        }
        if let firstIndex = firstIndexBySource[source] {
            throw entry.error("source", "\(sourceText) is already listed as sources[\(firstIndex)]. List each source once.")
        }
        firstIndexBySource[source] = index

        guard let name = try entry.string("name"), !name.isEmpty else {
            throw entry.error("name", "missing or empty. Give the device name that clients display.")
        }
        guard let clientIdentifier = try entry.string("clientIdentifier"), !clientIdentifier.isEmpty else {
            throw entry.error("clientIdentifier", "missing or empty. Give the device's client identifier.")
        }
        let accessToken = try entry.string("accessToken")
        if let accessToken, accessToken.isEmpty {
            throw entry.error("accessToken", "empty. Give the device's token, or remove the key.")
        }
        guard let connectionValues = try entry.array("connections") else {
            throw entry.error("connections", "missing. List the device's connections, or give an empty array.")
        }
        let connections = try parseConnections(connectionValues, keyPath: entry.keyPath("connections"))
        result.append(
            SourceEntry(
                source: source, name: name, clientIdentifier: clientIdentifier, accessToken: accessToken,
                connections: connections))
    }
    return result
}

// MARK: - Validation

/// Rejects tokens that a client could not send in a header or that collide with transient tokens.
private func validateToken(_ token: String, keyPath: String, emptyFix: String) throws(ConfigurationError) {
    guard !token.isEmpty else {
        throw ConfigurationError(keyPath: keyPath, message: "empty. \(emptyFix)")
    }
    guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
        throw ConfigurationError(
            keyPath: keyPath,
            message: "contains a space, a control character or a non-ASCII character. Use printable ASCII only.")
    }
    guard !token.hasPrefix("transient-") else {
        throw ConfigurationError(
            keyPath: keyPath,
            message: "starts with \"transient-\", which the server reserves for the tokens it mints. Choose another token.")
    }
}

/// Tests the `N.N.N.N-hhhhhhhhh` form: four dot-separated decimal numbers, a hyphen,
/// and nine lowercase hexadecimal digits.
func isValidVersion(_ version: String) -> Bool {
    let halves = version.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
    guard halves.count == 2 else {
        return false
    }
    let numbers = halves[0].split(separator: ".", omittingEmptySubsequences: false)
    let isDecimal: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    let isLowercaseHex: (UInt8) -> Bool = { isDecimal($0) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    guard numbers.count == 4, numbers.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(isDecimal) }) else {
        return false
    }
    return halves[1].utf8.count == 9 && halves[1].utf8.allSatisfy(isLowercaseHex)
}

/// Tests whether an address is an IPv4 or IPv6 literal, or a host name of letters, digits, `-`, `_` and `.`.
private func isValidConnectionAddress(_ address: String) -> Bool {
    if address.contains(":") {
        return parseIPv6(address) != nil
    }
    guard !address.isEmpty, !address.hasPrefix("."), !address.hasPrefix("-") else {
        return false
    }
    return address.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }
}

/// Returns the host name from gethostname(2), or `pmsd` when it is unavailable.
private func currentHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else {
        return "pmsd"
    }
    let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "pmsd" : name
}
