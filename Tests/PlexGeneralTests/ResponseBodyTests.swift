import Foundation
import Testing

@testable import PlexGeneral

@Suite("Response bodies")
struct ResponseBodyTests {
    static let machineIdentifier = "0123456789abcdef0123456789abcdef01234567"
    static let awkwardName = "Den <&\"'> Sérvér 漢字 🎬"

    private func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Identity

    @Test("Identity XML is exact")
    func identityXML() {
        var body: [UInt8] = []
        ResponseBody.appendIdentity(
            to: &body, format: .xml, machineIdentifier: Self.machineIdentifier, version: "1.0.0.0-000000000")
        #expect(
            text(body) == """
                <?xml version="1.0" encoding="UTF-8"?>
                <MediaContainer size="0" claimed="1" machineIdentifier="\(Self.machineIdentifier)" version="1.0.0.0-000000000">
                </MediaContainer>

                """)
    }

    @Test("Identity XML parses")
    func identityXMLParses() throws {
        var body: [UInt8] = []
        ResponseBody.appendIdentity(to: &body, format: .xml, machineIdentifier: Self.machineIdentifier, version: "1.2.3.4-abcdef012")
        let elements = try #require(parseXML(body))
        #expect(elements.count == 1)
        #expect(elements.first?.name == "MediaContainer")
        #expect(elements.first?.attributes["machineIdentifier"] == Self.machineIdentifier)
        #expect(elements.first?.attributes["version"] == "1.2.3.4-abcdef012")
        #expect(elements.first?.attributes["claimed"] == "1")
    }

    @Test("Identity JSON is exact")
    func identityJSON() {
        var body: [UInt8] = []
        ResponseBody.appendIdentity(
            to: &body, format: .json, machineIdentifier: Self.machineIdentifier, version: "1.0.0.0-000000000")
        #expect(
            text(body)
                == #"{"MediaContainer":{"size":0,"claimed":true,"machineIdentifier":"\#(Self.machineIdentifier)","version":"1.0.0.0-000000000"}}"#
        )
    }

    @Test("Identity JSON decodes with typed values")
    func identityJSONDecodes() throws {
        var body: [UInt8] = []
        ResponseBody.appendIdentity(
            to: &body, format: .json, machineIdentifier: Self.machineIdentifier, version: "1.0.0.0-000000000",
            claimed: false)
        let root = try #require(decodeJSONObject(body))
        let container = try #require(root["MediaContainer"] as? [String: Any])
        #expect(container["size"] as? Int == 0)
        #expect(!isJSONBoolean(container["size"] as Any))
        #expect(isJSONBoolean(container["claimed"] as Any))
        #expect(container["claimed"] as? Bool == false)
        #expect(container["machineIdentifier"] as? String == Self.machineIdentifier)
    }

    // MARK: - Server info

    static let serverInfo = ServerInfo(
        friendlyName: awkwardName, machineIdentifier: machineIdentifier, version: "1.0.0.0-000000000",
        platformVersion: "6.1.0-18-amd64", updatedAt: 1_700_000_000, hasSharedUsers: true,
        directories: ["identity", "security"])

    static let booleanAttributes = [
        "allowCameraUpload", "allowChannelAccess", "allowMediaDeletion", "allowSharing", "allowSync", "allowTuners",
        "backgroundProcessing", "certificate", "companionProxy", "eventStream", "hubSearch", "itemClusters",
        "mediaProviders", "multiuser", "myPlex", "myPlexSubscription", "pluginHost", "pushNotifications", "sync",
        "transcoderAudio", "transcoderLyrics", "transcoderPhoto", "transcoderSubtitles", "transcoderVideo", "updater",
        "voiceSearch",
    ]
    static let integerAttributes = [
        "size", "livetv", "musicAnalysis", "offlineTranscode", "readOnlyLibraries", "streamingBrainABRVersion",
        "streamingBrainVersion", "transcoderActiveVideoSessions", "updatedAt",
    ]
    static let stringAttributes = [
        "countryCode", "diagnostics", "friendlyName", "machineIdentifier", "myPlexMappingState", "myPlexSigninState",
        "myPlexUsername", "ownerFeatures", "platform", "platformVersion", "transcoderVideoBitrates",
        "transcoderVideoQualities", "transcoderVideoResolutions", "version",
    ]

    @Test("Server info XML has every attribute")
    func serverInfoXML() throws {
        var body: [UInt8] = []
        ResponseBody.appendServerInfo(to: &body, format: .xml, info: Self.serverInfo)
        #expect(text(body).hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"2\" "))

        let elements = try #require(parseXML(body))
        let root = try #require(elements.first)
        #expect(root.name == "MediaContainer")
        #expect(root.attributes.count == Self.booleanAttributes.count + Self.integerAttributes.count + Self.stringAttributes.count)
        for name in Self.booleanAttributes {
            #expect(["0", "1"].contains(root.attributes[name]), "\(name) is not 0 or 1")
        }
        for name in Self.integerAttributes {
            #expect(root.attributes[name].flatMap { Int($0) } != nil, "\(name) is not an integer")
        }
        for name in Self.stringAttributes {
            #expect(root.attributes[name] != nil, "\(name) is missing")
        }
        #expect(root.attributes["friendlyName"] == Self.awkwardName)
        #expect(root.attributes["transcoderVideo"] == "0")
        #expect(root.attributes["multiuser"] == "1")
        #expect(root.attributes["updatedAt"] == "1700000000")
        #expect(root.attributes["transcoderActiveVideoSessions"] == "0")
        #expect(root.attributes["platform"] == "Linux")
    }

    @Test("Server info XML lists directories")
    func serverInfoDirectories() throws {
        var body: [UInt8] = []
        ResponseBody.appendServerInfo(to: &body, format: .xml, info: Self.serverInfo)
        let elements = try #require(parseXML(body))
        let directories = elements.filter { $0.name == "Directory" }
        #expect(elements.count == 3)
        #expect(directories.count == 2)
        #expect(directories.allSatisfy { $0.depth == 1 })
        #expect(directories.map { $0.attributes["key"] } == ["identity", "security"])
        #expect(directories.map { $0.attributes["title"] } == ["identity", "security"])
        #expect(directories.map { $0.attributes["count"] } == ["1", "1"])
        #expect(text(body).contains("\n<Directory count=\"1\" key=\"identity\" title=\"identity\"/>\n"))
    }

    @Test("Server info JSON has typed values")
    func serverInfoJSON() throws {
        var body: [UInt8] = []
        ResponseBody.appendServerInfo(to: &body, format: .json, info: Self.serverInfo)
        #expect(text(body).hasPrefix(#"{"MediaContainer":{"size":2,"#))

        let root = try #require(decodeJSONObject(body))
        let container = try #require(root["MediaContainer"] as? [String: Any])
        #expect(container.count == Self.booleanAttributes.count + Self.integerAttributes.count + Self.stringAttributes.count + 1)
        for name in Self.booleanAttributes {
            #expect(isJSONBoolean(container[name] as Any), "\(name) is not a boolean")
        }
        for name in Self.integerAttributes {
            #expect(container[name] is NSNumber, "\(name) is not a number")
            #expect(!isJSONBoolean(container[name] as Any), "\(name) is a boolean")
        }
        for name in Self.stringAttributes {
            #expect(container[name] is String, "\(name) is not a string")
        }
        #expect(container["friendlyName"] as? String == Self.awkwardName)
        #expect(container["size"] as? Int == 2)
        #expect(container["updatedAt"] as? Int == 1_700_000_000)
        #expect(container["allowSharing"] as? Bool == true)
        #expect(container["transcoderVideo"] as? Bool == false)

        let directories = try #require(container["Directory"] as? [[String: Any]])
        #expect(directories.count == 2)
        #expect(directories.map { $0["key"] as? String } == ["identity", "security"])
        #expect(directories.map { $0["title"] as? String } == ["identity", "security"])
        #expect(directories.map { $0["count"] as? Int } == [1, 1])
    }

    @Test("Server info with no directories")
    func serverInfoEmpty() throws {
        var info = Self.serverInfo
        info.directories = []
        info.hasSharedUsers = false

        var xml: [UInt8] = []
        ResponseBody.appendServerInfo(to: &xml, format: .xml, info: info)
        let elements = try #require(parseXML(xml))
        #expect(elements.count == 1)
        #expect(elements.first?.attributes["size"] == "0")
        #expect(elements.first?.attributes["multiuser"] == "0")

        var json: [UInt8] = []
        ResponseBody.appendServerInfo(to: &json, format: .json, info: info)
        let container = try #require(decodeJSONObject(json)?["MediaContainer"] as? [String: Any])
        #expect((container["Directory"] as? [Any])?.isEmpty == true)
    }

    @Test("Platform version comes from uname")
    func platformVersion() {
        #expect(!ServerInfo.currentPlatformVersion().isEmpty)
    }

    // MARK: - Transient token

    @Test("Transient token bodies")
    func transientToken() throws {
        let token = "transient-0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
        var xml: [UInt8] = []
        ResponseBody.appendTransientToken(to: &xml, format: .xml, token: token)
        #expect(
            text(xml) == "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"0\" token=\"\(token)\"/>\n")
        #expect(try #require(parseXML(xml)).first?.attributes["token"] == token)

        var json: [UInt8] = []
        ResponseBody.appendTransientToken(to: &json, format: .json, token: token)
        #expect(text(json) == #"{"MediaContainer":{"size":0,"token":"\#(token)"}}"#)
    }

    // MARK: - Resources

    static let connections = [
        Connection(scheme: .http, address: "192.0.2.10", port: 32400, local: true),
        Connection(scheme: .https, address: "2001:db8::10", port: 443, local: false, relay: true),
    ]

    @Test("Resources XML is exact")
    func resourcesXML() {
        var body: [UInt8] = []
        ResponseBody.appendResources(
            to: &body, format: .xml, name: "Den", clientIdentifier: Self.machineIdentifier,
            accessToken: "transient-abc", connections: [Self.connections[0]])
        #expect(
            text(body) == """
                <?xml version="1.0" encoding="UTF-8"?>
                <MediaContainer size="1">
                <Device name="Den" clientIdentifier="\(Self.machineIdentifier)" accessToken="transient-abc">
                <Connection protocol="http" address="192.0.2.10" port="32400" uri="http://192.0.2.10:32400" local="1"/>
                </Device>
                </MediaContainer>

                """)
    }

    @Test("Resources XML parses")
    func resourcesXMLParses() throws {
        var body: [UInt8] = []
        ResponseBody.appendResources(
            to: &body, format: .xml, name: Self.awkwardName, clientIdentifier: "c", accessToken: nil,
            connections: Self.connections)
        let elements = try #require(parseXML(body))
        #expect(elements.map(\.name) == ["MediaContainer", "Device", "Connection", "Connection"])
        #expect(elements.map(\.depth) == [0, 1, 2, 2])
        #expect(elements[0].attributes["size"] == "1")
        #expect(elements[1].attributes["name"] == Self.awkwardName)
        #expect(elements[1].attributes["accessToken"] == nil)
        #expect(elements[2].attributes["relay"] == nil)
        #expect(elements[3].attributes["relay"] == "1")
        #expect(elements[3].attributes["local"] == "0")
        #expect(elements[3].attributes["uri"] == "https://[2001:db8::10]:443")
    }

    @Test("Resources JSON shape")
    func resourcesJSON() throws {
        var body: [UInt8] = []
        ResponseBody.appendResources(
            to: &body, format: .json, name: Self.awkwardName, clientIdentifier: "c", accessToken: "transient-abc",
            connections: Self.connections)
        let root = try #require(decodeJSONObject(body))
        let container = try #require(root["MediaContainer"] as? [String: Any])
        #expect(container["size"] as? Int == 1)
        let device = try #require(container["Device"] as? [String: Any])
        #expect(device["name"] as? String == Self.awkwardName)
        #expect(device["clientIdentifier"] as? String == "c")
        #expect(device["accessToken"] as? String == "transient-abc")

        let connections = try #require(device["Connection"] as? [[String: Any]])
        #expect(connections.count == 2)
        #expect(connections[0]["protocol"] as? String == "http")
        #expect(connections[0]["address"] as? String == "192.0.2.10")
        #expect(connections[0]["port"] as? Int == 32400)
        #expect(!isJSONBoolean(connections[0]["port"] as Any))
        #expect(connections[0]["uri"] as? String == "http://192.0.2.10:32400")
        #expect(isJSONBoolean(connections[0]["local"] as Any))
        #expect(connections[0]["local"] as? Bool == true)
        #expect(connections[0]["relay"] == nil)
        #expect(isJSONBoolean(connections[1]["relay"] as Any))
        #expect(connections[1]["relay"] as? Bool == true)
        #expect(connections[1]["local"] as? Bool == false)
    }

    @Test("Resources JSON without connections or token")
    func resourcesJSONEmpty() throws {
        var body: [UInt8] = []
        ResponseBody.appendResources(
            to: &body, format: .json, name: "P", clientIdentifier: "p", accessToken: nil, connections: [])
        #expect(text(body) == #"{"MediaContainer":{"size":1,"Device":{"name":"P","clientIdentifier":"p","Connection":[]}}}"#)
    }

    // MARK: - HTML errors

    @Test(
        "HTML error pages",
        arguments: [(400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"), (404, "Not Found"), (418, "Error")])
    func htmlErrors(status: Int, title: String) {
        var body: [UInt8] = []
        ResponseBody.appendHTMLError(to: &body, status: status)
        #expect(
            text(body) == "<html><head><title>\(title)</title></head><body><h1>\(status) \(title)</h1></body></html>")
        #expect(ResponseBody.htmlContentType.description == "text/html")
    }
}
