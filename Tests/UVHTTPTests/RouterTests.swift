import Testing
@testable import UVHTTP

/// Route matching, without sockets: `Router.match` on path bytes.
struct RouterTests {
    static func makeRouter() -> Router {
        var router = Router()
        let ok: Handler = { _ in .text("ok") }
        router.get("/", ok)
        router.get("/library/sections", ok)
        router.get("/library/sections/:id", ok)
        router.add(.put, "/library/sections/:id", ok)
        router.get("/library/sections/:id/all", ok)
        router.post("/upload", ok)
        router.add(nil, "/any", ok)
        router.get("/trailing/", ok)
        router.add(.delete, "/items/:a/:b", ok)
        router.get("/Case", ok)
        return router
    }

    /// Returns the route `match` picks, written as `METHOD /pattern` (`*` for
    /// a route of every method), or `404`, or `405` and the `Allow` value.
    static func outcome(_ router: Router, _ method: HTTPMethod, _ path: String) -> String {
        Array(path.utf8).withUnsafeBytes { bytes in
            switch router.match(method: method, path: bytes) {
            case .miss(.notFound):
                return "404"
            case .miss(.methodNotAllowed(let allow)):
                return "405 \(allow)"
            case .found(let route, _):
                let segments = route.segments.map { segment -> String in
                    switch segment {
                    case .literal(let bytes): return String(decoding: bytes, as: UTF8.self)
                    case .parameter(let name): return ":" + name
                    }
                }
                return "\(route.method?.rawValue ?? "*") /" + segments.joined(separator: "/")
            }
        }
    }

    /// Returns the value captured for `name`, decoded as handlers get it.
    static func parameter(_ router: Router, _ path: String, _ name: String) -> String? {
        Array(path.utf8).withUnsafeBytes { bytes -> String? in
            guard case .found(let route, let captures) = router.match(method: .get, path: bytes) else { return nil }
            let parameters = PathParameters(names: route.parameterNames, path: bytes, ranges: captures)
            return parameters[name]
        }
    }

    @Test(arguments: [
        ("GET", "/", "GET /"),
        ("GET", "/library/sections", "GET /library/sections"),
        ("GET", "/library/sections/7", "GET /library/sections/:id"),
        ("PUT", "/library/sections/7", "PUT /library/sections/:id"),
        ("GET", "/library/sections/7/all", "GET /library/sections/:id/all"),
        ("POST", "/upload", "POST /upload"),
        ("DELETE", "/items/1/2", "DELETE /items/:a/:b"),
        ("GET", "/Case", "GET /Case"),
    ])
    func exactPathsMatch(method: String, path: String, expected: String) {
        #expect(Self.outcome(Self.makeRouter(), HTTPMethod(method), path) == expected)
    }

    @Test(arguments: [
        ("/library/sections/", "GET /library/sections"),
        ("/library/sections/7/", "GET /library/sections/:id"),
        ("/library/sections/7/all/", "GET /library/sections/:id/all"),
        ("/trailing", "GET /trailing"),
        ("/trailing/", "GET /trailing"),
    ])
    func trailingSlashEqualsNoTrailingSlash(path: String, expected: String) {
        #expect(Self.outcome(Self.makeRouter(), .get, path) == expected)
    }

    @Test(arguments: [
        "/nope",
        "/library",
        "/library/sections/7/all/extra",
        "/library/sections//all",
        "/library/sections/7//",
        "/case",
        "/uploads",
        "/upload/x",
        "/any/thing",
        "nope",
    ])
    func unknownPathIsNotFound(path: String) {
        #expect(Self.outcome(Self.makeRouter(), .get, path) == "404")
    }

    /// An absolute-form target without a path (`GET http://host HTTP/1.1`)
    /// leaves an empty path, which names the root.
    @Test func emptyPathIsRoot() {
        #expect(Self.outcome(Self.makeRouter(), .get, "") == "GET /")
    }

    @Test(arguments: [
        ("POST", "/", "405 GET, HEAD"),
        ("DELETE", "/library/sections/7", "405 GET, HEAD, PUT"),
        ("POST", "/library/sections", "405 GET, HEAD"),
        ("GET", "/upload", "405 POST"),
        ("HEAD", "/upload", "405 POST"),
        ("GET", "/items/1/2", "405 DELETE"),
    ])
    func otherMethodIsNotAllowed(method: String, path: String, expected: String) {
        #expect(Self.outcome(Self.makeRouter(), HTTPMethod(method), path) == expected)
    }

    @Test(arguments: [
        ("/", "GET /"),
        ("/library/sections/7", "GET /library/sections/:id"),
        ("/library/sections/7/all/", "GET /library/sections/:id/all"),
    ])
    func getRoutesServeHead(path: String, expected: String) {
        #expect(Self.outcome(Self.makeRouter(), .head, path) == expected)
    }

    @Test func headRouteBeatsGetRoute() {
        var router = Router()
        router.get("/h") { _ in .text("get") }
        router.add(.head, "/h") { _ in .text("head") }
        #expect(Self.outcome(router, .head, "/h") == "HEAD /h")
    }

    @Test(arguments: ["GET", "HEAD", "POST", "DELETE", "BREW"])
    func nilMethodMatchesEveryMethod(method: String) {
        #expect(Self.outcome(Self.makeRouter(), HTTPMethod(method), "/any") == "* /any")
    }

    @Test func routesMatchInOrderAdded() {
        var router = Router()
        router.get("/a/:x") { _ in .text("parameter") }
        router.get("/a/b") { _ in .text("literal") }
        #expect(Self.outcome(router, .get, "/a/b") == "GET /a/:x")
    }

    @Test(arguments: [
        ("/library/sections/7", "7"),
        ("/library/sections/7/", "7"),
        ("/library/sections/a%20b", "a b"),
        ("/library/sections/a+b", "a+b"),
        ("/library/sections/a%2Fb", "a/b"),
        ("/library/sections/%C3%A9t%C3%A9", "été"),
        ("/library/sections/%zz", "%zz"),
        ("/library/sections/50%", "50%"),
    ])
    func parameterValuesArePercentDecoded(path: String, expected: String) {
        #expect(Self.parameter(Self.makeRouter(), path, "id") == expected)
    }

    @Test func everyParameterIsCaptured() {
        var router = Router()
        router.get("/items/:a/:b") { _ in .text("ok") }
        #expect(Self.parameter(router, "/items/x/y", "a") == "x")
        #expect(Self.parameter(router, "/items/x/y", "b") == "y")
        #expect(Self.parameter(router, "/items/x/y", "c") == nil)
    }
}
