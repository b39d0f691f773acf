internal import CUVHTTP

/// Sends the response to a request whose handler was added with
/// ``Router/addDeferred(_:_:_:)``.
///
/// Call ``respond(_:)`` once, on the loop thread: from the handler itself,
/// or later from a closure passed to ``HTTPServer/execute(_:)``. When the
/// client has gone in the meantime, the response is dropped.
public final class Responder {
    private unowned let core: ServerCore
    private let connectionID: UInt64
    private let context: ResponseEncoder.Context
    private var answered = false

    init(core: ServerCore, request: Request, configuration: HTTPServer.Configuration, access: PendingAccess?) {
        self.core = core
        self.connectionID = request.connectionID
        self.context = ResponseEncoder.Context(
            isHead: request.method == .head,
            minorVersion: request.version.minor,
            keepAlive: request.keepAlive,
            keepAliveTimeoutSeconds: configuration.keepAliveTimeout,
            access: access
        )
    }

    /// Sends `response`. A second call is ignored and logged.
    public func respond(_ response: Response) {
        guard !answered else {
            core.log(.warning, "response already sent", ["connection": "\(connectionID)"])
            return
        }
        answered = true
        guard let conn = core.deferred[connectionID] else { return }
        core.send(response, context: context, on: conn)
        if let index = core.dispatching.firstIndex(where: { $0.id == connectionID }) {
            core.dispatching[index].answered = true
            return
        }
        core.deferred[connectionID] = nil
        uvh_conn_resume(conn)
    }
}
