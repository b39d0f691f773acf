import Foundation

/// Sends state changes to systemd over the datagram socket named by
/// `NOTIFY_SOCKET`, as sd_notify(3) describes, without linking libsystemd.
/// Does nothing when the variable is unset.
final class SystemdNotifier: Sendable {
    private let socketPath: String?
    /// Microseconds between watchdog pings systemd expects, from
    /// `WATCHDOG_USEC`, when the watchdog is meant for this process.
    let watchdogMicroseconds: Int?

    init(environment: [String: String]) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        let forThisProcess = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forThisProcess, let text = environment["WATCHDOG_USEC"], let value = Int(text), value > 0 {
            watchdogMicroseconds = value
        } else {
            watchdogMicroseconds = nil
        }
    }

    var isEnabled: Bool { socketPath != nil }

    /// Sends `message`, such as `READY=1`. Returns false when it could not
    /// be sent.
    @discardableResult
    func notify(_ message: String) -> Bool {
        guard let socketPath else { return true }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        // A leading '@' names an abstract socket, whose name starts with NUL.
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count)
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
            }
        }
        return sent == bytes.count
    }

    /// The `MONOTONIC_USEC` value systemd wants with `RELOADING=1`.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
