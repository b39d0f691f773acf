import UVHTTP

/// Builds the routes most socket tests share. `calls`, when given, counts
/// every handler call.
func standardRouter(calls: Counter? = nil) -> Router {
    var router = Router()
    router.get("/hello") { _ in
        calls?.increment()
        return .text("Hello\n")
    }
    router.get("/n/:id") { request in
        calls?.increment()
        return .text(request.parameters["id"] ?? "?")
    }
    router.post("/echo") { request in
        calls?.increment()
        return Response(headers: ["Content-Type": "application/octet-stream"], body: request.bodyBytes)
    }
    router.get("/empty") { _ in
        calls?.increment()
        return Response()
    }
    return router
}
