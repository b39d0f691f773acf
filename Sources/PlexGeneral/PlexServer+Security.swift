import Foundation
import UVHTTP

extension PlexServer {
    /// `/security/token?type=delegation&scope=all`, any method: mints a
    /// transient token with the caller's access level.
    func transientToken(_ request: Request) -> Response {
        guard let caller = caller(of: request), caller.canMintToken else {
            return error(.forbidden, for: request)
        }
        let query = request.query
        guard query["type"] == "delegation", query["scope"] == "all" else {
            return error(.badRequest, for: request)
        }
        guard let token = tokens.mint(level: caller.level, now: TransientTokenStore.currentTime()) else {
            log(LogRecord(level: .warning, message: "transient token limit reached",
                          metadata: [("limit", "\(tokens.maximumCount)")]))
            return error(.forbidden, for: request)
        }
        let format = PreparedResponses.format(of: request)
        var body: [UInt8] = []
        ResponseBody.appendTransientToken(to: &body, format: format, token: token)
        return decorate(PreparedResponses.dynamic(format, body: body), for: request)
    }

    /// `GET /security/resources?source=...&refresh=0|1`: the device behind a
    /// source, with the connections to reach it. Owner only.
    func resources(_ request: Request, responder: Responder) {
        switch resourcesQuery(request) {
        case .failure(let failure):
            responder.respond(failure.response)
        case .success(let query):
            guard query.refresh, let path = identity.configurationPath else {
                responder.respond(resources(query))
                return
            }
            reloadCatalogue(from: path, query: query, responder: responder)
        }
    }

    /// What `/security/resources` needs from a request once it is checked:
    /// the request's own parts copied, because the request's views end when
    /// the handler returns.
    struct ResourcesQuery {
        let source: SourceReference
        let refresh: Bool
        let caller: Caller
        /// The caller's own transient token, returned as the device's
        /// `accessToken` rather than minting one from it: minting from a
        /// transient token would let it renew itself forever.
        let transientToken: String?
        let format: BodyFormat
        let origin: String?
    }

    private func resourcesQuery(_ request: Request) -> Result<ResourcesQuery, ResponseFailure> {
        guard let caller = caller(of: request), caller.level == .owner else {
            return .failure(ResponseFailure(error(.forbidden, for: request)))
        }
        let query = request.query
        guard let sourceText = query["source"], let source = SourceReference(parsing: sourceText) else {
            return .failure(ResponseFailure(error(.badRequest, for: request)))
        }
        let refresh: Bool
        switch query["refresh"] {
        case nil, "0": refresh = false
        case "1": refresh = true
        default: return .failure(ResponseFailure(error(.badRequest, for: request)))
        }
        return .success(ResourcesQuery(
            source: source, refresh: refresh, caller: caller,
            transientToken: caller.credential == .transientToken ? authenticator.presentedToken(of: request) : nil,
            format: PreparedResponses.format(of: request),
            origin: request.headers["Origin"]))
    }

    /// Builds the answer for a checked query from the current catalogue.
    private func resources(_ query: ResourcesQuery) -> Response {
        var body: [UInt8] = []
        if query.source.kind == .server && query.source.identifier == identity.machineIdentifier {
            var token = query.transientToken
            if query.caller.canMintToken {
                token = tokens.mint(level: query.caller.level, now: TransientTokenStore.currentTime())
                guard token != nil else { return withOrigin(prepared.error(.forbidden), query.origin) }
            }
            ResponseBody.appendResources(
                to: &body, format: query.format, name: configuration.friendlyName,
                clientIdentifier: identity.machineIdentifier, accessToken: token,
                connections: advertisedConnections)
        } else if let entry = catalogue.first(where: { $0.source == query.source }) {
            ResponseBody.appendResources(
                to: &body, format: query.format, name: entry.name, clientIdentifier: entry.clientIdentifier,
                accessToken: entry.accessToken, connections: entry.connections)
        } else {
            return withOrigin(prepared.error(.notFound), query.origin)
        }
        return withOrigin(PreparedResponses.dynamic(query.format, body: body), query.origin)
    }

    private func withOrigin(_ prepared: PreparedResponse, _ origin: String?) -> Response {
        withOrigin(Response(prepared), origin)
    }

    private func withOrigin(_ response: Response, _ origin: String?) -> Response {
        guard let origin else { return response }
        return CORS.allowingOrigin(origin, response)
    }

    /// The connections advertised for this server: the configured ones, or
    /// those derived from the listening address.
    var advertisedConnections: [Connection] {
        configuration.advertisedConnections.isEmpty ? listeningConnections : configuration.advertisedConnections
    }

    /// Re-reads `sources` from the configuration file on another thread, so
    /// the loop keeps serving, then answers on the loop with the new
    /// catalogue. A file that cannot be read or parsed keeps the old one.
    private func reloadCatalogue(from path: String, query: ResourcesQuery, responder: Responder) {
        let pending = LoopBound(value: (self, query, responder))
        let log = self.log
        DispatchQueue.global().async { [executeOnLoop] in
            let result: Result<[SourceEntry], ConfigurationError>
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                result = .success(try ServerConfiguration.parseSources(json: data))
            } catch let error as ConfigurationError {
                result = .failure(error)
            } catch {
                result = .failure(ConfigurationError(keyPath: nil, message: "\(path): \(error.localizedDescription)"))
            }
            let loaded = LoopBound(value: result)
            executeOnLoop {
                let (server, query, responder) = pending.value
                switch loaded.value {
                case .success(let sources):
                    server.catalogue = sources
                    log(LogRecord(level: .info, message: "source catalogue reloaded",
                                  metadata: [("sources", "\(sources.count)")]))
                case .failure(let error):
                    log(LogRecord(level: .error, message: "source catalogue reload failed; keeping the old one",
                                  metadata: [("error", "\(error)")]))
                }
                responder.respond(server.resources(query))
            }
        }
    }
}

/// A finished error response carried through a `Result`.
struct ResponseFailure: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}
