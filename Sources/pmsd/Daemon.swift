import Foundation
import PlexGeneral
import UVHTTP

/// A start-up failure: the message to print and the exit status.
struct DaemonError: Error {
    let message: String
    let status: Int32
}

/// The running daemon: the state directory, the Plex endpoints and the HTTP
/// server they are served by.
final class Daemon {
    let options: DaemonOptions
    let logger: Logger
    let server: HTTPServer
    let plex: PlexServer

    init(options: DaemonOptions, logger: Logger) throws(DaemonError) {
        self.options = options
        self.logger = logger
        let configuration = options.configuration

        let identity: PlexServer.Identity
        do {
            let state = try StateDirectory(path: options.stateDirectory)
            let machineIdentifier = try state.loadOrCreateMachineIdentifier()
            var adminToken = configuration.adminToken
            if adminToken == nil {
                adminToken = try state.loadOrCreateAdminToken()
                logger.log(.info, "owner token loaded from the state directory",
                           [("file", state.path + "/" + StateDirectory.adminTokenFileName)])
            }
            identity = PlexServer.Identity(
                machineIdentifier: machineIdentifier, adminToken: adminToken!,
                configurationPath: options.configurationPath)
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.cannotCreate)
        }

        do {
            plex = try PlexServer(configuration: configuration, identity: identity, log: logger.handler)
            server = try HTTPServer(
                router: plex.makeRouter(), configuration: configuration.http, logHandler: logger.handler)
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.software)
        }

        let port: Int
        do {
            port = try server.listen(host: configuration.bind, port: configuration.port)
        } catch let error as UVError where error.name == "EADDRINUSE" {
            throw DaemonError(
                message: "port \(configuration.port) on \(configuration.bind) is already in use; "
                    + "stop the other server or choose another port with --port",
                status: ExitStatus.unavailable)
        } catch {
            throw DaemonError(
                message: "\(error); check --bind and --port", status: ExitStatus.unavailable)
        }

        do {
            try plex.attach(to: server, listeningHost: configuration.bind, port: port)
            for signal in [SIGINT, SIGTERM] {
                try server.addSignalHandler(signal) { [server, logger] in
                    logger.log(.info, "stop requested", [("signal", signal == SIGINT ? "SIGINT" : "SIGTERM")])
                    server.stop()
                }
            }
        } catch {
            throw DaemonError(message: "\(error)", status: ExitStatus.software)
        }
        logger.log(.info, "ready", [
            ("friendly_name", configuration.friendlyName),
            ("bind", configuration.bind), ("port", "\(port)"),
        ])
    }

    /// Runs until stopped; returns the exit status.
    func run() -> Int32 {
        do {
            try server.run()
            return 0
        } catch {
            logger.log(.error, "server loop ended with an error", [("error", "\(error)")])
            return ExitStatus.software
        }
    }
}
