// A minimal UVHTTP server: `swift run uvhttp-hello 8080`, then
// `curl http://127.0.0.1:8080/hello/world`.
import UVHTTP

var router = Router()
router.get("/hello/:name") { request in
    .text("Hello, \(request.parameters["name"] ?? "")!\n")
}
router.get("/") { _ in
    .text("Try /hello/<name>\n")
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 8080 : 8080
let server = try HTTPServer(router: router)
let bound = try server.listen(host: "127.0.0.1", port: port)
print("listening on http://127.0.0.1:\(bound)/")
try server.run()
