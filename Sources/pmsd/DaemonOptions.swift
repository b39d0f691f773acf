import Foundation
import PlexGeneral
import UVHTTP

/// The settings pmsd starts with, after the command line, the environment
/// and the configuration file have been combined. A flag wins over the
/// environment, which wins over the file, which wins over the default.
struct DaemonOptions {
    var configurationPath: String?
    var configuration: ServerConfiguration
    var stateDirectory: String
    var logLevel: LogLevel

    init(arguments: [String: String], environment: [String: String]) throws {
        if let level = arguments["log-level"] {
            guard let parsed = Logger.level(named: level) else {
                throw UsageError(description: "--log-level: invalid value \(level.debugDescription); use error, warning, info or debug")
            }
            logLevel = parsed
        } else {
            logLevel = .info
        }

        configurationPath = arguments["config"]
        if let path = configurationPath {
            configuration = try ServerConfiguration(contentsOfFile: path)
        } else {
            configuration = ServerConfiguration()
        }
        if let token = environment["PMSD_ADMIN_TOKEN"] {
            guard !token.isEmpty else {
                throw ConfigurationError(keyPath: "PMSD_ADMIN_TOKEN", message: "empty; unset it or give the owner token")
            }
            configuration.adminToken = token
        }
        if let port = arguments["port"] {
            guard let value = Int(port), (0...65535).contains(value) else {
                throw UsageError(description: "--port: invalid value \(port.debugDescription); use a number from 0 to 65535")
            }
            configuration.port = value
        }
        if let bind = arguments["bind"] {
            configuration.bind = bind
        }
        stateDirectory = arguments["state-dir"] ?? configuration.stateDirectory
            ?? environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? "/var/lib/pmsd"
    }
}
