import Foundation
import UVHTTP

/// The access log: one line per answered request, buffered and written when
/// the buffer fills, once a second, and at stop. Token values in the target
/// are replaced by `<redacted>`. Runs on the loop thread only.
final class AccessLog {
    private let path: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private let logger: Logger

    /// Bytes buffered before a write.
    static let flushThreshold = 32 * 1024

    /// Opens `path` for appending (created with mode 0640), or standard error
    /// for `-`.
    init(path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        self.descriptor = try AccessLog.open(path)
        buffer.reserveCapacity(AccessLog.flushThreshold * 2)
    }

    deinit {
        flush()
        if path != "-" { close(descriptor) }
    }

    private static func open(_ path: String) throws -> Int32 {
        guard path != "-" else { return STDERR_FILENO }
        let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw AccessLogError(path: path, reason: String(cString: strerror(errno)))
        }
        return descriptor
    }

    /// Reopens the file, so a log rotated away is replaced by a new one.
    func reopen() {
        guard path != "-" else { return }
        flush()
        do {
            let replacement = try AccessLog.open(path)
            close(descriptor)
            descriptor = replacement
        } catch {
            logger.log(.error, "access log reopen failed; writing to the old file", [("error", "\(error)")])
        }
    }

    func record(_ entry: AccessLogEntry) {
        var line = Logger.timestamp()
        line += " method=" + entry.method.rawValue
        line += " path=" + Logger.quoted(AccessLog.redacted(entry.target))
        line += " status=\(entry.status) bytes=\(entry.bodyBytes) us=\(entry.microseconds)"
        line += " peer=" + (entry.peer?.description ?? "-") + "\n"
        buffer.append(contentsOf: line.utf8)
        if buffer.count >= AccessLog.flushThreshold {
            flush()
        }
    }

    func flush() {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { bytes in
                Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                logger.log(.error, "access log write failed", [("path", path), ("error", String(cString: strerror(errno)))])
                break
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Replaces the value of every query parameter whose name contains
    /// `token` (any case, after percent-decoding), such as `X-Plex-Token`.
    static func redacted(_ target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let query = target[target.index(after: mark)...]
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            guard let equals = pair.firstIndex(of: "=") else { return String(pair) }
            let name = pair[..<equals]
            return decodeQueryComponent(name).lowercased().contains("token")
                ? "\(name)=<redacted>" : String(pair)
        }
        return String(target[..<mark]) + "?" + pairs.joined(separator: "&")
    }
}

struct AccessLogError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String {
        "cannot open access log \(path): \(reason). Check the path and its permissions, or use - for standard error."
    }
}
