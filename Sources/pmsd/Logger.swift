import Foundation
import UVHTTP

/// Writes one line per event to standard error:
/// `2026-12-04T15:24:40.123Z info listening host=127.0.0.1 port=32400`.
/// Under systemd's journal (`JOURNAL_STREAM` set) the time is left out,
/// because the journal stamps each line itself.
final class Logger: @unchecked Sendable {
    // Unchecked because `threshold` and `withTime` are set once before the
    // server starts; the write itself is one write(2) call per line.
    let threshold: LogLevel
    let withTime: Bool

    init(threshold: LogLevel, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.threshold = threshold
        self.withTime = environment["JOURNAL_STREAM"] == nil
    }

    func log(_ level: LogLevel, _ message: String, _ metadata: [(key: String, value: String)] = []) {
        guard level <= threshold else { return }
        var line = ""
        if withTime {
            line += Logger.timestamp() + " "
        }
        line += Logger.name(level) + " " + message
        for (key, value) in metadata {
            line += " " + key + "=" + Logger.quoted(value)
        }
        line += "\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            _ = write(STDERR_FILENO, buffer.baseAddress, buffer.count)
        }
    }

    /// The handler UVHTTP calls with its own events.
    var handler: LogHandler {
        { [self] record in log(record.level, record.message, record.metadata) }
    }

    static func name(_ level: LogLevel) -> String {
        switch level {
        case .error: return "error"
        case .warning: return "warning"
        case .info: return "info"
        case .debug: return "debug"
        }
    }

    static func level(named name: String) -> LogLevel? {
        [LogLevel.error, .warning, .info, .debug].first { Logger.name($0) == name }
    }

    /// Quotes a value that contains a space, a quote or `=`, so each line
    /// splits unambiguously into fields.
    static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline })
        else { return value }
        return value.debugDescription
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), now.tv_nsec / 1_000_000)
    }
}
