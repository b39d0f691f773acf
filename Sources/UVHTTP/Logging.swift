/// Severity of a library event, from most to least severe.
public enum LogLevel: Int, Comparable, Sendable {
    case error
    case warning
    case info
    case debug

    /// Orders levels from most to least severe: `.error < .debug`.
    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

/// One event the library reports: a fixed message plus `key=value` metadata.
public struct LogRecord: Sendable {
    /// Severity of the event.
    public var level: LogLevel
    /// Fixed text naming the event, such as `listening`.
    public var message: String
    /// Values that belong to the event, in order.
    public var metadata: [(key: String, value: String)]

    /// Creates a record.
    public init(level: LogLevel, message: String, metadata: [(key: String, value: String)] = []) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// Receiver of library events. UVHTTP never prints: it passes every event to
/// this closure, which the caller may format and write anywhere. It runs on
/// the loop thread, so it should not block.
public typealias LogHandler = @Sendable (LogRecord) -> Void
