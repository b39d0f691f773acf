import Foundation
import PlexGeneral
import UVHTTP

/// A start-up failure: the message to print and the exit status.
struct DaemonError: Error {
    let message: String
    let status: Int32
}

/// The running daemon: the state directory, the Plex endpoints, the HTTP
/// server they are served by, and the signals, timers and notifications
/// around them.
final class Daemon {
    let loader: SettingsLoader
    let logger: Logger
    let notifier: SystemdNotifier
    let server: HTTPServer
    let plex: PlexServer
    let accessLog: AccessLog?
    /// The configuration in force; replaced by a successful reload.
    private(set) var configuration: ServerConfiguration

    init(loader: SettingsLoader, configuration: ServerConfiguration, logger: Logger, notifier: SystemdNotifier)
        throws(DaemonError)
    {
        self.loader = loader
        self.logger = logger
        self.notifier = notifier
        self.configuration = configuration

        let identity = try Daemon.identity(configuration, configurationPath: loader.configurationPath, logger: logger)
        do {
            accessLog = try configuration.accessLog.map { try AccessLog(path: $0, logger: logger) }
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.cannotCreate)
        }
        do {
            plex = try PlexServer(configuration: configuration, identity: identity, log: logger.handler)
            server = try HTTPServer(
                router: plex.makeRouter(), configuration: configuration.http, logHandler: logger.handler,
                accessLogHandler: accessLog.map { log in { entry in log.record(entry) } })
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.software)
        }
        let port = try listen()
        do {
            try plex.attach(to: server, listeningHost: configuration.bind, port: port)
            try installSignalHandlers()
            try installTimers()
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.software)
        }
        logger.log(.info, "ready", [
            ("friendly_name", configuration.friendlyName), ("bind", configuration.bind), ("port", "\(port)"),
        ])
    }

    /// Loads or creates the machine identifier and, when no owner token is
    /// configured, the generated one.
    private static func identity(_ configuration: ServerConfiguration, configurationPath: String?, logger: Logger)
        throws(DaemonError) -> PlexServer.Identity
    {
        guard let directory = configuration.stateDirectory else {
            throw DaemonError(message: "no state directory; set --state-dir", status: ExitStatus.configuration)
        }
        do {
            let state = try StateDirectory(path: directory)
            let machineIdentifier = try state.loadOrCreateMachineIdentifier()
            var adminToken = configuration.adminToken ?? ""
            if configuration.adminToken == nil {
                adminToken = try state.loadOrCreateAdminToken()
                logger.log(.info, "owner token loaded from the state directory",
                           [("file", state.path + "/" + StateDirectory.adminTokenFileName)])
            }
            return PlexServer.Identity(
                machineIdentifier: machineIdentifier, adminToken: adminToken, configurationPath: configurationPath)
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.cannotCreate)
        }
    }

    private func listen() throws(DaemonError) -> Int {
        do {
            return try server.listen(host: configuration.bind, port: configuration.port)
        } catch let error as UVError where error.name == "EADDRINUSE" {
            throw DaemonError(
                message: "port \(configuration.port) on \(configuration.bind) is already in use; "
                    + "stop the other server or choose another port with --port",
                status: ExitStatus.unavailable)
        } catch {
            throw DaemonError(message: "\(error); check --bind and --port", status: ExitStatus.unavailable)
        }
    }

    private func installSignalHandlers() throws {
        for (signal, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            try server.addSignalHandler(signal) { [unowned self] in stop(signal: name) }
        }
        try server.addSignalHandler(SIGHUP) { [unowned self] in reload() }
    }

    private func installTimers() throws {
        if let accessLog {
            try server.addTimer(every: 1) { accessLog.flush() }
        }
        if let microseconds = notifier.watchdogMicroseconds {
            // systemd advises pinging at half the interval. A stuck loop stops
            // the pings, so systemd restarts the service.
            try server.addTimer(every: Double(microseconds) / 2_000_000) { [notifier] in
                notifier.notify("WATCHDOG=1")
            }
            logger.log(.info, "systemd watchdog enabled", [("interval_us", "\(microseconds)")])
        }
    }

    /// Runs until stopped; returns the exit status.
    func run() -> Int32 {
        notifier.notify("READY=1\nSTATUS=serving\nMAINPID=\(getpid())")
        do {
            try server.run()
        } catch {
            logger.log(.error, "server loop ended with an error", [("error", "\(error)")])
            return ExitStatus.software
        }
        accessLog?.flush()
        logger.log(.info, "exiting", [("status", "0")])
        return 0
    }

    private func stop(signal name: String) {
        logger.log(.info, "stop requested", [
            ("signal", name), ("grace_period_seconds", "\(configuration.stopGracePeriodSeconds)"),
        ])
        notifier.notify("STOPPING=1")
        server.stop(gracePeriod: Double(configuration.stopGracePeriodSeconds))
    }
}

extension Daemon {
    /// Keys that change only on restart: the listening socket, the state
    /// directory and the HTTP server's limits are fixed when it starts.
    static func restartOnlyChanges(from old: ServerConfiguration, to new: ServerConfiguration) -> [String] {
        var keys: [String] = []
        if old.port != new.port { keys.append("port") }
        if old.bind != new.bind { keys.append("bind") }
        if old.stateDirectory != new.stateDirectory { keys.append("stateDirectory") }
        if old.http != new.http { keys.append("HTTP limits") }
        if old.accessLog != new.accessLog { keys.append("accessLog") }
        return keys
    }

    /// Re-reads the configuration on another thread, so the loop keeps
    /// serving, then applies it on the loop. A configuration that fails to
    /// load or apply is rejected and the old one stays in force. Connections
    /// and transient tokens survive either way.
    func reload() {
        logger.log(.info, "reload requested", [("signal", "SIGHUP")])
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())")
        let loader = self.loader
        let daemon = LoopBound(self)
        DispatchQueue.global().async { [server] in
            let result: Result<ServerConfiguration, ConfigurationError>
            do throws(ConfigurationError) {
                result = .success(try loader.load())
            } catch {
                result = .failure(error)
            }
            let loaded = LoopBound(result)
            server.execute { daemon.value.finishReload(loaded.value) }
        }
    }

    private func finishReload(_ result: Result<ServerConfiguration, ConfigurationError>) {
        defer { notifier.notify("READY=1\nSTATUS=serving") }
        let new: ServerConfiguration
        switch result {
        case .failure(let error):
            logger.log(.error, "reload rejected; the old configuration stays in force", [("error", "\(error)")])
            return
        case .success(let configuration):
            new = configuration
        }
        do {
            try plex.apply(new)
        } catch {
            logger.log(.error, "reload rejected; the old configuration stays in force", [("error", "\(error)")])
            return
        }
        let restartOnly = Daemon.restartOnlyChanges(from: configuration, to: new)
        if let level = Logger.level(named: new.logLevel) {
            logger.threshold = level
        }
        accessLog?.reopen()
        configuration = new
        logger.log(.info, "reloaded", [("friendly_name", new.friendlyName)])
        if !restartOnly.isEmpty {
            logger.log(.warning, "some changes take effect only after a restart",
                       [("settings", restartOnly.joined(separator: ","))])
        }
    }
}

/// Carries a value that only the loop thread uses across a hop to another
/// thread and back.
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
