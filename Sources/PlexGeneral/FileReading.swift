#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of reading a whole file.
enum FileReadResult: Equatable {
    /// The file's bytes.
    case contents([UInt8])
    /// No file exists at the path.
    case missing
    /// The file is larger than the size limit.
    case tooLarge
    /// open(2) or read(2) failed with this errno value.
    case failed(errno: Int32)
}

/// Reads a whole file with POSIX calls, so that failures keep their errno
/// (for example EISDIR or EACCES) for the error message.
func readFile(atPath path: String, maximumSize: Int) -> FileReadResult {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    if descriptor < 0 {
        let openError = errno
        return openError == ENOENT ? .missing : .failed(errno: openError)
    }
    defer { close(descriptor) }

    var content: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let result = chunk.withUnsafeMutableBytes { buffer in
            read(descriptor, buffer.baseAddress, buffer.count)
        }
        if result < 0 {
            if errno == EINTR {
                continue
            }
            return .failed(errno: errno)
        }
        if result == 0 {
            return .contents(content)
        }
        content.append(contentsOf: chunk[..<result])
        if content.count > maximumSize {
            return .tooLarge
        }
    }
}

/// Returns the strerror(3) text for an errno value.
func errnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}
