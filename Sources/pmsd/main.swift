import Foundation
import PlexGeneral
import UVHTTP

/// The version pmsd prints for `--version`; the Plex `version` attribute is
/// configured separately.
let pmsdVersion = "0.1.0"

/// Exit statuses from sysexits(3).
enum ExitStatus {
    static let usage: Int32 = 64
    static let unavailable: Int32 = 69
    static let software: Int32 = 70
    static let cannotCreate: Int32 = 73
    static let configuration: Int32 = 78
}

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("pmsd: \(message)\n".utf8))
    exit(status)
}

let parser = ArgumentParser(
    options: [OptionSpec(name: "config", valueName: "FILE", help: "JSON configuration file (default: $PMSD_CONFIG, else none)")]
        + allSettings.compactMap { setting in
            setting.flag.map { OptionSpec(name: $0, valueName: setting.valueName, help: setting.help) }
        },
    flags: [
        ("check-config", "validate the configuration and exit: 0 when valid, 78 when not"),
        ("help", "print this help and exit"),
        ("version", "print the version and exit"),
    ])
let usage = parser.usage(
    program: "pmsd",
    summary: """
        Serves the Plex Media Server "General" endpoints: /, /identity, /security/token and
        /security/resources. Every configuration file key can also be set in the environment
        as PMSD_ and the key in upper snake case (maxBodyBytes: PMSD_MAX_BODY_BYTES). A flag
        wins over the environment, which wins over the file. See docs/configuration.md.
        Signals: SIGTERM and SIGINT stop gracefully, SIGHUP reloads the configuration.
        """)

let arguments: ArgumentParser.Parsed
do {
    arguments = try parser.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data(usage.utf8))
    fail("\(error)", status: ExitStatus.usage)
}
if arguments.flags.contains("help") {
    print(usage, terminator: "")
    exit(0)
}
if arguments.flags.contains("version") {
    print("pmsd \(pmsdVersion)")
    exit(0)
}

let environment = ProcessInfo.processInfo.environment
let loader = SettingsLoader(flags: arguments.values, environment: environment)
var configuration: ServerConfiguration
do {
    configuration = try loader.load()
} catch {
    fail("invalid configuration: \(error)", status: ExitStatus.configuration)
}
if configuration.stateDirectory == nil {
    configuration.stateDirectory = "/var/lib/pmsd"
}
if arguments.flags.contains("check-config") {
    print("pmsd: configuration is valid")
    exit(0)
}

let logger = Logger(threshold: Logger.level(named: configuration.logLevel) ?? .info)
logger.log(.info, "starting", [("version", pmsdVersion), ("config", loader.configurationPath ?? "none")])
let daemon: Daemon
do {
    daemon = try Daemon(
        loader: loader, configuration: configuration, logger: logger,
        notifier: SystemdNotifier(environment: environment))
} catch {
    fail(error.message, status: error.status)
}
exit(daemon.run())
