import Foundation
import Glibc
import Synchronization

/// Handler calls per request path, recorded on the loop thread and read by
/// the test.
final class PathCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func record(_ path: String) {
        counts.withLock { $0[path, default: 0] += 1 }
    }

    func count(_ path: String) -> Int {
        counts.withLock { $0[path] ?? 0 }
    }
}

extension HTTPClient {
    /// Sends `bytes` like ``send(_:bytewise:)`` but stops at the first
    /// failed write instead of throwing, because a server that rejected the
    /// request may close before the rest is sent. Returns the bytes sent.
    func sendUntilError(_ bytes: [UInt8], bytewise: Bool) -> Int {
        let step = bytewise ? 1 : max(bytes.count, 1)
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + step, bytes.count)
            let sent = bytes[offset..<end].withUnsafeBytes { buffer in
                Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                return offset
            }
            offset += sent
        }
        return offset
    }

    /// Waits up to `wait` for input, EOF or a reset, without reading it.
    func hasInput(wait: Duration) -> Bool {
        if !buffered.isEmpty || ending != nil { return true }
        return RawSocket.poll(descriptor, events: Int16(POLLIN), wait: wait)
    }
}

/// A TCP client socket to a test server on 127.0.0.1, for the cases
/// ``HTTPClient`` does not cover: socket options set before `connect`,
/// sending from one thread while another reads, and ending with a reset.
///
/// Only ``sendAll(_:)`` may run on a second thread. Every other method
/// belongs to one thread.
final class RawSocket: @unchecked Sendable {
    let descriptor: Int32
    private var isClosed = false
    /// Bytes received but not yet returned as a response.
    private(set) var buffered: [UInt8] = []
    /// Set once the server closed or reset the connection.
    private(set) var ending: ConnectionEnding?

    /// Connects to `port`. `receiveBuffer`, when given, caps the socket's
    /// receive buffer (`SO_RCVBUF`) before the handshake fixes the window.
    init(port: Int, receiveBuffer: Int? = nil) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ClientError("socket: errno \(errno)") }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw ClientError("connect to 127.0.0.1:\(port): errno \(code)")
        }
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close()
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(descriptor)
    }

    /// Closes the sending side; the server reads EOF.
    func shutdownWrite() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    /// Closes the socket with `SO_LINGER` set to zero, so the kernel sends a
    /// reset (RST) instead of FIN and drops any unread input.
    func resetAndClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// Sends every byte, blocking while the peer does not read. Returns
    /// false when a write failed.
    @discardableResult
    func sendAll(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { buffer in
                Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += sent
        }
        return true
    }

    /// Reads one response, waiting at most `timeout` in all.
    func readResponse(timeout: Duration = .seconds(10)) throws -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let (response, consumed) = try ResponseParser.parse(buffered, head: false) {
                buffered.removeFirst(consumed)
                return response
            }
            if let ending {
                throw ClientError("connection ended (\(ending)) inside a response after \(buffered.count) bytes")
            }
            guard receive(until: deadline) else {
                throw ClientError("no complete response within \(timeout); have \(buffered.count) bytes")
            }
        }
    }

    /// Reads up to `count` bytes, waiting at most `wait`, and returns how
    /// many arrived. The bytes are discarded.
    func discard(upTo count: Int, wait: Duration) -> Int {
        let deadline = ContinuousClock.now + wait
        while buffered.count < count, ending == nil, receive(until: deadline, limit: count - buffered.count) {}
        let discarded = min(buffered.count, count)
        buffered.removeFirst(discarded)
        return discarded
    }

    /// Reads and discards input until the server ends the connection or
    /// `wait` passes. Returns the bytes read and how the connection ended.
    func drainUntilClosed(wait: Duration) -> (bytes: Int, ending: ConnectionEnding) {
        let deadline = ContinuousClock.now + wait
        var total = buffered.count
        buffered.removeAll()
        while ending == nil {
            guard receive(until: deadline) else { return (total, .timedOut) }
            total += buffered.count
            buffered.removeAll(keepingCapacity: true)
        }
        return (total, ending!)
    }

    private func receive(until deadline: ContinuousClock.Instant, limit: Int = 64 * 1024) -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero, RawSocket.poll(descriptor, events: Int16(POLLIN), wait: remaining) else {
            return false
        }
        var chunk = [UInt8](repeating: 0, count: min(limit, 64 * 1024))
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffered += chunk[..<count]
        } else if count == 0 {
            ending = .eof
        } else if errno != EINTR && errno != EAGAIN {
            ending = .reset
        }
        return true
    }

    /// Polls one descriptor for `events` and returns whether it became ready
    /// within `wait`.
    static func poll(_ descriptor: Int32, events: Int16, wait: Duration) -> Bool {
        let (seconds, attoseconds) = wait.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        var poller = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            let ready = Glibc.poll(&poller, 1, max(milliseconds, 0))
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }
}

/// Measurements of the test process, which also runs the servers under
/// test.
enum ProcessResources {
    /// Open file descriptors, from `/proc/self/fd`. The count includes the
    /// descriptor used to list the directory, so compare counts with each
    /// other, not with zero.
    static func openDescriptorCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    /// Resident set size in bytes, from `/proc/self/statm`, measured after
    /// `malloc_trim(0)` returned the free memory of every malloc arena to
    /// the kernel. Without the trim, memory freed earlier and reused later
    /// would hide a leak, and memory kept for reuse would look like one.
    static func residentBytes() -> Int {
        releaseFreeHeap()
        return statmResidentBytes()
    }

    private static func releaseFreeHeap() {
        typealias Trim = @convention(c) (Int) -> Int32
        // The Glibc module does not export malloc.h, so the symbol is looked
        // up at run time; a null handle is RTLD_DEFAULT on glibc.
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }

    /// Bytes malloc has handed out and not yet taken back, over every
    /// arena, from `malloc_info`: memory the arenas hold minus their free
    /// chunks, plus chunks mapped on their own. Unlike the resident set
    /// size, this does not depend on which free pages the arenas keep.
    static func heapBytesInUse() -> Int {
        typealias Info = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
        guard let symbol = dlsym(nil, "malloc_info") else { return -1 }
        var buffer: UnsafeMutablePointer<CChar>?
        var length = 0
        guard let stream = open_memstream(&buffer, &length) else { return -1 }
        _ = unsafeBitCast(symbol, to: Info.self)(0, stream)
        fclose(stream)
        guard let buffer else { return -1 }
        let text = String(cString: buffer)
        free(buffer)
        // The totals over every arena follow the last per-arena section.
        guard let totalsStart = text.range(of: "</heap>", options: .backwards)?.upperBound else { return -1 }
        let totals = text[totalsStart...]
        func sizeAttribute(of element: String) -> Int? {
            guard let start = totals.range(of: element)?.upperBound,
                let sizeStart = totals[start...].range(of: "size=\"")?.upperBound,
                let sizeEnd = totals[sizeStart...].firstIndex(of: "\"")
            else { return nil }
            return Int(totals[sizeStart..<sizeEnd])
        }
        guard let fast = sizeAttribute(of: "<total type=\"fast\""),
            let rest = sizeAttribute(of: "<total type=\"rest\""),
            let mapped = sizeAttribute(of: "<total type=\"mmap\""),
            let current = sizeAttribute(of: "<system type=\"current\"")
        else { return -1 }
        return current - fast - rest + mapped
    }

    private static func statmResidentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return -1 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return -1 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Open descriptors of this process that are TCP sockets bound to local
    /// port `port`: a server's listener and the connections it accepted.
    /// Client sockets connected to that port have another local port and
    /// are not counted.
    static func socketCount(localPort port: Int) -> Int {
        var inodes = Set<Substring>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, let colon = fields[1].lastIndex(of: ":") else { continue }
                let localPort = Int(fields[1][fields[1].index(after: colon)...], radix: 16)
                if localPort == port && fields[9] != "0" {
                    inodes.insert(fields[9])
                }
            }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter { entry in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
                target.hasPrefix("socket:[")
            else { return false }
            return inodes.contains(target.dropFirst("socket:[".count).dropLast())
        }.count
    }

    /// Raises the soft limit on open files to at least `count`, within the
    /// hard limit, and returns the soft limit in force.
    @discardableResult
    static func raiseOpenFileLimit(to count: Int) -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let target = min(rlim_t(count), limit.rlim_max)
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}

/// Median and maximum of a set of durations, in milliseconds.
struct LatencySummary: CustomStringConvertible {
    let median: Double
    let max: Double

    init(_ durations: [Duration]) {
        let milliseconds = durations.map { duration -> Double in
            let (seconds, attoseconds) = duration.components
            return Double(seconds) * 1000 + Double(attoseconds) / 1e15
        }.sorted()
        median = milliseconds.isEmpty ? 0 : milliseconds[milliseconds.count / 2]
        max = milliseconds.last ?? 0
    }

    var description: String {
        String(format: "median %.3f ms, max %.3f ms", median, max)
    }
}
