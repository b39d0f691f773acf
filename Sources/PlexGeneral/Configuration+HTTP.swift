import UVHTTP

/// The configuration keys for the HTTP server's limits and timeouts, each
/// with the ``HTTPServer/Configuration`` property it sets and the smallest
/// value it accepts. Timeouts are whole seconds, and 0 disables them.
enum HTTPSettingKeys {
    // Unchecked because a key path literal is immutable; Swift 6.3 does not
    // mark WritableKeyPath Sendable.
    struct Key: @unchecked Sendable {
        let name: String
        let minimum: Int
        let unit: String
        let property: WritableKeyPath<HTTPServer.Configuration, Int>
    }

    static let all: [Key] = [
        Key(name: "maxRequestHeadBytes", minimum: 256, unit: "bytes", property: \.maxHeadBytes),
        Key(name: "maxHeaderCount", minimum: 1, unit: "header fields", property: \.maxHeaderCount),
        Key(name: "maxURLBytes", minimum: 16, unit: "bytes", property: \.maxTargetBytes),
        Key(name: "maxBodyBytes", minimum: 0, unit: "bytes", property: \.maxBodyBytes),
        Key(name: "maxChunkExtensionBytes", minimum: 0, unit: "bytes", property: \.maxChunkExtensionBytes),
        Key(name: "maxConnections", minimum: 1, unit: "connections", property: \.maxConnections),
        Key(name: "maxRequestsPerConnection", minimum: 0, unit: "requests", property: \.maxRequestsPerConnection),
        Key(name: "keepAliveTimeoutSeconds", minimum: 0, unit: "seconds", property: \.keepAliveTimeout),
        Key(name: "headerTimeoutSeconds", minimum: 0, unit: "seconds", property: \.headerTimeoutSeconds),
        Key(name: "bodyTimeoutSeconds", minimum: 0, unit: "seconds", property: \.bodyTimeoutSeconds),
        Key(name: "writeTimeoutSeconds", minimum: 0, unit: "seconds", property: \.writeTimeoutSeconds),
    ]

    /// Reads every limit key present in `root` into `http`.
    static func parse(_ root: JSONObjectReader, into http: inout HTTPServer.Configuration) throws(ConfigurationError) {
        for key in all {
            guard let value = try root.int(key.name) else { continue }
            guard value >= key.minimum else {
                throw root.error(key.name, "\(value) is too small. Use at least \(key.minimum) \(key.unit).")
            }
            guard value <= Int(UInt32.max) / 1000 else {
                throw root.error(key.name, "\(value) is too large. Use at most \(Int(UInt32.max) / 1000).")
            }
            http[keyPath: key.property] = value
        }
    }
}

extension HTTPServer.Configuration {
    /// ``headerTimeout`` in whole seconds, as the configuration file gives it.
    var headerTimeoutSeconds: Int {
        get { Int(headerTimeout) }
        set { headerTimeout = Double(newValue) }
    }

    /// ``bodyTimeout`` in whole seconds, as the configuration file gives it.
    var bodyTimeoutSeconds: Int {
        get { Int(bodyTimeout) }
        set { bodyTimeout = Double(newValue) }
    }

    /// ``writeTimeout`` in whole seconds, as the configuration file gives it.
    var writeTimeoutSeconds: Int {
        get { Int(writeTimeout) }
        set { writeTimeout = Double(newValue) }
    }
}
