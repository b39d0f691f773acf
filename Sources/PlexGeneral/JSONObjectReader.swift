import Foundation

/// Typed access to one JSON object from JSONSerialization, with errors that name the key path.
///
/// A key whose value is `null` counts as present with the wrong type, so `null`
/// never silently stands for the default.
struct JSONObjectReader {
    let object: [String: Any]
    /// The path of this object, such as `sharedTokens[1]`, or empty for the root.
    let keyPath: String

    /// Parses a whole document whose root must be an object.
    init(parsing json: Data) throws(ConfigurationError) {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: json, options: [])
        } catch {
            var reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            while reason.hasSuffix(".") {
                reason.removeLast()
            }
            throw ConfigurationError(
                keyPath: nil, message: "the configuration is not valid JSON: \(reason). Correct the syntax.")
        }
        guard let object = value as? [String: Any] else {
            throw ConfigurationError(
                keyPath: nil,
                message: "the configuration must be a JSON object, found \(jsonTypeName(value)). Wrap the settings in { }.")
        }
        self.object = object
        self.keyPath = ""
    }

    /// Wraps a nested value, which must be an object.
    init(_ value: Any, keyPath: String) throws(ConfigurationError) {
        guard let object = value as? [String: Any] else {
            throw ConfigurationError(keyPath: keyPath, message: "expected an object, found \(jsonTypeName(value)).")
        }
        self.object = object
        self.keyPath = keyPath
    }

    /// Returns the path of a key in this object.
    func keyPath(_ key: String) -> String {
        keyPath.isEmpty ? key : "\(keyPath).\(key)"
    }

    /// Makes an error for one key of this object.
    func error(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(keyPath: keyPath(key), message: message)
    }

    /// Throws for the first key, in sorted order, that is not in `allowed`.
    func rejectUnknownKeys(allowed: [String]) throws(ConfigurationError) {
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw error(
                key,
                "unknown key. Correct its spelling or remove it. Valid keys here: \(allowed.sorted().joined(separator: ", ")).")
        }
    }

    func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = object[key] else {
            return nil
        }
        guard let string = value as? String else {
            throw typeError(key, expected: "a string", found: value)
        }
        return string
    }

    func int(_ key: String) throws(ConfigurationError) -> Int? {
        guard let value = object[key] else {
            return nil
        }
        // JSONSerialization returns booleans as NSNumber too, and `as? Int` would accept them.
        guard !isJSONBoolean(value), let number = value as? NSNumber, let integer = value as? Int,
            number.doubleValue == Double(integer)
        else {
            throw typeError(key, expected: "an integer", found: value)
        }
        return integer
    }

    func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = object[key] else {
            return nil
        }
        guard isJSONBoolean(value), let boolean = value as? Bool else {
            throw typeError(key, expected: "true or false", found: value)
        }
        return boolean
    }

    func array(_ key: String) throws(ConfigurationError) -> [Any]? {
        guard let value = object[key] else {
            return nil
        }
        guard let array = value as? [Any] else {
            throw typeError(key, expected: "an array", found: value)
        }
        return array
    }

    private func typeError(_ key: String, expected: String, found value: Any) -> ConfigurationError {
        error(key, "expected \(expected), found \(jsonTypeName(value)).")
    }
}

/// Returns the JSON type of a JSONSerialization value, with an article, for error messages.
func jsonTypeName(_ value: Any) -> String {
    if isJSONBoolean(value) {
        return "a boolean"
    }
    switch value {
    case is NSNull: return "null"
    case is String: return "a string"
    case is NSNumber: return "a number"
    case is [Any]: return "an array"
    case is [String: Any]: return "an object"
    default: return "a value of type \(type(of: value))"
    }
}

/// The class JSONSerialization uses for `true` and `false`, which is a subclass of NSNumber.
private let booleanNumberClass = ObjectIdentifier(type(of: NSNumber(value: true)))

/// Tests whether a JSONSerialization value came from `true` or `false` rather than a number.
func isJSONBoolean(_ value: Any) -> Bool {
    if type(of: value) == Bool.self {
        return true
    }
    guard let number = value as? NSNumber else {
        return false
    }
    return ObjectIdentifier(type(of: number)) == booleanNumberClass
}
