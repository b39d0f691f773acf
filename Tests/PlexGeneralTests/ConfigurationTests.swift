import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import PlexGeneral

@Suite("Server configuration")
struct ConfigurationTests {
    private func parse(_ json: String) throws(ConfigurationError) -> ServerConfiguration {
        try ServerConfiguration(json: Data(json.utf8))
    }

    @Test("Empty object gives defaults")
    func defaults() throws {
        let configuration = try parse("{}")
        #expect(!configuration.friendlyName.isEmpty)
        #expect(configuration.adminToken == nil)
        #expect(configuration.sharedTokens.isEmpty)
        #expect(configuration.allowedNetworks.isEmpty)
        #expect(configuration.advertisedConnections.isEmpty)
        #expect(configuration.sources.isEmpty)
        #expect(configuration.version == "1.0.0.0-000000000")
        #expect(configuration.transientTokenLifetimeSeconds == 172_800)
        #expect(configuration.maxTransientTokens == 1_000_000)
        #expect(configuration.port == 32400)
        #expect(configuration.bind == "0.0.0.0")
        #expect(configuration.stateDirectory == nil)
    }

    @Test("Default friendly name is the host name")
    func hostNameDefault() throws {
        var buffer = [CChar](repeating: 0, count: 256)
        try #require(gethostname(&buffer, 255) == 0)
        let hostName = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(try parse("{}").friendlyName == hostName)
    }

    static let fullConfiguration = #"""
        {
          "friendlyName": "Den <&\"'> Sérvér",
          "adminToken": "owner-token-123",
          "sharedTokens": [
            {"name": "alice", "token": "alice-token"},
            {"name": "bob", "token": "bob-token"}
          ],
          "allowedNetworks": "192.168.1.0/255.255.255.0, fd00::/8",
          "advertisedConnections": [
            {"protocol": "http", "address": "192.0.2.10", "port": 32400, "local": true},
            {"protocol": "https", "address": "2001:db8::10", "port": 443, "local": false, "relay": true},
            {"protocol": "https", "address": "media.example.com", "port": 8443, "local": false, "relay": false}
          ],
          "sources": [
            {
              "source": "server://0123456789abcdef0123456789abcdef01234567",
              "name": "Cabin",
              "clientIdentifier": "0123456789abcdef0123456789abcdef01234567",
              "accessToken": "cabin-token",
              "connections": [{"protocol": "http", "address": "198.51.100.7", "port": 32400, "local": false}]
            },
            {
              "source": "provider://tv.plex.provider.vod",
              "name": "Movies & Shows",
              "clientIdentifier": "tv.plex.provider.vod",
              "connections": []
            }
          ],
          "version": "1.41.3.9314-a0bfb8370",
          "transientTokenLifetimeSeconds": 3600,
          "maxTransientTokens": 5000,
          "port": 0,
          "bind": "::",
          "stateDirectory": "/var/lib/pmsd"
        }
        """#

    @Test("Full configuration parses")
    func fullConfigurationParses() throws {
        let configuration = try parse(Self.fullConfiguration)
        #expect(configuration.friendlyName == "Den <&\"'> Sérvér")
        #expect(configuration.adminToken == "owner-token-123")
        #expect(
            configuration.sharedTokens == [
                SharedToken(name: "alice", token: "alice-token"), SharedToken(name: "bob", token: "bob-token"),
            ])
        #expect(configuration.allowedNetworks == (try NetworkList(parsing: "192.168.1.0/24,fd00::/8")))
        #expect(configuration.version == "1.41.3.9314-a0bfb8370")
        #expect(configuration.transientTokenLifetimeSeconds == 3600)
        #expect(configuration.maxTransientTokens == 5000)
        #expect(configuration.port == 0)
        #expect(configuration.bind == "::")
        #expect(configuration.stateDirectory == "/var/lib/pmsd")
    }

    @Test("Advertised connections derive URIs")
    func advertisedConnections() throws {
        let connections = try parse(Self.fullConfiguration).advertisedConnections
        try #require(connections.count == 3)
        #expect(connections[0] == Connection(scheme: .http, address: "192.0.2.10", port: 32400, local: true))
        #expect(connections[0].uri == "http://192.0.2.10:32400")
        #expect(connections[0].relay == false)
        #expect(connections[1].uri == "https://[2001:db8::10]:443")
        #expect(connections[1].relay == true)
        #expect(connections[1].local == false)
        #expect(connections[2].uri == "https://media.example.com:8443")
    }

    @Test("Sources catalogue parses")
    func sourcesCatalogue() throws {
        let sources = try parse(Self.fullConfiguration).sources
        try #require(sources.count == 2)
        #expect(sources[0].source == SourceReference(kind: .server, identifier: "0123456789abcdef0123456789abcdef01234567"))
        #expect(sources[0].name == "Cabin")
        #expect(sources[0].accessToken == "cabin-token")
        #expect(sources[0].connections.map(\.uri) == ["http://198.51.100.7:32400"])
        #expect(sources[1].source == SourceReference(kind: .provider, identifier: "tv.plex.provider.vod"))
        #expect(sources[1].accessToken == nil)
        #expect(sources[1].connections.isEmpty)
    }

    @Test("Sources reload reads only the catalogue")
    func sourcesReload() throws {
        let json = #"{"port": "ignored here", "sources": [{"source": "provider://p", "name": "P", "clientIdentifier": "p", "connections": []}]}"#
        let sources = try ServerConfiguration.parseSources(json: Data(json.utf8))
        #expect(sources.map(\.source.description) == ["provider://p"])
        #expect(try ServerConfiguration.parseSources(json: Data("{}".utf8)).isEmpty)
    }

    @Test("Sources reload reports catalogue errors")
    func sourcesReloadErrors() {
        let json = #"{"sources": [{"source": "provider://p", "name": "P", "clientIdentifier": "p"}]}"#
        #expect(
            throws: ConfigurationError(
                keyPath: "sources[0].connections",
                message: "missing. List the device's connections, or give an empty array.")
        ) {
            try ServerConfiguration.parseSources(json: Data(json.utf8))
        }
    }

    @Test("Allowed networks as an array")
    func allowedNetworksArray() throws {
        let configuration = try parse(#"{"allowedNetworks": ["10.0.0.0/8", " 192.168.0.0/255.255.0.0 "]}"#)
        #expect(configuration.allowedNetworks.count == 2)
        #expect(configuration.allowedNetworks.contains(address: [192, 168, 3, 4]))
        #expect(configuration.allowedNetworks.contains(address: [10, 0, 0, 1]))
    }

    @Test("Integral floating-point port is accepted")
    func integralFloatPort() throws {
        #expect(try parse(#"{"port": 8080.0}"#).port == 8080)
    }

    static let invalidCases: [(json: String, message: String)] = [
        (
            #"{"frendlyName": "x"}"#,
            "frendlyName: unknown key. Correct its spelling or remove it. Valid keys here: accessLog, adminToken, advertisedConnections, allowedNetworks, bind, bodyTimeoutSeconds, friendlyName, headerTimeoutSeconds, keepAliveTimeoutSeconds, logLevel, maxBodyBytes, maxChunkExtensionBytes, maxConnections, maxHeaderCount, maxRequestHeadBytes, maxRequestsPerConnection, maxTransientTokens, maxURLBytes, port, sharedTokens, sources, stateDirectory, stopGracePeriodSeconds, transientTokenLifetimeSeconds, version, writeTimeoutSeconds."
        ),
        (#"{"friendlyName": ""}"#, "friendlyName: empty. Give a name, or remove the key to use the host name."),
        (#"{"friendlyName": 5}"#, "friendlyName: expected a string, found a number."),
        (#"{"adminToken": null}"#, "adminToken: expected a string, found null."),
        (#"{"adminToken": ""}"#, "adminToken: empty. Set a non-empty token, or remove the key to use the token kept in the state directory."),
        (
            #"{"adminToken": "two words"}"#,
            "adminToken: contains a space, a control character or a non-ASCII character. Use printable ASCII only."
        ),
        (
            #"{"adminToken": "tökén"}"#,
            "adminToken: contains a space, a control character or a non-ASCII character. Use printable ASCII only."
        ),
        (
            #"{"adminToken": "transient-abc"}"#,
            "adminToken: starts with \"transient-\", which the server reserves for the tokens it mints. Choose another token."
        ),
        (#"{"sharedTokens": {}}"#, "sharedTokens: expected an array, found an object."),
        (#"{"sharedTokens": ["alice"]}"#, "sharedTokens[0]: expected an object, found a string."),
        (
            #"{"sharedTokens": [{"name": "a", "token": "t1"}, {"name": "b"}]}"#,
            "sharedTokens[1].token: missing. Give each shared user a non-empty token."
        ),
        (#"{"sharedTokens": [{"name": "a", "token": ""}]}"#, "sharedTokens[0].token: empty. Give each shared user a non-empty token."),
        (#"{"sharedTokens": [{"token": "t"}]}"#, "sharedTokens[0].name: missing. Give each shared user a non-empty name."),
        (#"{"sharedTokens": [{"name": "", "token": "t"}]}"#, "sharedTokens[0].name: empty. Give each shared user a non-empty name."),
        (
            #"{"sharedTokens": [{"name": "a", "token": "t", "admin": true}]}"#,
            "sharedTokens[0].admin: unknown key. Correct its spelling or remove it. Valid keys here: name, token."
        ),
        (
            #"{"sharedTokens": [{"name": "a", "token": "t1"}, {"name": "b", "token": "t2"}, {"name": "c", "token": "t1"}]}"#,
            "sharedTokens[2].token: same as sharedTokens[0].token. Give each shared user a different token."
        ),
        (
            #"{"adminToken": "same", "sharedTokens": [{"name": "a", "token": "same"}]}"#,
            "sharedTokens[0].token: same as adminToken. Give shared users tokens that differ from the admin token."
        ),
        (
            #"{"allowedNetworks": "10.0.0.0/8, 10.0.0.0/33"}"#,
            #"allowedNetworks: invalid network "10.0.0.0/33": prefix length must be 0 to 32 for IPv4. Correct or remove the entry."#
        ),
        (
            #"{"allowedNetworks": ["10.0.0.0/8", "bogus"]}"#,
            #"allowedNetworks[1]: invalid network "bogus": not an IPv4 or IPv6 address. Correct or remove the entry."#
        ),
        (#"{"allowedNetworks": ["10.0.0.0/8", 7]}"#, "allowedNetworks[1]: expected a string, found a number."),
        (#"{"allowedNetworks": 5}"#, "allowedNetworks: expected a string or an array of strings, found a number."),
        (
            #"{"advertisedConnections": [{"protocol": "ftp", "address": "192.0.2.1", "port": 21, "local": true}]}"#,
            #"advertisedConnections[0].protocol: invalid value "ftp". Use "http" or "https"."#
        ),
        (
            #"{"advertisedConnections": [{"address": "192.0.2.1", "port": 1, "local": true}]}"#,
            #"advertisedConnections[0].protocol: missing. Set it to "http" or "https"."#
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "port": 1, "local": true}]}"#,
            "advertisedConnections[0].address: missing. Give the IP address or host name that clients connect to."
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "[::1]", "port": 1, "local": true}]}"#,
            #"advertisedConnections[0].address: invalid address "[::1]". Use an IPv4 address, an IPv6 address without brackets, or a host name."#
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "a host", "port": 1, "local": true}]}"#,
            #"advertisedConnections[0].address: invalid address "a host". Use an IPv4 address, an IPv6 address without brackets, or a host name."#
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "192.0.2.1", "local": true}]}"#,
            "advertisedConnections[0].port: missing. Give the TCP port that clients connect to, such as 32400."
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "192.0.2.1", "port": 0, "local": true}]}"#,
            "advertisedConnections[0].port: 0 is out of range. Use a port from 1 to 65535."
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "192.0.2.1", "port": 1}]}"#,
            "advertisedConnections[0].local: missing. Set it to true for an address on the server's LAN, false otherwise."
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "192.0.2.1", "port": 1, "local": 1}]}"#,
            "advertisedConnections[0].local: expected true or false, found a number."
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "192.0.2.1", "port": 1, "local": true, "relay": "no"}]}"#,
            "advertisedConnections[0].relay: expected true or false, found a string."
        ),
        (
            #"{"advertisedConnections": [{"protocol": "http", "address": "192.0.2.1", "port": 1, "local": true, "host": "x"}]}"#,
            "advertisedConnections[0].host: unknown key. Correct its spelling or remove it. Valid keys here: address, local, port, protocol, relay."
        ),
        (
            #"{"sources": [{"name": "n", "clientIdentifier": "c", "connections": []}]}"#,
            "sources[0].source: missing. Give the source as server://<identifier> or provider://<identifier>."
        ),
        (
            #"{"sources": [{"source": "http://x", "name": "n", "clientIdentifier": "c", "connections": []}]}"#,
            #"sources[0].source: invalid value "http://x". Use server://<identifier> or provider://<identifier>, with no path after the identifier."#
        ),
        (
            #"{"sources": [{"source": "server://abc/com.plexapp.plugins.library", "name": "n", "clientIdentifier": "c", "connections": []}]}"#,
            #"sources[0].source: invalid value "server://abc/com.plexapp.plugins.library". Use server://<identifier> or provider://<identifier>, with no path after the identifier."#
        ),
        (
            #"{"sources": [{"source": "provider://p", "name": "n", "clientIdentifier": "c", "connections": []}, {"source": "provider://p", "name": "m", "clientIdentifier": "d", "connections": []}]}"#,
            "sources[1].source: provider://p is already listed as sources[0]. List each source once."
        ),
        (
            #"{"sources": [{"source": "provider://p", "clientIdentifier": "c", "connections": []}]}"#,
            "sources[0].name: missing or empty. Give the device name that clients display."
        ),
        (
            #"{"sources": [{"source": "provider://p", "name": "n", "clientIdentifier": "", "connections": []}]}"#,
            "sources[0].clientIdentifier: missing or empty. Give the device's client identifier."
        ),
        (
            #"{"sources": [{"source": "provider://p", "name": "n", "clientIdentifier": "c", "accessToken": "", "connections": []}]}"#,
            "sources[0].accessToken: empty. Give the device's token, or remove the key."
        ),
        (
            #"{"sources": [{"source": "provider://p", "name": "n", "clientIdentifier": "c", "connections": [{"protocol": "http", "address": "192.0.2.1", "port": 70000, "local": false}]}]}"#,
            "sources[0].connections[0].port: 70000 is out of range. Use a port from 1 to 65535."
        ),
        (
            #"{"version": "1.2.3-abc"}"#,
            #"version: invalid value "1.2.3-abc". Use the form N.N.N.N-hhhhhhhhh with nine lowercase hexadecimal digits after the hyphen, such as 1.0.0.0-000000000."#
        ),
        (
            #"{"version": "1.0.0.0-00000000A"}"#,
            #"version: invalid value "1.0.0.0-00000000A". Use the form N.N.N.N-hhhhhhhhh with nine lowercase hexadecimal digits after the hyphen, such as 1.0.0.0-000000000."#
        ),
        (
            #"{"version": "1.0..0-000000000"}"#,
            #"version: invalid value "1.0..0-000000000". Use the form N.N.N.N-hhhhhhhhh with nine lowercase hexadecimal digits after the hyphen, such as 1.0.0.0-000000000."#
        ),
        (
            #"{"transientTokenLifetimeSeconds": 172801}"#,
            "transientTokenLifetimeSeconds: 172801 is above the 48-hour maximum. Use at most 172800 seconds."
        ),
        (#"{"transientTokenLifetimeSeconds": 0}"#, "transientTokenLifetimeSeconds: 0 is too small. Use at least 1 second."),
        (#"{"transientTokenLifetimeSeconds": "1h"}"#, "transientTokenLifetimeSeconds: expected an integer, found a string."),
        (#"{"maxTransientTokens": 0}"#, "maxTransientTokens: 0 is too small. Use at least 1."),
        (#"{"port": 70000}"#, "port: 70000 is out of range. Use a port from 0 to 65535."),
        (#"{"port": -1}"#, "port: -1 is out of range. Use a port from 0 to 65535."),
        (#"{"port": "32400"}"#, "port: expected an integer, found a string."),
        (#"{"port": true}"#, "port: expected an integer, found a boolean."),
        (#"{"port": 1.5}"#, "port: expected an integer, found a number."),
        (#"{"port": 1e30}"#, "port: expected an integer, found a number."),
        (#"{"bind": "localhost"}"#, #"bind: invalid address "localhost". Use an IPv4 or IPv6 address, such as 0.0.0.0 or ::."#),
        (#"{"stateDirectory": ""}"#, "stateDirectory: empty. Give a directory path, or remove the key."),
        ("[]", "the configuration must be a JSON object, found an array. Wrap the settings in { }."),
    ]

    @Test("Invalid configuration names the key", arguments: invalidCases)
    func invalidConfiguration(json: String, message: String) {
        #expect(throws: ConfigurationError.self) {
            try parse(json)
        }
        do {
            _ = try parse(json)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test("Malformed JSON is reported")
    func malformedJSON() {
        do {
            _ = try parse(#"{"port": 32400,"#)
            Issue.record("parsing malformed JSON succeeded")
        } catch {
            #expect(error.keyPath == nil)
            #expect(error.description.hasPrefix("the configuration is not valid JSON: "))
            #expect(error.description.hasSuffix(". Correct the syntax."))
            #expect(!error.description.contains(".."))
        }
    }

    @Test("Missing file is named")
    func missingFile() {
        let path = "/nonexistent-directory/pmsd.json"
        #expect(
            throws: ConfigurationError(
                keyPath: nil,
                message: "cannot read configuration file \(path): No such file or directory. Check the path and its permissions.")
        ) {
            try ServerConfiguration(contentsOfFile: path)
        }
    }

    @Test("Directory instead of file is named")
    func directoryInsteadOfFile() {
        let path = makeTemporaryDirectory()
        defer { removeDirectory(path) }
        #expect(
            throws: ConfigurationError(
                keyPath: nil,
                message: "cannot read configuration file \(path): Is a directory. Check the path and its permissions.")
        ) {
            try ServerConfiguration(contentsOfFile: path)
        }
    }

    @Test("Configuration file is read")
    func readsFile() throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/pmsd.json"
        try Data(#"{"port": 32401}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(try ServerConfiguration(contentsOfFile: path).port == 32401)
    }

    @Test("Printing a configuration hides tokens")
    func printingHidesTokens() throws {
        let configuration = try parse(Self.fullConfiguration)
        var dumped = ""
        dump(configuration, to: &dumped)
        let described = String(describing: configuration)
        for secret in ["owner-token-123", "alice-token", "bob-token", "cabin-token"] {
            #expect(!dumped.contains(secret), "dump shows \(secret.prefix(5))")
            #expect(!described.contains(secret), "description shows \(secret.prefix(5))")
        }
        #expect(dumped.contains("alice"))
    }

    @Test(
        "Version format",
        arguments: [
            ("1.0.0.0-000000000", true), ("1.41.3.9314-a0bfb8370", true), ("10.20.30.40-abcdef012", true),
            ("1.0.0-000000000", false), ("1.0.0.0.0-000000000", false), ("1.0.0.0-00000000", false),
            ("1.0.0.0-0000000000", false), ("1.0.0.0-00000000g", false), ("1.0.0.a-000000000", false),
            ("1.0.0.0", false), ("-000000000", false), ("1.0.0.0-000000000-1", false), ("", false),
        ])
    func versionFormat(version: String, valid: Bool) {
        #expect(isValidVersion(version) == valid)
    }
}
