import Foundation
import UVHTTP

/// The Plex "General" endpoints on top of UVHTTP: `GET /`, `GET /identity`,
/// `/security/token` and `GET /security/resources`.
///
/// Build it from a configuration, take its ``makeRouter()`` for an
/// ``HTTPServer``, then ``attach(to:)`` it to that server before the loop
/// runs. Everything after that happens on the loop thread.
public final class PlexServer {
    /// What the server needs besides the configuration file's content.
    public struct Identity: Sendable {
        /// 40 lowercase hexadecimal characters, stable across restarts.
        public var machineIdentifier: String
        /// The owner's token when the configuration sets none: the one kept
        /// in the state directory. A configured `adminToken` takes
        /// precedence, including after ``PlexServer/apply(_:)``.
        public var adminToken: String
        /// The configuration file that `refresh=1` re-reads for `sources`, if
        /// any.
        public var configurationPath: String?

        /// Creates the identity.
        public init(machineIdentifier: String, adminToken: String, configurationPath: String?) {
            self.machineIdentifier = machineIdentifier
            self.adminToken = adminToken
            self.configurationPath = configurationPath
        }
    }

    /// Top-level paths served, listed as `Directory` children of `GET /`.
    static let directories = ["identity", "security"]

    /// Seconds between sweeps of expired transient tokens.
    static let sweepInterval = 60.0

    let identity: Identity
    let log: LogHandler
    let tokens: TransientTokenStore
    private(set) var configuration: ServerConfiguration
    var catalogue: [SourceEntry]
    var authenticator: Authenticator
    var prepared: PreparedResponses
    /// Connections advertised for the server itself when the configuration
    /// lists none, derived from the listening address.
    var listeningConnections: [Connection] = []
    /// Runs a closure on the loop thread; set by ``attach(to:)``.
    var executeOnLoop: @Sendable (@escaping @Sendable () -> Void) -> Void = { _ in }

    /// Creates the endpoints.
    /// - Throws: ``HTTPFieldError`` when the configuration yields a header
    ///   that cannot be sent.
    public init(configuration: ServerConfiguration, identity: Identity, log: @escaping LogHandler) throws {
        self.configuration = configuration
        self.identity = identity
        self.log = log
        self.catalogue = configuration.sources
        self.tokens = TransientTokenStore(
            lifetimeSeconds: configuration.transientTokenLifetimeSeconds,
            maximumCount: configuration.maxTransientTokens)
        self.authenticator = Authenticator(
            adminToken: configuration.adminToken ?? identity.adminToken, sharedTokens: configuration.sharedTokens,
            allowedNetworks: configuration.allowedNetworks)
        self.prepared = try PreparedResponses(
            configuration: configuration, machineIdentifier: identity.machineIdentifier,
            updatedAt: Int(Date().timeIntervalSince1970))
    }

    /// Applies a new configuration: the prepared bodies, tokens and networks
    /// change, while live transient tokens stay valid.
    /// - Throws: ``HTTPFieldError`` when the configuration yields a header
    ///   that cannot be sent; the old configuration then stays.
    public func apply(_ configuration: ServerConfiguration) throws {
        let prepared = try PreparedResponses(
            configuration: configuration, machineIdentifier: identity.machineIdentifier,
            updatedAt: Int(Date().timeIntervalSince1970))
        self.prepared = prepared
        self.configuration = configuration
        self.catalogue = configuration.sources
        self.authenticator = Authenticator(
            adminToken: configuration.adminToken ?? identity.adminToken, sharedTokens: configuration.sharedTokens,
            allowedNetworks: configuration.allowedNetworks)
        tokens.lifetimeSeconds = configuration.transientTokenLifetimeSeconds
        tokens.maximumCount = configuration.maxTransientTokens
        let sharedNames = Set(configuration.sharedTokens.map(\.name))
        let revoked = tokens.removeAll { level in
            if case .shared(let name) = level { return !sharedNames.contains(name) }
            return false
        }
        if revoked > 0 {
            log(LogRecord(level: .info, message: "transient tokens of removed shared users revoked",
                          metadata: [("count", "\(revoked)")]))
        }
    }

    /// Connects the endpoints to `server`: the token sweep timer, the way
    /// back to the loop for catalogue reloads, and the connections to
    /// advertise when the configuration lists none.
    /// - Throws: ``UVError`` when the timer cannot be created.
    public func attach(to server: HTTPServer, listeningHost: String, port: Int) throws {
        // Weak, because the server's routes hold this object: a strong
        // reference back would keep both alive forever.
        executeOnLoop = { [weak server] work in server?.execute(work) }
        listeningConnections = ListeningAddresses.connections(host: listeningHost, port: port)
        try server.addTimer(every: PlexServer.sweepInterval) { [self] in
            let removed = tokens.sweep(now: TransientTokenStore.currentTime())
            if removed > 0 {
                log(LogRecord(level: .debug, message: "expired transient tokens removed",
                              metadata: [("count", "\(removed)"), ("live", "\(tokens.count)")]))
            }
        }
    }

    /// The route table for the endpoints.
    public func makeRouter() -> Router {
        var router = Router()
        for path in ["/", "/identity", "/security/token", "/security/resources"] {
            router.add(.options, path) { [self] request in preflight(request) }
        }
        router.get("/identity") { [self] request in
            decorate(Response(prepared.identity(for: request)), for: request)
        }
        router.get("/") { [self] request in serverInfo(request) }
        router.add(nil, "/security/token") { [self] request in transientToken(request) }
        router.addDeferred(.get, "/security/resources") { [self] request, responder in
            resources(request, responder: responder)
        }
        router.rejection = { status in PreparedResponses.rejection(status) }
        router.fallback = { [self] request, miss in
            if request.method == .options { return preflight(request) }
            switch miss {
            case .notFound:
                return error(.notFound, for: request)
            case .methodNotAllowed(let allow):
                var response = error(.methodNotAllowed, for: request)
                response.headers.add("Allow", allow)
                return response
            }
        }
        return router
    }

    private func serverInfo(_ request: Request) -> Response {
        guard caller(of: request) != nil else {
            return error(.unauthorized, for: request)
        }
        return decorate(Response(prepared.serverInfo(for: request)), for: request)
    }

    func caller(of request: Request) -> Caller? {
        authenticator.caller(of: request, tokens: tokens, now: TransientTokenStore.currentTime())
    }

    /// An HTML error response, as Plex sends for 4xx statuses.
    func error(_ status: HTTPStatus, for request: Request) -> Response {
        decorate(Response(prepared.error(status)), for: request)
    }

    /// Adds the fields that depend on the request: CORS for browsers, which
    /// Plex Web needs on successes and errors alike.
    func decorate(_ response: consuming Response, for request: Request) -> Response {
        guard let origin = request.headers["Origin"] else { return response }
        return CORS.allowingOrigin(origin, response)
    }

    /// Answers a CORS preflight, which browsers send without a token.
    private func preflight(_ request: Request) -> Response {
        var response = Response(prepared.preflight)
        let requested = request.headers["Access-Control-Request-Headers"] ?? ""
        response.headers.add("Access-Control-Allow-Headers", CORS.allowedHeaders(requested: requested))
        return decorate(response, for: request)
    }
}

/// Wraps a value that is only ever used on the loop thread, so a closure can
/// carry it across ``HTTPServer/execute(_:)`` back to that thread.
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
}
