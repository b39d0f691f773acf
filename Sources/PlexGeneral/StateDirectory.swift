#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory that keeps the server's identity across restarts: the machine
/// identifier and, when the configuration sets none, the admin token.
///
/// Files are created once and never replaced. A file with invalid content is an
/// error rather than something to regenerate, because a new machine identifier makes
/// clients see a different server and a new admin token locks out the owner.
public struct StateDirectory: Sendable {
    /// The file that stores the machine identifier.
    public static let machineIdentifierFileName = "machine-identifier"
    /// The file that stores the generated admin token.
    public static let adminTokenFileName = "admin-token"

    /// The directory path as given.
    public let path: String

    /// Opens a state directory, creating it with mode 0700 when it is missing.
    /// The parent directory must exist.
    public init(path: String) throws(StateDirectoryError) {
        guard !path.isEmpty else {
            throw StateDirectoryError(path: path, message: "empty path. Give a directory path.")
        }
        self.path = path

        if mkdir(path, 0o700) == 0 {
            // mkdir applies the umask, which could remove the owner's bits.
            guard chmod(path, 0o700) == 0 else {
                throw StateDirectoryError(
                    path: path, message: "cannot set mode 0700: \(errnoDescription(errno)). Check the directory's owner.")
            }
            return
        }
        let mkdirError = errno
        guard mkdirError == EEXIST else {
            throw StateDirectoryError(
                path: path,
                message: "cannot create directory: \(errnoDescription(mkdirError)). Create it, or choose another stateDirectory.")
        }
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw StateDirectoryError(
                path: path, message: "exists but is not a directory. Remove it, or choose another stateDirectory.")
        }
    }

    /// Reads the machine identifier, or generates and saves one when the file is missing.
    ///
    /// The identifier is 40 lowercase hexadecimal characters, made from 20 bytes of the
    /// OS CSPRNG. A file that contains anything else, apart from one trailing newline, is an error.
    public func loadOrCreateMachineIdentifier() throws(StateDirectoryError) -> String {
        let filePath = self.filePath(Self.machineIdentifierFileName)
        if let content = try readSmallFile(filePath) {
            let identifier = content.last == UInt8(ascii: "\n") ? Array(content.dropLast()) : content
            guard isMachineIdentifier(identifier) else {
                throw StateDirectoryError(
                    path: filePath,
                    message: "invalid machine identifier, expected 40 lowercase hexadecimal characters. Restore the file from a backup, or delete it to generate a new identifier, which clients will treat as a new server."
                )
            }
            return String(decoding: identifier, as: UTF8.self)
        }

        var identifier: [UInt8] = []
        for byte in randomBytes(count: 20) {
            identifier.append(hexDigit(byte >> 4))
            identifier.append(hexDigit(byte & 0x0F))
        }
        try writeAtomically(identifier + [UInt8(ascii: "\n")], to: filePath, mode: 0o644)
        return String(decoding: identifier, as: UTF8.self)
    }

    /// Reads the admin token, or generates and saves one with mode 0600 when the file is missing.
    ///
    /// A generated token is 32 base64url characters (192 bits from the OS CSPRNG). A file
    /// must contain printable ASCII without spaces, apart from one trailing newline.
    public func loadOrCreateAdminToken() throws(StateDirectoryError) -> String {
        let filePath = self.filePath(Self.adminTokenFileName)
        if let content = try readSmallFile(filePath) {
            let token = content.last == UInt8(ascii: "\n") ? Array(content.dropLast()) : content
            guard !token.isEmpty, token.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw StateDirectoryError(
                    path: filePath,
                    message: "invalid admin token, expected printable ASCII without spaces. Write the token into the file, or delete the file to generate a new token."
                )
            }
            return String(decoding: token, as: UTF8.self)
        }

        let token = base64URLEncoded(randomBytes(count: 24))
        try writeAtomically(token + [UInt8(ascii: "\n")], to: filePath, mode: 0o600)
        return String(decoding: token, as: UTF8.self)
    }

    private func filePath(_ name: String) -> String {
        path.hasSuffix("/") ? path + name : path + "/" + name
    }

    /// Reads a file of at most 4 KiB, or returns nil when it does not exist.
    private func readSmallFile(_ filePath: String) throws(StateDirectoryError) -> [UInt8]? {
        let limit = 4096
        switch readFile(atPath: filePath, maximumSize: limit) {
        case .contents(let content):
            return content
        case .missing:
            return nil
        case .tooLarge:
            throw StateDirectoryError(
                path: filePath, message: "larger than \(limit) bytes, so it is not a file this server wrote. Check the path.")
        case .failed(let code):
            throw StateDirectoryError(
                path: filePath, message: "cannot read: \(errnoDescription(code)). Check the file's permissions.")
        }
    }

    /// Writes a file so that it appears either complete or not at all. The bytes go to a
    /// temporary file in the same directory, which is synced and renamed over the target.
    /// A sync of the directory then makes the rename survive a crash.
    private func writeAtomically(_ bytes: [UInt8], to filePath: String, mode: mode_t) throws(StateDirectoryError) {
        let suffix = randomBytes(count: 6).map { String($0, radix: 16) }.joined()
        let temporaryPath = "\(filePath).tmp-\(suffix)"
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw StateDirectoryError(
                path: temporaryPath,
                message: "cannot create: \(errnoDescription(errno)). Make the directory writable by the server's user.")
        }

        var written = 0
        var failure: StateDirectoryError? = nil
        // The umask may have cleared bits of `mode`, and fchmod sets it exactly.
        if fchmod(descriptor, mode) != 0 {
            failure = StateDirectoryError(
                path: temporaryPath, message: "cannot set mode: \(errnoDescription(errno)). Check the directory's file system.")
        }
        while failure == nil && written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR {
                    continue
                }
                failure = StateDirectoryError(
                    path: temporaryPath, message: "cannot write: \(errnoDescription(errno)). Free disk space or check the disk.")
            } else {
                written += result
            }
        }
        if failure == nil && fsync(descriptor) != 0 {
            failure = StateDirectoryError(
                path: temporaryPath, message: "cannot sync to disk: \(errnoDescription(errno)). Check the disk.")
        }
        if close(descriptor) != 0 && failure == nil {
            failure = StateDirectoryError(
                path: temporaryPath, message: "cannot close: \(errnoDescription(errno)). Check the disk.")
        }
        if failure == nil && rename(temporaryPath, filePath) != 0 {
            failure = StateDirectoryError(
                path: filePath, message: "cannot rename the temporary file into place: \(errnoDescription(errno)). Check the directory's permissions.")
        }
        if let failure {
            unlink(temporaryPath)
            throw failure
        }

        let directoryDescriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else {
            throw StateDirectoryError(
                path: path, message: "cannot open to sync: \(errnoDescription(errno)). Check the directory's permissions.")
        }
        defer { close(directoryDescriptor) }
        guard fsync(directoryDescriptor) == 0 else {
            throw StateDirectoryError(path: path, message: "cannot sync to disk: \(errnoDescription(errno)). Check the disk.")
        }
    }
}

/// A failure to create or read the state directory, naming the path and the fix.
public struct StateDirectoryError: Error, Equatable, CustomStringConvertible {
    /// The directory or file concerned.
    public let path: String
    /// The failure and its fix, as sentences.
    public let message: String

    /// The path and message, such as `/var/lib/pmsd/machine-identifier: invalid machine identifier, ...`.
    public var description: String {
        "\(path): \(message)"
    }
}

private func isMachineIdentifier(_ bytes: [UInt8]) -> Bool {
    let isLowercaseHex: (UInt8) -> Bool = { byte in
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }
    return bytes.count == 40 && bytes.allSatisfy(isLowercaseHex)
}

/// Reads bytes from the OS CSPRNG, through `SystemRandomNumberGenerator` (getrandom(2) on Linux).
private func randomBytes(count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

/// Encodes bytes as unpadded base64url (RFC 4648, section 5), which is safe in headers and URLs.
private func base64URLEncoded(_ bytes: [UInt8]) -> [UInt8] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var output: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(index + 3, bytes.count)]
        var group: UInt32 = 0
        for (offset, byte) in chunk.enumerated() {
            group |= UInt32(byte) << UInt32(16 - 8 * offset)
        }
        for position in 0...chunk.count {
            output.append(alphabet[Int(group >> UInt32(18 - 6 * position) & 0x3F)])
        }
        index += 3
    }
    return output
}
