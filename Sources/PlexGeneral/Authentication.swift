import UVHTTP

/// Who sent a request, as far as the server can tell.
public struct Caller: Sendable, Equatable {
    /// How the caller was recognised.
    public enum Credential: Sendable, Equatable {
        /// The admin token or a shared user's token from the configuration.
        case configuredToken
        /// A transient token minted by this server since it started.
        case transientToken
        /// No valid token, but the request came from an allowed network.
        case allowedNetwork
    }

    /// The rights the caller has.
    public let level: AccessLevel
    /// How the caller was recognised.
    public let credential: Credential

    /// Whether the caller may mint a transient token: only with a configured
    /// token, because a transient token cannot mint another and an allowed
    /// network carries no token to derive one from.
    public var canMintToken: Bool { credential == .configuredToken }
}

/// The configured tokens and networks that admit callers. Rebuilt when the
/// configuration changes; lookups run on the loop thread.
struct Authenticator {
    private let adminToken: [UInt8]?
    private let sharedTokens: [(token: [UInt8], level: AccessLevel)]
    private let allowedNetworks: NetworkList

    init(adminToken: String?, sharedTokens: [SharedToken], allowedNetworks: NetworkList) {
        self.adminToken = adminToken.map { Array($0.utf8) }
        self.sharedTokens = sharedTokens.map { (Array($0.token.utf8), AccessLevel.shared(name: $0.name)) }
        self.allowedNetworks = allowedNetworks
    }

    /// Identifies the caller from the `X-Plex-Token` header or query
    /// parameter, then from the peer address. An empty token counts as
    /// absent, and an unknown one is ignored when the peer is on an allowed
    /// network.
    func caller(of request: Request, tokens: TransientTokenStore, now: Int) -> Caller? {
        if let caller = withToken(of: request, { identify(token: $0, tokens: tokens, now: now) }) {
            return caller
        }
        if !allowedNetworks.isEmpty, let peer = request.peerAddress,
            allowedNetworks.contains(address: peer.addressBytes)
        {
            return Caller(level: .owner, credential: .allowedNetwork)
        }
        return nil
    }

    private func identify(token: UnsafeRawBufferPointer, tokens: TransientTokenStore, now: Int) -> Caller? {
        if let adminToken, Authenticator.constantTimeEquals(token, adminToken) {
            return Caller(level: .owner, credential: .configuredToken)
        }
        for shared in sharedTokens where Authenticator.constantTimeEquals(token, shared.token) {
            return Caller(level: shared.level, credential: .configuredToken)
        }
        if let level = tokens.lookup(token, now: now) {
            return Caller(level: level, credential: .transientToken)
        }
        return nil
    }

    /// The token the request presents, as text, or nil when it has none.
    func presentedToken(of request: Request) -> String? {
        var token: String?
        _ = withToken(of: request) { bytes in
            token = String(decoding: bytes, as: UTF8.self)
            return nil
        }
        return token
    }

    /// Calls `body` with the token's bytes: the header when present and not
    /// empty, else the query parameter. Returns nil when neither is given.
    private func withToken(of request: Request, _ body: (UnsafeRawBufferPointer) -> Caller?) -> Caller? {
        if let header = request.headers.firstValueBytes("X-Plex-Token"), header.count > 0 {
            return body(header)
        }
        guard let query = request.query["X-Plex-Token"], !query.isEmpty else { return nil }
        var token = query
        return token.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    /// Compares a presented token with a configured one in time that does not
    /// depend on where they differ, so response timing does not reveal a
    /// token's prefix.
    static func constantTimeEquals(_ presented: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        guard presented.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<expected.count {
            difference |= presented[index] ^ expected[index]
        }
        return difference == 0
    }
}
