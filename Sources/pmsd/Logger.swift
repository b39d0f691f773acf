import Foundation
import Synchronization
import UVHTTP

/// Writes one line per event to standard error:
/// `2026-12-04T15:24:40.123Z info listening host=127.0.0.1 port=32400`.
/// Under systemd's journal (`JOURNAL_STREAM` set) the time is left out,
/// because the journal stamps each line itself.
///
/// An event repeated more than ``burstLimit`` times within a second is
/// counted instead of written, and the count is written with the next
/// occurrence after that second.
final class Logger: Sendable {
    let withTime: Bool
    private let state: Mutex<State>

    /// Occurrences of one message written per second before the rest are
    /// only counted.
    static let burstLimit = 5

    private struct State {
        var threshold: LogLevel
        var bursts: [String: Burst] = [:]
    }

    private struct Burst {
        var second: Int
        var written: Int
        var suppressed: Int
    }

    init(threshold: LogLevel, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.withTime = environment["JOURNAL_STREAM"] == nil
        self.state = Mutex(State(threshold: threshold))
    }

    /// The least severe level written.
    var threshold: LogLevel {
        get { state.withLock { $0.threshold } }
        set { state.withLock { $0.threshold = newValue } }
    }

    func log(_ level: LogLevel, _ message: String, _ metadata: [(key: String, value: String)] = []) {
        let now = Int(Date().timeIntervalSince1970)
        let suppressed: Int? = state.withLock { state in
            guard level <= state.threshold else { return nil }
            var burst = state.bursts[message] ?? Burst(second: now, written: 0, suppressed: 0)
            var repeated = 0
            if burst.second != now {
                repeated = burst.suppressed
                burst = Burst(second: now, written: 0, suppressed: 0)
            }
            guard burst.written < Logger.burstLimit else {
                burst.suppressed += 1
                state.bursts[message] = burst
                return nil
            }
            burst.written += 1
            state.bursts[message] = burst
            if state.bursts.count > 1000 { state.bursts.removeAll() }
            return repeated
        }
        guard let suppressed else { return }
        var fields = metadata
        if suppressed > 0 {
            fields.append(("suppressed_repeats", "\(suppressed)"))
        }
        write(line(level, message, fields))
    }

    func line(_ level: LogLevel, _ message: String, _ metadata: [(key: String, value: String)]) -> String {
        var line = withTime ? Logger.timestamp() + " " : ""
        line += Logger.name(level) + " " + message
        for (key, value) in metadata {
            line += " " + key + "=" + Logger.quoted(value)
        }
        return line + "\n"
    }

    private func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            _ = Glibc.write(STDERR_FILENO, buffer.baseAddress, buffer.count)
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

    /// Quotes a value that contains a space, a quote, `=` or a line break,
    /// so each line splits unambiguously into fields.
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
