import Foundation
import PlexGeneral
import UVHTTP

/// The version pmsd reports for `--version`; the Plex `version` attribute is
/// configured separately.
let pmsdVersion = "0.1.0"

let parser = ArgumentParser(
    options: [
        OptionSpec(name: "config", valueName: "FILE", help: "JSON configuration file (default: none, all defaults)"),
        OptionSpec(name: "port", valueName: "N", help: "TCP port to listen on (default: 32400; 0 picks a free one)"),
        OptionSpec(name: "bind", valueName: "ADDR", help: "IPv4 or IPv6 address to listen on (default: 0.0.0.0)"),
        OptionSpec(
            name: "state-dir", valueName: "DIR",
            help: "directory for the machine identifier and generated owner token "
                + "(default: $STATE_DIRECTORY, else /var/lib/pmsd)"),
        OptionSpec(name: "log-level", valueName: "LEVEL", help: "error, warning, info or debug (default: info)"),
    ],
    flags: [
        ("help", "print this help and exit"),
        ("version", "print the version and exit"),
    ])

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

let summary = "Serves the Plex Media Server \"General\" endpoints: /, /identity, /security/token, /security/resources."
let arguments: ArgumentParser.Parsed
do {
    arguments = try parser.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data(parser.usage(program: "pmsd", summary: summary).utf8))
    fail("\(error)", status: ExitStatus.usage)
}
if arguments.flags.contains("help") {
    print(parser.usage(program: "pmsd", summary: summary), terminator: "")
    exit(0)
}
if arguments.flags.contains("version") {
    print("pmsd \(pmsdVersion)")
    exit(0)
}

let environment = ProcessInfo.processInfo.environment
let options: DaemonOptions
do {
    options = try DaemonOptions(arguments: arguments.values, environment: environment)
} catch let error as UsageError {
    fail(error.description, status: ExitStatus.usage)
} catch {
    fail("\(error)", status: ExitStatus.configuration)
}

let logger = Logger(threshold: options.logLevel)
let daemon: Daemon
do {
    daemon = try Daemon(options: options, logger: logger)
} catch {
    fail(error.message, status: error.status)
}
exit(daemon.run())
