import Foundation
import Testing

@testable import PlexGeneral

@Suite("State directory")
struct StateDirectoryTests {
    private func isLowercaseHex(_ text: String) -> Bool {
        text.allSatisfy { "0123456789abcdef".contains($0) }
    }

    private func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("Missing directory is created with mode 0700")
    func createsDirectory() throws {
        let parent = makeTemporaryDirectory()
        defer { removeDirectory(parent) }
        let path = parent + "/state"

        let directory = try StateDirectory(path: path)
        #expect(directory.path == path)
        #expect(permissionBits(path) == 0o700)
    }

    @Test("Existing directory keeps its mode")
    func existingDirectory() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        chmod(path, 0o750)
        _ = try StateDirectory(path: path)
        #expect(permissionBits(path) == 0o750)
    }

    @Test("Machine identifier persists")
    func machineIdentifierPersists() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }

        let first = try StateDirectory(path: path).loadOrCreateMachineIdentifier()
        let second = try StateDirectory(path: path).loadOrCreateMachineIdentifier()
        #expect(first == second)
        #expect(first.count == 40)
        #expect(isLowercaseHex(first))
        #expect(contents(path + "/machine-identifier") == first + "\n")
    }

    @Test("Machine identifiers differ between directories")
    func machineIdentifiersDiffer() throws {
        let first = makeTemporaryDirectory()
        let second = makeTemporaryDirectory()
        defer {
            removeDirectory(first)
            removeDirectory(second)
        }
        let firstIdentifier = try StateDirectory(path: first).loadOrCreateMachineIdentifier()
        let secondIdentifier = try StateDirectory(path: second).loadOrCreateMachineIdentifier()
        #expect(firstIdentifier != secondIdentifier)
    }

    @Test("Machine identifier written by hand without newline")
    func handWrittenIdentifier() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        let identifier = String(repeating: "ab", count: 20)
        try Data(identifier.utf8).write(to: URL(fileURLWithPath: path + "/machine-identifier"))
        #expect(try StateDirectory(path: path).loadOrCreateMachineIdentifier() == identifier)
    }

    @Test(
        "Corrupt machine identifier is an error",
        arguments: [
            "not hex\n", String(repeating: "AB", count: 20), String(repeating: "a", count: 39),
            String(repeating: "a", count: 41), String(repeating: "a", count: 40) + "\n\n", "", "\n",
        ])
    func corruptIdentifier(content: String) throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        let filePath = path + "/machine-identifier"
        try Data(content.utf8).write(to: URL(fileURLWithPath: filePath))

        #expect(
            throws: StateDirectoryError(
                path: filePath,
                message: "invalid machine identifier, expected 40 lowercase hexadecimal characters. Restore the file from a backup, or delete it to generate a new identifier, which clients will treat as a new server."
            )
        ) {
            try StateDirectory(path: path).loadOrCreateMachineIdentifier()
        }
        #expect(contents(filePath) == content)
    }

    @Test("Oversized machine identifier file is an error")
    func oversizedIdentifier() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        let filePath = path + "/machine-identifier"
        try Data(repeating: UInt8(ascii: "a"), count: 5000).write(to: URL(fileURLWithPath: filePath))
        #expect(
            throws: StateDirectoryError(
                path: filePath,
                message: "larger than 4096 bytes, so it is not a file this server wrote. Check the path.")
        ) {
            try StateDirectory(path: path).loadOrCreateMachineIdentifier()
        }
    }

    @Test("Admin token persists with mode 0600")
    func adminTokenPersists() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        let filePath = path + "/admin-token"

        let first = try StateDirectory(path: path).loadOrCreateAdminToken()
        let second = try StateDirectory(path: path).loadOrCreateAdminToken()
        #expect(first == second)
        #expect(first.count == 32)
        #expect(first.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        #expect(permissionBits(filePath) == 0o600)
        #expect(contents(filePath) == first + "\n")
    }

    @Test("Hand-written admin token is read")
    func handWrittenToken() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        try Data("my-owner-token\n".utf8).write(to: URL(fileURLWithPath: path + "/admin-token"))
        #expect(try StateDirectory(path: path).loadOrCreateAdminToken() == "my-owner-token")
    }

    @Test("Invalid admin token file is an error", arguments: ["", "\n", "two words\n", "tab\there"])
    func invalidToken(content: String) throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        let filePath = path + "/admin-token"
        try Data(content.utf8).write(to: URL(fileURLWithPath: filePath))
        #expect(
            throws: StateDirectoryError(
                path: filePath,
                message: "invalid admin token, expected printable ASCII without spaces. Write the token into the file, or delete the file to generate a new token."
            )
        ) {
            try StateDirectory(path: path).loadOrCreateAdminToken()
        }
    }

    @Test("No temporary files remain")
    func noTemporaryFiles() throws {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        let directory = try StateDirectory(path: path)
        _ = try directory.loadOrCreateMachineIdentifier()
        _ = try directory.loadOrCreateAdminToken()
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        #expect(names == ["admin-token", "machine-identifier"])
    }

    @Test("Path that is a file is an error")
    func pathIsFile() throws {
        let parent = makeTemporaryDirectory()
        defer { removeDirectory(parent) }
        let path = parent + "/file"
        try Data().write(to: URL(fileURLWithPath: path))
        #expect(
            throws: StateDirectoryError(
                path: path, message: "exists but is not a directory. Remove it, or choose another stateDirectory.")
        ) {
            try StateDirectory(path: path)
        }
    }

    @Test("Missing parent is an error")
    func missingParent() throws {
        let parent = makeTemporaryDirectory()
        defer { removeDirectory(parent) }
        let path = parent + "/missing/state"
        #expect(
            throws: StateDirectoryError(
                path: path,
                message: "cannot create directory: No such file or directory. Create it, or choose another stateDirectory."
            )
        ) {
            try StateDirectory(path: path)
        }
    }

    // Root bypasses permission bits, so this case can only be checked as another user.
    @Test("Unwritable directory reports the file", .enabled(if: geteuid() != 0))
    func unwritableDirectory() throws {
        let path = makeTemporaryDirectory()
        defer {
            chmod(path, 0o700)
            removeDirectory(path)
        }
        chmod(path, 0o500)
        let directory = try StateDirectory(path: path)
        do {
            _ = try directory.loadOrCreateMachineIdentifier()
            Issue.record("writing into a read-only directory succeeded")
        } catch {
            #expect(error.path.hasPrefix(path + "/machine-identifier.tmp-"))
            #expect(error.message == "cannot create: Permission denied. Make the directory writable by the server's user.")
        }
    }
}
