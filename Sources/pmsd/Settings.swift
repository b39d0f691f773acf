import Foundation
import PlexGeneral

/// How a setting's text from the environment or a flag becomes JSON.
enum SettingKind {
    case string
    case integer
    /// JSON text, for lists such as `sharedTokens`.
    case json
}

/// One setting of pmsd: its configuration file key, the environment
/// variable that overrides the file, and the flag that overrides both.
struct Setting {
    let key: String
    let kind: SettingKind
    let flag: String?
    let valueName: String
    let help: String

    /// The environment variable: `PMSD_` and the key in upper snake case,
    /// so `maxBodyBytes` is `PMSD_MAX_BODY_BYTES`.
    var environmentName: String {
        var name = "PMSD_"
        for character in key {
            if character.isUppercase { name += "_" }
            name += character.uppercased()
        }
        return name
    }
}

/// Every setting, in the order `--help` lists them.
let allSettings: [Setting] = [
    Setting(key: "port", kind: .integer, flag: "port", valueName: "N",
            help: "TCP port to listen on; 0 picks a free one (default: 32400)"),
    Setting(key: "bind", kind: .string, flag: "bind", valueName: "ADDR",
            help: "IPv4 or IPv6 address to listen on (default: 0.0.0.0)"),
    Setting(key: "stateDirectory", kind: .string, flag: "state-dir", valueName: "DIR",
            help: "directory for the machine identifier and generated owner token "
                + "(default: $STATE_DIRECTORY, else /var/lib/pmsd)"),
    Setting(key: "friendlyName", kind: .string, flag: "friendly-name", valueName: "NAME",
            help: "server name shown to clients (default: the host name)"),
    Setting(key: "logLevel", kind: .string, flag: "log-level", valueName: "LEVEL",
            help: "error, warning, info or debug (default: info)"),
    Setting(key: "accessLog", kind: .string, flag: "access-log", valueName: "PATH",
            help: "write one line per request to PATH, or - for standard error (default: off)"),
    Setting(key: "stopGracePeriodSeconds", kind: .integer, flag: "stop-grace-period", valueName: "SECONDS",
            help: "seconds a stop waits for requests in progress (default: 10)"),
    Setting(key: "allowedNetworks", kind: .string, flag: "allowed-networks", valueName: "LIST",
            help: "comma-separated IP, IP/netmask or CIDR entries admitted without a token (default: none)"),
    Setting(key: "adminToken", kind: .string, flag: nil, valueName: "", help: "owner token"),
    Setting(key: "sharedTokens", kind: .json, flag: nil, valueName: "", help: "shared users"),
    Setting(key: "advertisedConnections", kind: .json, flag: nil, valueName: "", help: "advertised connections"),
    Setting(key: "sources", kind: .json, flag: nil, valueName: "", help: "source catalogue"),
    Setting(key: "version", kind: .string, flag: nil, valueName: "", help: "reported version"),
    Setting(key: "transientTokenLifetimeSeconds", kind: .integer, flag: nil, valueName: "", help: "token lifetime"),
    Setting(key: "maxTransientTokens", kind: .integer, flag: nil, valueName: "", help: "live token cap"),
    Setting(key: "maxRequestHeadBytes", kind: .integer, flag: nil, valueName: "", help: "header bytes"),
    Setting(key: "maxHeaderCount", kind: .integer, flag: nil, valueName: "", help: "header fields"),
    Setting(key: "maxURLBytes", kind: .integer, flag: nil, valueName: "", help: "URL bytes"),
    Setting(key: "maxBodyBytes", kind: .integer, flag: nil, valueName: "", help: "body bytes"),
    Setting(key: "maxChunkExtensionBytes", kind: .integer, flag: nil, valueName: "", help: "chunk extension bytes"),
    Setting(key: "maxConnections", kind: .integer, flag: nil, valueName: "", help: "open connections"),
    Setting(key: "maxRequestsPerConnection", kind: .integer, flag: nil, valueName: "", help: "requests per connection"),
    Setting(key: "keepAliveTimeoutSeconds", kind: .integer, flag: nil, valueName: "", help: "keep-alive idle"),
    Setting(key: "headerTimeoutSeconds", kind: .integer, flag: nil, valueName: "", help: "header deadline"),
    Setting(key: "bodyTimeoutSeconds", kind: .integer, flag: nil, valueName: "", help: "body idle"),
    Setting(key: "writeTimeoutSeconds", kind: .integer, flag: nil, valueName: "", help: "write stall"),
]

/// The environment variable naming the configuration file when `--config`
/// is not given.
let configurationEnvironmentName = "PMSD_CONFIG"

/// Builds the effective configuration from the file, the environment and
/// the flags: a flag wins over the environment, which wins over the file,
/// which wins over the default. Every value is validated together, and an
/// error names where the offending value came from.
struct SettingsLoader {
    let configurationPath: String?
    let environment: [String: String]
    let flags: [String: String]

    init(flags: [String: String], environment: [String: String]) {
        self.flags = flags
        self.environment = environment
        configurationPath = flags["config"] ?? environment[configurationEnvironmentName]
    }

    /// Reads the file (again, on a reload) and returns the configuration.
    func load() throws(ConfigurationError) -> ServerConfiguration {
        var object: [String: Any] = [:]
        if let path = configurationPath {
            object = try readObject(path)
        }
        var origins: [String: String] = [:]
        for setting in allSettings {
            if let text = environment[setting.environmentName] {
                object[setting.key] = try value(text, setting, origin: setting.environmentName)
                origins[setting.key] = setting.environmentName
            }
            if let flag = setting.flag, let text = flags[flag] {
                object[setting.key] = try value(text, setting, origin: "--\(flag)")
                origins[setting.key] = "--\(flag)"
            }
        }
        if object["stateDirectory"] == nil, let systemd = environment["STATE_DIRECTORY"] {
            // systemd lists one directory per StateDirectory= entry, separated by colons.
            object["stateDirectory"] = String(systemd.split(separator: ":").first ?? "")
            origins["stateDirectory"] = "STATE_DIRECTORY"
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: object)
            return try ServerConfiguration(json: data)
        } catch let error as ConfigurationError {
            throw attribute(error, origins: origins)
        } catch {
            throw ConfigurationError(keyPath: nil, message: "cannot combine the settings: \(error)")
        }
    }

    private func readObject(_ path: String) throws(ConfigurationError) -> [String: Any] {
        // Parsing the file alone first gives its errors a message that names
        // the file rather than the merged settings.
        do throws(ConfigurationError) {
            _ = try ServerConfiguration(contentsOfFile: path)
        } catch {
            guard error.keyPath == nil, !error.message.contains(path) else { throw error }
            throw ConfigurationError(keyPath: nil, message: "\(path): \(error.message)")
        }
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw ConfigurationError(keyPath: nil, message: "cannot read configuration file \(path).")
        }
        return object
    }

    private func value(_ text: String, _ setting: Setting, origin: String) throws(ConfigurationError) -> Any {
        switch setting.kind {
        case .string:
            return text
        case .integer:
            guard let number = Int(text) else {
                throw ConfigurationError(
                    keyPath: origin, message: "invalid value \"\(text)\". Give a whole number for \(setting.key).")
            }
            return number
        case .json:
            guard let data = text.data(using: .utf8), let parsed = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
                throw ConfigurationError(
                    keyPath: origin, message: "invalid JSON. Give \(setting.key) as JSON text, as in the file.")
            }
            return parsed
        }
    }

    /// Names the environment variable or flag in an error about a value
    /// that came from one, since the key alone would point at the file.
    private func attribute(_ error: ConfigurationError, origins: [String: String]) -> ConfigurationError {
        guard let keyPath = error.keyPath else { return error }
        let key = String(keyPath.prefix { $0 != "." && $0 != "[" })
        guard let origin = origins[key] else { return error }
        return ConfigurationError(keyPath: "\(origin) (\(keyPath))", message: error.message)
    }
}
