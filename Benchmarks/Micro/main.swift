// Micro-benchmarks of the Swift side that need no sockets: response body
// encoding, Accept negotiation and the transient token store. Each case runs
// a fixed number of iterations and prints nanoseconds per operation. Wall
// time is noisy on a shared machine; for instruction counts, run a copy
// under callgrind (valgrind 3.19 cannot read this toolchain's debug
// information, so strip it first):
//
//   swift run -c release pmsd-microbench [ITERATIONS]
//   strip --strip-debug -o /tmp/micro .build/release/pmsd-microbench
//   valgrind --tool=callgrind /tmp/micro 20000
import Foundation
import PlexGeneral

/// Keeps results alive so the optimizer cannot drop the measured work.
nonisolated(unsafe) var sink = 0

func measure(_ name: String, iterations: Int, _ body: () -> Void) {
    for _ in 0..<min(iterations / 10, 10_000) { body() }
    var start = timespec()
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    for _ in 0..<iterations { body() }
    clock_gettime(CLOCK_MONOTONIC, &end)
    let nanoseconds = Double(end.tv_sec - start.tv_sec) * 1e9 + Double(end.tv_nsec - start.tv_nsec)
    let padded = name.padding(toLength: 40, withPad: " ", startingAt: 0)
    print("\(padded) \(String(format: "%9.1f", nanoseconds / Double(iterations))) ns/op")
}

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
let machineIdentifier = String(repeating: "0123456789", count: 4)
let info = ServerInfo(
    friendlyName: "Living room <&\"'>", machineIdentifier: machineIdentifier, version: "1.0.0.0-000000000",
    platformVersion: "6.1.0", updatedAt: 1_796_399_078, hasSharedUsers: true, directories: ["identity", "security"])
var buffer: [UInt8] = []
buffer.reserveCapacity(4096)

measure("identity XML encoding", iterations: iterations) {
    buffer.removeAll(keepingCapacity: true)
    ResponseBody.appendIdentity(to: &buffer, format: .xml, machineIdentifier: machineIdentifier,
                                version: "1.0.0.0-000000000")
    sink &+= buffer.count
}
measure("identity JSON encoding", iterations: iterations) {
    buffer.removeAll(keepingCapacity: true)
    ResponseBody.appendIdentity(to: &buffer, format: .json, machineIdentifier: machineIdentifier,
                                version: "1.0.0.0-000000000")
    sink &+= buffer.count
}
measure("server info XML encoding", iterations: iterations / 10) {
    buffer.removeAll(keepingCapacity: true)
    ResponseBody.appendServerInfo(to: &buffer, format: .xml, info: info)
    sink &+= buffer.count
}
measure("server info JSON encoding", iterations: iterations / 10) {
    buffer.removeAll(keepingCapacity: true)
    ResponseBody.appendServerInfo(to: &buffer, format: .json, info: info)
    sink &+= buffer.count
}
let accept = Array("application/json, text/plain, */*".utf8)
measure("Accept negotiation", iterations: iterations) {
    sink &+= BodyFormat(accept: accept) == .json ? 1 : 0
}

let store = TransientTokenStore(lifetimeSeconds: 3600, maximumCount: 10_000_000)
var tokens: [String] = []
tokens.reserveCapacity(iterations)
measure("token mint", iterations: iterations) {
    if let token = store.mint(level: .owner, now: 1) {
        tokens.append(token)
    }
}
var index = 0
measure("token lookup (hit)", iterations: iterations) {
    if store.lookup(tokens[index % tokens.count], now: 2) != nil { sink &+= 1 }
    index &+= 1
}
measure("token lookup (miss)", iterations: iterations) {
    if store.lookup("transient-00000000-0000-4000-8000-000000000000", now: 2) != nil { sink &+= 1 }
}
print("tokens live: \(store.count), checksum \(sink)")
