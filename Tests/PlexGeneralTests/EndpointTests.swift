import Foundation
import Testing
import UVHTTP

@testable import PlexGeneral

// Each test starts its own server on 127.0.0.1 at a free port and talks to it
// over real sockets, so the tests check the bytes that clients receive.

private let ownerToken = ("X-Plex-Token", LoopbackFixture.adminToken)
private let sharedToken = ("X-Plex-Token", LoopbackFixture.sharedToken)
private let acceptJSON = ("Accept", "application/json")
private let ownServerSource = "server://\(LoopbackFixture.machineIdentifier)"
private let mintTarget = "/security/token?type=delegation&scope=all"
private let resourcesTarget = "/security/resources?source=\(ownServerSource)"

/// A request to send and the status it must get.
struct EndpointCase: Sendable, CustomTestStringConvertible {
    let label: String
    let method: String
    let target: String
    let headers: [(String, String)]
    let status: Int

    init(_ label: String, _ method: String, _ target: String, headers: [(String, String)] = [], status: Int) {
        self.label = label
        self.method = method
        self.target = target
        self.headers = headers
        self.status = status
    }

    init(_ label: String, _ target: String, headers: [(String, String)] = [], status: Int) {
        self.init(label, "GET", target, headers: headers, status: status)
    }

    var testDescription: String { label }
}

/// Checks the fields and prolog of an XML response and returns its root
/// `MediaContainer`, or nil when the body does not parse to one.
private func expectXMLContainer(
    _ response: WireResponse, sourceLocation: SourceLocation = #_sourceLocation
) -> ParsedElement? {
    #expect(response.header("Content-Type") == "text/xml;charset=utf-8", sourceLocation: sourceLocation)
    #expect(response.text.hasPrefix(xmlProlog), "the body starts with the XML prolog", sourceLocation: sourceLocation)
    let root = mediaContainerXML(response)
    #expect(root != nil, "the body parses with root MediaContainer: \(response.text)", sourceLocation: sourceLocation)
    return root
}

/// Checks the fields of a JSON response and returns the object under
/// `MediaContainer`, or nil when the body does not decode to one.
private func expectJSONContainer(
    _ response: WireResponse, sourceLocation: SourceLocation = #_sourceLocation
) -> [String: Any]? {
    #expect(response.header("Content-Type") == "application/json", sourceLocation: sourceLocation)
    let container = mediaContainerJSON(response)
    #expect(container != nil, "the body decodes to a MediaContainer object: \(response.text)", sourceLocation: sourceLocation)
    return container
}

/// Checks that a response is the HTML error page for `status`.
private func expectHTMLError(
    _ response: WireResponse, status: Int, title: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, sourceLocation: sourceLocation)
    #expect(response.header("Content-Type") == "text/html", sourceLocation: sourceLocation)
    #expect(response.htmlTitle == title, sourceLocation: sourceLocation)
}

// MARK: - Identity

@Suite("Identity endpoint over loopback")
struct IdentityEndpointTests {
    static let tokenCases: [EndpointCase] = [
        EndpointCase("no token", "/identity", status: 200),
        EndpointCase("wrong header token", "/identity", headers: [("X-Plex-Token", "wrong-token")], status: 200),
        EndpointCase("wrong query token", "/identity?X-Plex-Token=wrong-token", status: 200),
        EndpointCase("malformed transient token", "/identity", headers: [("X-Plex-Token", "transient-zz")], status: 200),
        EndpointCase("owner token", "/identity", headers: [ownerToken], status: 200),
    ]

    @Test("Identity ignores tokens", arguments: tokenCases)
    func ignoresTokens(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            #expect(response.status == testCase.status)
            let root = expectXMLContainer(response)
            #expect(root?.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
        }
    }

    @Test("Identity XML body")
    func xmlBody() throws {
        try withLoopbackServer { server in
            let response = try server.send("/identity")
            #expect(response.status == 200)
            let root = try #require(expectXMLContainer(response))
            let elements = try #require(parseXML(response.body))
            #expect(elements.count == 1)
            #expect(response.text.split(separator: "\n").first == "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            #expect(response.text.contains("\n<MediaContainer size=\"0\" "))
            #expect(root.attributes["size"] == "0")
            #expect(root.attributes["claimed"] == "1")
            #expect(root.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
            #expect(root.attributes["machineIdentifier"]?.wholeMatch(of: /[0-9a-f]{40}/) != nil)
            #expect(root.attributes["version"] == LoopbackFixture.version)
            #expect(root.attributes["version"]?.wholeMatch(of: /[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+-[0-9a-f]{9}/) != nil)
        }
    }

    @Test("Identity JSON body")
    func jsonBody() throws {
        try withLoopbackServer { server in
            let response = try server.send("/identity", headers: [acceptJSON])
            #expect(response.status == 200)
            let container = try #require(expectJSONContainer(response))
            #expect(container["size"] as? Int == 0)
            #expect(!isJSONBoolean(container["size"] as Any))
            #expect(isJSONBoolean(container["claimed"] as Any))
            #expect(container["claimed"] as? Bool == true)
            #expect(container["machineIdentifier"] as? String == LoopbackFixture.machineIdentifier)
            #expect(container["version"] as? String == LoopbackFixture.version)
            #expect(container["_elementType"] == nil)
            #expect(container["_children"] == nil)
        }
    }

    @Test("Trailing slash names identity", arguments: [[], [acceptJSON]])
    func trailingSlash(_ headers: [(String, String)]) throws {
        try withLoopbackServer { server in
            let plain = try server.send("/identity", headers: headers)
            let slashed = try server.send("/identity/", headers: headers)
            #expect(slashed.status == 200)
            #expect(slashed.header("Content-Type") == plain.header("Content-Type"))
            #expect(slashed.body == plain.body)
        }
    }

    @Test("HEAD identity sends no body")
    func headRequest() throws {
        try withLoopbackServer { server in
            let full = try server.send("/identity")
            let connection = try WireConnection(port: server.port)
            try connection.send(WireConnection.request("HEAD", "/identity"))
            let response = try connection.readResponse(isHeadRequest: true)
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "text/xml;charset=utf-8")
            #expect(response.header("Content-Length") == "\(full.body.count)")
            #expect(response.header("X-Plex-Protocol") == "1.0")
            #expect(connection.readExtraBytes(waitingMilliseconds: 200).isEmpty)
        }
    }

    @Test("Machine identifier matches everywhere")
    func machineIdentifierEverywhere() throws {
        try withLoopbackServer { server in
            let identity = mediaContainerXML(try server.send("/identity"))
            let root = mediaContainerXML(try server.sendAsOwner("/"))
            let device = xmlChildren(try server.sendAsOwner(resourcesTarget), named: "Device").first
            #expect(identity?.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
            #expect(root?.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
            #expect(device?.attributes["clientIdentifier"] == LoopbackFixture.machineIdentifier)
        }
    }
}

// MARK: - Accept negotiation

/// An `Accept`-style header and the format it must select.
struct NegotiationCase: Sendable, CustomTestStringConvertible {
    let label: String
    let headers: [(String, String)]
    let isJSON: Bool

    var testDescription: String { label }
}

@Suite("Accept negotiation over loopback")
struct NegotiationTests {
    static let cases: [NegotiationCase] = [
        NegotiationCase(label: "no Accept", headers: [], isJSON: false),
        NegotiationCase(label: "*/*", headers: [("Accept", "*/*")], isJSON: false),
        NegotiationCase(label: "application/xml", headers: [("Accept", "application/xml")], isJSON: false),
        NegotiationCase(label: "application/json", headers: [("Accept", "application/json")], isJSON: true),
        NegotiationCase(label: "JSON before */*", headers: [("Accept", "application/json, */*")], isJSON: true),
        NegotiationCase(
            label: "JSON above lower XML", headers: [("Accept", "application/xml;q=0.9, application/json")],
            isJSON: true),
        NegotiationCase(
            label: "JSON below XML", headers: [("Accept", "text/xml, application/json;q=0.5")], isJSON: false),
        NegotiationCase(label: "JSON with q=0", headers: [("Accept", "application/json;q=0")], isJSON: false),
        NegotiationCase(label: "accepts header ignored", headers: [("accepts", "application/json")], isJSON: false),
    ]

    @Test("Accept selects the format", arguments: ["/identity", "/", mintTarget, resourcesTarget], cases)
    func selectsFormat(_ target: String, _ testCase: NegotiationCase) throws {
        try withLoopbackServer { server in
            let method = target == mintTarget ? "POST" : "GET"
            let response = try server.send(method, target, headers: [ownerToken] + testCase.headers)
            #expect(response.status == 200)
            if testCase.isJSON {
                #expect(expectJSONContainer(response) != nil)
            } else {
                #expect(expectXMLContainer(response) != nil)
            }
        }
    }
}

// MARK: - Server root

@Suite("Server root over loopback")
struct ServerRootTests {
    static let rejectedCases: [EndpointCase] = [
        EndpointCase("no token", "/", status: 401),
        EndpointCase("empty header token", "/", headers: [("X-Plex-Token", "")], status: 401),
        EndpointCase("empty query token", "/?X-Plex-Token=", status: 401),
        EndpointCase("wrong header token", "/", headers: [("X-Plex-Token", "wrong-token")], status: 401),
        EndpointCase("wrong query token", "/?X-Plex-Token=wrong-token", status: 401),
        EndpointCase(
            "unknown transient token", "/",
            headers: [("X-Plex-Token", "transient-00000000-0000-4000-8000-000000000000")], status: 401),
    ]

    @Test("Root rejects missing and wrong tokens", arguments: rejectedCases)
    func rejectsTokens(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            expectHTMLError(response, status: testCase.status, title: "Unauthorized")
        }
    }

    static let acceptedCases: [EndpointCase] = [
        EndpointCase("owner header token", "/", headers: [ownerToken], status: 200),
        EndpointCase("owner query token", "/?X-Plex-Token=\(LoopbackFixture.adminToken)", status: 200),
        EndpointCase(
            "empty header then owner query token", "/?X-Plex-Token=\(LoopbackFixture.adminToken)",
            headers: [("X-Plex-Token", "")], status: 200),
        EndpointCase(
            "lowercase header name", "/", headers: [("x-plex-token", LoopbackFixture.adminToken)], status: 200),
        EndpointCase("shared header token", "/", headers: [sharedToken], status: 200),
        EndpointCase("shared query token", "/?X-Plex-Token=\(LoopbackFixture.sharedToken)", status: 200),
        EndpointCase("HEAD with owner token", "HEAD", "/", headers: [ownerToken], status: 200),
    ]

    @Test("Root accepts configured tokens", arguments: acceptedCases)
    func acceptsTokens(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            #expect(response.status == testCase.status)
            #expect(response.header("Content-Type") == "text/xml;charset=utf-8")
            if testCase.method != "HEAD" {
                #expect(mediaContainerXML(response)?.attributes["friendlyName"] == LoopbackFixture.friendlyName)
            }
        }
    }

    @Test("Root accepts transient tokens", arguments: [LoopbackFixture.adminToken, LoopbackFixture.sharedToken])
    func acceptsTransientToken(_ parentToken: String) throws {
        try withLoopbackServer { server in
            let token = try server.mintTransientToken(as: parentToken)
            let byHeader = try server.send("/", headers: [("X-Plex-Token", token)])
            let byQuery = try server.send("/?X-Plex-Token=\(token)")
            #expect(byHeader.status == 200)
            #expect(byQuery.status == 200)
        }
    }

    static let booleanAttributes = [
        "allowCameraUpload", "allowChannelAccess", "allowMediaDeletion", "allowSharing", "allowSync",
        "allowTuners", "backgroundProcessing", "certificate", "companionProxy", "eventStream", "hubSearch",
        "itemClusters", "mediaProviders", "multiuser", "myPlex", "myPlexSubscription", "pluginHost",
        "pushNotifications", "sync", "transcoderAudio", "transcoderLyrics", "transcoderPhoto",
        "transcoderSubtitles", "transcoderVideo", "updater", "voiceSearch",
    ]
    static let integerAttributes = [
        "size", "livetv", "musicAnalysis", "offlineTranscode", "readOnlyLibraries", "streamingBrainABRVersion",
        "streamingBrainVersion", "transcoderActiveVideoSessions", "updatedAt",
    ]
    static let stringAttributes = [
        "countryCode", "diagnostics", "friendlyName", "machineIdentifier", "myPlexMappingState",
        "myPlexSigninState", "myPlexUsername", "ownerFeatures", "platform", "platformVersion",
        "transcoderVideoBitrates", "transcoderVideoQualities", "transcoderVideoResolutions", "version",
    ]

    @Test("Root XML attributes are typed")
    func xmlAttributes() throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner("/")
            let root = try #require(expectXMLContainer(response))
            #expect(response.text.contains("\n<MediaContainer size=\""))
            for name in Self.booleanAttributes {
                #expect(["0", "1"].contains(root.attributes[name]), "\(name) is \(root.attributes[name] ?? "missing")")
            }
            for name in Self.integerAttributes {
                let value = root.attributes[name] ?? ""
                #expect(value.wholeMatch(of: /[0-9]+/) != nil, "\(name) is \(value.debugDescription)")
            }
            for name in Self.stringAttributes {
                #expect(root.attributes[name] != nil, "\(name) is missing")
            }
            #expect(root.attributes["transcoderVideo"] == "0")
            #expect(root.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
            #expect(root.attributes["version"] == LoopbackFixture.version)
            #expect(root.attributes["multiuser"] == "1")
        }
    }

    @Test("Root JSON attributes are typed")
    func jsonAttributes() throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner("/", headers: [acceptJSON])
            let container = try #require(expectJSONContainer(response))
            for name in Self.booleanAttributes {
                #expect(isJSONBoolean(container[name] as Any), "\(name) is not a JSON boolean")
            }
            for name in Self.integerAttributes {
                #expect(container[name] is NSNumber, "\(name) is not a number")
                #expect(!isJSONBoolean(container[name] as Any), "\(name) is a boolean")
            }
            for name in Self.stringAttributes {
                #expect(container[name] is String, "\(name) is not a string")
            }
            #expect(container["transcoderVideo"] as? Bool == false)
            #expect(container["_elementType"] == nil)
        }
    }

    @Test("Root size counts directories")
    func sizeCountsDirectories() throws {
        try withLoopbackServer { server in
            let xml = try server.sendAsOwner("/")
            let root = try #require(mediaContainerXML(xml))
            let directories = xmlChildren(xml, named: "Directory")
            #expect(!directories.isEmpty)
            #expect(root.attributes["size"] == "\(directories.count)")
            #expect(parseXML(xml.body)?.count == directories.count + 1)
            for directory in directories {
                #expect(directory.attributes["key"] != nil)
                #expect(directory.attributes["title"] != nil)
                #expect(directory.attributes["count"].flatMap { Int($0) } != nil)
            }

            let json = try server.sendAsOwner("/", headers: [acceptJSON])
            let container = try #require(mediaContainerJSON(json))
            let jsonDirectories = try #require(container["Directory"] as? [[String: Any]])
            #expect(container["size"] as? Int == jsonDirectories.count)
            #expect(jsonDirectories.count == directories.count)
        }
    }

    static let awkwardName = "Den <&\"'> Sérvér 漢字 🎬"

    @Test("Friendly name escapes in XML")
    func friendlyNameXML() throws {
        try withLoopbackServer(settings: ["friendlyName": Self.awkwardName]) { server in
            let response = try server.sendAsOwner("/")
            #expect(response.text.contains("friendlyName=\"Den &lt;&amp;&quot;&apos;&gt; Sérvér 漢字 🎬\""))
            #expect(mediaContainerXML(response)?.attributes["friendlyName"] == Self.awkwardName)
        }
    }

    @Test("Friendly name round-trips in JSON")
    func friendlyNameJSON() throws {
        try withLoopbackServer(settings: ["friendlyName": Self.awkwardName]) { server in
            let response = try server.sendAsOwner("/", headers: [acceptJSON])
            #expect(mediaContainerJSON(response)?["friendlyName"] as? String == Self.awkwardName)
        }
    }

    @Test("Friendly name escapes in resources")
    func friendlyNameResources() throws {
        try withLoopbackServer(settings: ["friendlyName": Self.awkwardName]) { server in
            let xml = try server.sendAsOwner(resourcesTarget)
            let json = try server.sendAsOwner(resourcesTarget, headers: [acceptJSON])
            let jsonDevice = mediaContainerJSON(json)?["Device"] as? [String: Any]
            #expect(xmlChildren(xml, named: "Device").first?.attributes["name"] == Self.awkwardName)
            #expect(jsonDevice?["name"] as? String == Self.awkwardName)
        }
    }
}

// MARK: - Fields on every response

@Suite("Response fields over loopback")
struct ResponseFieldTests {
    static let cases: [EndpointCase] = [
        EndpointCase("identity 200", "/identity", status: 200),
        EndpointCase("identity HEAD 200", "HEAD", "/identity", status: 200),
        EndpointCase("root 200", "/", headers: [ownerToken], status: 200),
        EndpointCase("token 200", "POST", mintTarget, headers: [ownerToken], status: 200),
        EndpointCase("resources 200", resourcesTarget, headers: [ownerToken], status: 200),
        EndpointCase("token 400", "/security/token?type=other&scope=all", headers: [ownerToken], status: 400),
        EndpointCase("resources 400", "/security/resources", headers: [ownerToken], status: 400),
        EndpointCase("root 401", "/", status: 401),
        EndpointCase("token 403", mintTarget, status: 403),
        EndpointCase("resources 403", resourcesTarget, headers: [sharedToken], status: 403),
        EndpointCase("unknown path 404", "/nowhere", status: 404),
        EndpointCase(
            "unknown source 404", "/security/resources?source=provider://unknown", headers: [ownerToken],
            status: 404),
        EndpointCase("DELETE identity 405", "DELETE", "/identity", status: 405),
        EndpointCase("OPTIONS root 200", "OPTIONS", "/", status: 200),
        EndpointCase("OPTIONS unknown path 200", "OPTIONS", "/nowhere", status: 200),
    ]

    @Test("Plex fields on every response", arguments: cases)
    func plexFields(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            #expect(response.status == testCase.status)
            #expect(response.values("X-Plex-Protocol") == ["1.0"])
            #expect(response.values("Cache-Control") == ["no-cache"])
            #expect(response.header("Keep-Alive")?.wholeMatch(of: /timeout=[0-9]+/) != nil)
        }
    }

    @Test("CORS fields with Origin", arguments: cases)
    func corsFields(_ testCase: EndpointCase) throws {
        let origin = "https://app.plex.tv"
        try withLoopbackServer { server in
            let response = try server.send(
                testCase.method, testCase.target, headers: testCase.headers + [("Origin", origin)])
            #expect(response.status == testCase.status)
            #expect(response.values("Access-Control-Allow-Origin") == [origin])
            #expect(response.values("Vary") == ["Origin, X-Plex-Token"])
        }
    }

    @Test("No CORS fields without Origin", arguments: cases)
    func noCORSFields(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            #expect(response.status == testCase.status)
            #expect(response.header("Access-Control-Allow-Origin") == nil)
        }
    }
}

// MARK: - Errors and preflight

@Suite("Errors and preflight over loopback")
struct ErrorAndPreflightTests {
    @Test("Unknown path is 404", arguments: ["/nowhere", "/identity/extra", "/security/tokens", "/library/sections"])
    func unknownPath(_ target: String) throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner(target)
            expectHTMLError(response, status: 404, title: "Not Found")
            #expect(response.header("X-Plex-Protocol") == "1.0")
            #expect(response.header("Cache-Control") == "no-cache")
        }
    }

    static let wrongMethodCases: [EndpointCase] = [
        EndpointCase("DELETE identity", "DELETE", "/identity", status: 405),
        EndpointCase("POST identity", "POST", "/identity", status: 405),
        EndpointCase("DELETE root", "DELETE", "/", headers: [ownerToken], status: 405),
        EndpointCase("POST resources", "POST", resourcesTarget, headers: [ownerToken], status: 405),
    ]

    @Test("Wrong method is 405 with Allow", arguments: wrongMethodCases)
    func wrongMethod(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            expectHTMLError(response, status: testCase.status, title: "Method Not Allowed")
            let allowed = response.listItems("Allow")
            #expect(allowed.contains("get"))
            #expect(allowed.contains("head"))
            #expect(!allowed.contains(testCase.method.lowercased()))
        }
    }

    @Test("OPTIONS is a preflight", arguments: ["/", "/identity", "/security/token", "/security/resources", "/nowhere"])
    func preflight(_ target: String) throws {
        let origin = "https://app.plex.tv"
        try withLoopbackServer { server in
            let response = try server.send(
                "OPTIONS", target,
                headers: [
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "GET"),
                    ("Access-Control-Request-Headers", "X-Plex-Token, X-Plex-Client-Identifier, X-Custom-Field"),
                ])
            #expect(response.status == 200)
            #expect(response.header("Access-Control-Allow-Origin") == origin)
            let allowedHeaders = response.listItems("Access-Control-Allow-Headers")
            #expect(allowedHeaders.contains("x-plex-token"))
            #expect(allowedHeaders.contains("x-plex-client-identifier"))
            #expect(allowedHeaders.contains("x-custom-field"))
            let allowedMethods = response.listItems("Access-Control-Allow-Methods")
            #expect(allowedMethods.contains("get"))
            #expect(allowedMethods.contains("post"))
            #expect(response.header("Access-Control-Max-Age") == "1209600")
            #expect(response.header("X-Plex-Protocol") == "1.0")
            #expect(response.header("Cache-Control") == "no-cache")
        }
    }

    @Test("Preflight without requested headers")
    func preflightWithoutRequestedHeaders() throws {
        try withLoopbackServer { server in
            let response = try server.send("OPTIONS", "/", headers: [("Origin", "http://192.0.2.1:32400")])
            #expect(response.status == 200)
            #expect(response.listItems("Access-Control-Allow-Headers").contains("x-plex-token"))
        }
    }

    @Test("Trailing slash on security paths")
    func securityTrailingSlash() throws {
        try withLoopbackServer { server in
            let mint = try server.send("POST", "/security/token/?type=delegation&scope=all", headers: [ownerToken])
            let resources = try server.sendAsOwner("/security/resources/?source=\(ownServerSource)")
            #expect(mint.status == 200)
            #expect(mediaContainerXML(mint)?.attributes["token"] != nil)
            #expect(resources.status == 200)
            #expect(xmlChildren(resources, named: "Device").count == 1)
        }
    }

    @Test("Gzip request gets a readable body")
    func gzipRequest() throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner("/", headers: [("Accept-Encoding", "gzip")])
            #expect(response.status == 200)
            if response.header("Content-Encoding") == "gzip" {
                #expect(response.header("X-Plex-Content-Original-Length") != nil)
                #expect(response.header("X-Plex-Content-Compressed-Length") == "\(response.body.count)")
            } else {
                #expect(response.header("Content-Encoding") == nil)
                #expect(mediaContainerXML(response) != nil)
            }
        }
    }

    @Test("Malformed request gets Plex fields")
    func malformedRequest() throws {
        try withLoopbackServer { server in
            let connection = try WireConnection(port: server.port)
            try connection.send("GET /identity HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
            let response = try connection.readResponse()
            #expect(response.status == 400)
            #expect(response.header("X-Plex-Protocol") == "1.0")
            #expect(response.header("Cache-Control") == "no-cache")
            #expect(response.header("Content-Type") == "text/html")
        }
    }

    @Test("OPTIONS on token does not mint")
    func preflightDoesNotMint() throws {
        try withLoopbackServer(settings: ["maxTransientTokens": 1]) { server in
            let preflight = try server.send(
                "OPTIONS", mintTarget, headers: [ownerToken, ("Origin", "https://app.plex.tv")])
            #expect(preflight.status == 200)
            #expect(preflight.body.isEmpty)
            #expect(!preflight.text.contains("transient-"))
            // With room for one token, a mint after the preflight succeeds
            // only if the preflight minted none.
            let mint = try server.send("POST", mintTarget, headers: [ownerToken])
            #expect(mint.status == 200)
        }
    }
}

// MARK: - Transient tokens

@Suite("Transient token endpoint over loopback")
struct TransientTokenEndpointTests {
    @Test("Token mints with any method", arguments: ["GET", "POST", "PUT"])
    func mints(_ method: String) throws {
        try withLoopbackServer { server in
            let response = try server.send(method, mintTarget, headers: [ownerToken])
            #expect(response.status == 200)
            let root = try #require(expectXMLContainer(response))
            #expect(response.text.contains("\n<MediaContainer size=\"0\" token=\""))
            #expect(root.attributes["size"] == "0")
            let token = try #require(root.attributes["token"])
            #expect(token.wholeMatch(of: LoopbackFixture.transientTokenPattern) != nil)
            #expect(try server.send("/", headers: [("X-Plex-Token", token)]).status == 200)
        }
    }

    @Test("Token mints in JSON")
    func mintsJSON() throws {
        try withLoopbackServer { server in
            let response = try server.send("POST", mintTarget, headers: [ownerToken, acceptJSON])
            #expect(response.status == 200)
            let container = try #require(expectJSONContainer(response))
            #expect(container["size"] as? Int == 0)
            let token = try #require(container["token"] as? String)
            #expect(token.wholeMatch(of: LoopbackFixture.transientTokenPattern) != nil)
        }
    }

    @Test("Token mints from query token")
    func mintsFromQueryToken() throws {
        try withLoopbackServer { server in
            let response = try server.send("GET", mintTarget + "&X-Plex-Token=\(LoopbackFixture.adminToken)")
            #expect(response.status == 200)
            #expect(mediaContainerXML(response)?.attributes["token"] != nil)
        }
    }

    @Test("Each mint is a new token")
    func mintsDistinctTokens() throws {
        try withLoopbackServer { server in
            let first = try server.mintTransientToken(as: LoopbackFixture.adminToken)
            let second = try server.mintTransientToken(as: LoopbackFixture.adminToken)
            #expect(first != second)
        }
    }

    @Test(
        "Token query must be delegation and all",
        arguments: [
            "/security/token", "/security/token?scope=all", "/security/token?type=delegation",
            "/security/token?type=other&scope=all", "/security/token?type=delegation&scope=other",
            "/security/token?type=Delegation&scope=all", "/security/token?type=&scope=all",
        ])
    func rejectsQuery(_ target: String) throws {
        try withLoopbackServer { server in
            let response = try server.send("POST", target, headers: [ownerToken])
            expectHTMLError(response, status: 400, title: "Bad Request")
        }
    }

    static let forbiddenCases: [EndpointCase] = [
        EndpointCase("no token", "POST", mintTarget, status: 403),
        EndpointCase("empty token", "POST", mintTarget, headers: [("X-Plex-Token", "")], status: 403),
        EndpointCase("wrong token", "POST", mintTarget, headers: [("X-Plex-Token", "wrong-token")], status: 403),
        EndpointCase("wrong query token", "GET", mintTarget + "&X-Plex-Token=wrong-token", status: 403),
        EndpointCase(
            "unknown transient token", "POST", mintTarget,
            headers: [("X-Plex-Token", "transient-00000000-0000-4000-8000-000000000000")], status: 403),
    ]

    @Test("Token rejects missing and wrong tokens", arguments: forbiddenCases)
    func rejectsCaller(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            expectHTMLError(response, status: testCase.status, title: "Forbidden")
        }
    }

    @Test("Transient caller cannot mint", arguments: [LoopbackFixture.adminToken, LoopbackFixture.sharedToken])
    func transientCallerCannotMint(_ parentToken: String) throws {
        try withLoopbackServer { server in
            let token = try server.mintTransientToken(as: parentToken)
            let response = try server.send("POST", mintTarget, headers: [("X-Plex-Token", token)])
            expectHTMLError(response, status: 403, title: "Forbidden")
        }
    }

    @Test("Token cap rejects the next mint")
    func capReached() throws {
        try withLoopbackServer(settings: ["maxTransientTokens": 2]) { server in
            let first = try server.send("POST", mintTarget, headers: [ownerToken])
            let second = try server.send("POST", mintTarget, headers: [ownerToken])
            let third = try server.send("POST", mintTarget, headers: [ownerToken])
            #expect(first.status == 200)
            #expect(second.status == 200)
            expectHTMLError(third, status: 403, title: "Forbidden")
        }
    }

    @Test("Shared transient token keeps shared rights")
    func sharedTransientToken() throws {
        try withLoopbackServer { server in
            let token = try server.mintTransientToken(as: LoopbackFixture.sharedToken)
            #expect(token.wholeMatch(of: LoopbackFixture.transientTokenPattern) != nil)
            let root = try server.send("/", headers: [("X-Plex-Token", token)])
            let resources = try server.send(resourcesTarget, headers: [("X-Plex-Token", token)])
            #expect(root.status == 200)
            expectHTMLError(resources, status: 403, title: "Forbidden")
        }
    }
}

// MARK: - Token lifetime

@Suite("Transient token lifetime over loopback")
struct TransientTokenLifetimeTests {
    @Test("Restart ends transient tokens")
    func restartEndsTokens() throws {
        let first = try LoopbackServer()
        let token: String
        do {
            defer { first.stop() }
            token = try first.mintTransientToken(as: LoopbackFixture.adminToken)
            #expect(try first.send("/", headers: [("X-Plex-Token", token)]).status == 200)
        }

        try withLoopbackServer { second in
            let response = try second.send("/", headers: [("X-Plex-Token", token)])
            expectHTMLError(response, status: 401, title: "Unauthorized")
            #expect(try second.sendAsOwner("/").status == 200)
        }
    }

    @Test("Transient token expires after its lifetime")
    func tokenExpires() throws {
        try withLoopbackServer(settings: ["transientTokenLifetimeSeconds": 1]) { server in
            let token = try server.mintTransientToken(as: LoopbackFixture.adminToken)
            // The store counts whole seconds, so a 1-second token is gone
            // within 2 seconds of minting.
            Thread.sleep(forTimeInterval: 2.1)
            let response = try server.send("/", headers: [("X-Plex-Token", token)])
            expectHTMLError(response, status: 401, title: "Unauthorized")
        }
    }
}

// MARK: - Resources

@Suite("Resources endpoint over loopback")
struct ResourcesEndpointTests {
    static var advertised: [[String: Any]] {
        [
            ["protocol": "http", "address": "192.0.2.10", "port": 32400, "local": true],
            ["protocol": "https", "address": "2001:db8::10", "port": 443, "local": false, "relay": true],
        ]
    }

    static var vodSource: [String: Any] {
        [
            "source": "provider://tv.plex.provider.vod",
            "name": "Plex VOD",
            "clientIdentifier": "tv.plex.provider.vod",
            "accessToken": "vod-token",
            "connections": [["protocol": "https", "address": "vod.provider.plex.tv", "port": 443, "local": false]],
        ]
    }

    static let cabinIdentifier = "0123456789abcdef0123456789abcdef01234567"
    static var cabinSource: [String: Any] {
        [
            "source": "server://\(cabinIdentifier)",
            "name": "Cabin",
            "clientIdentifier": cabinIdentifier,
            "connections": [["protocol": "http", "address": "192.0.2.20", "port": 32400, "local": true]],
        ]
    }

    static var musicSource: [String: Any] {
        [
            "source": "provider://tv.plex.provider.music",
            "name": "Plex Music",
            "clientIdentifier": "tv.plex.provider.music",
            "connections": [],
        ]
    }

    @Test("Own server device in XML")
    func ownDeviceXML() throws {
        try withLoopbackServer(settings: ["advertisedConnections": Self.advertised]) { server in
            let response = try server.sendAsOwner(resourcesTarget)
            #expect(response.status == 200)
            let root = try #require(expectXMLContainer(response))
            #expect(response.text.contains("\n<MediaContainer size=\"1\">"))
            #expect(root.attributes["size"] == "1")

            let devices = xmlChildren(response, named: "Device")
            try #require(devices.count == 1)
            let device = devices[0]
            #expect(device.attributes["name"] == LoopbackFixture.friendlyName)
            #expect(device.attributes["clientIdentifier"] == LoopbackFixture.machineIdentifier)
            let token = try #require(device.attributes["accessToken"])
            #expect(token.wholeMatch(of: LoopbackFixture.transientTokenPattern) != nil)

            let connections = (parseXML(response.body) ?? []).filter { $0.name == "Connection" }
            try #require(connections.count == 2)
            #expect(connections.allSatisfy { $0.depth == 2 })
            #expect(connections[0].attributes["protocol"] == "http")
            #expect(connections[0].attributes["address"] == "192.0.2.10")
            #expect(connections[0].attributes["port"] == "32400")
            #expect(connections[0].attributes["uri"] == "http://192.0.2.10:32400")
            #expect(connections[0].attributes["local"] == "1")
            #expect(connections[0].attributes["relay"] == nil)
            #expect(connections[1].attributes["protocol"] == "https")
            #expect(connections[1].attributes["address"] == "2001:db8::10")
            #expect(connections[1].attributes["port"] == "443")
            #expect(connections[1].attributes["uri"] == "https://[2001:db8::10]:443")
            #expect(connections[1].attributes["local"] == "0")
            #expect(connections[1].attributes["relay"] == "1")
        }
    }

    @Test("Own server device in JSON")
    func ownDeviceJSON() throws {
        try withLoopbackServer(settings: ["advertisedConnections": Self.advertised]) { server in
            let response = try server.sendAsOwner(resourcesTarget, headers: [acceptJSON])
            #expect(response.status == 200)
            let container = try #require(expectJSONContainer(response))
            #expect(container["size"] as? Int == 1)
            #expect(!(container["Device"] is [Any]))
            let device = try #require(container["Device"] as? [String: Any])
            #expect(device["name"] as? String == LoopbackFixture.friendlyName)
            #expect(device["clientIdentifier"] as? String == LoopbackFixture.machineIdentifier)
            let token = try #require(device["accessToken"] as? String)
            #expect(token.wholeMatch(of: LoopbackFixture.transientTokenPattern) != nil)

            let connections = try #require(device["Connection"] as? [[String: Any]])
            try #require(connections.count == 2)
            #expect(connections[0]["protocol"] as? String == "http")
            #expect(connections[0]["address"] as? String == "192.0.2.10")
            #expect(connections[0]["port"] as? Int == 32400)
            #expect(!isJSONBoolean(connections[0]["port"] as Any))
            #expect(connections[0]["uri"] as? String == "http://192.0.2.10:32400")
            #expect(isJSONBoolean(connections[0]["local"] as Any))
            #expect(connections[0]["local"] as? Bool == true)
            #expect(connections[0]["relay"] == nil)
            #expect(isJSONBoolean(connections[1]["local"] as Any))
            #expect(connections[1]["local"] as? Bool == false)
            #expect(isJSONBoolean(connections[1]["relay"] as Any))
            #expect(connections[1]["relay"] as? Bool == true)
        }
    }

    @Test("Device access token is fresh and works")
    func accessTokenWorks() throws {
        try withLoopbackServer { server in
            let first = xmlChildren(try server.sendAsOwner(resourcesTarget), named: "Device").first
            let second = xmlChildren(try server.sendAsOwner(resourcesTarget), named: "Device").first
            let token = try #require(first?.attributes["accessToken"])
            #expect(token != LoopbackFixture.adminToken)
            #expect(token != second?.attributes["accessToken"])
            #expect(try server.send("/", headers: [("X-Plex-Token", token)]).status == 200)
            #expect(try server.send(resourcesTarget, headers: [("X-Plex-Token", token)]).status == 200)
        }
    }

    @Test("Owner transient token gets resources")
    func ownerTransientToken() throws {
        try withLoopbackServer { server in
            let token = try server.mintTransientToken(as: LoopbackFixture.adminToken)
            let response = try server.send(resourcesTarget, headers: [("X-Plex-Token", token)])
            #expect(response.status == 200)
            let device = try #require(xmlChildren(response, named: "Device").first)
            let accessToken = try #require(device.attributes["accessToken"])
            #expect(try server.send("/", headers: [("X-Plex-Token", accessToken)]).status == 200)
        }
    }

    @Test("Connections follow listen address")
    func derivedConnections() throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner(resourcesTarget)
            #expect(response.status == 200)
            let connections = (parseXML(response.body) ?? []).filter { $0.name == "Connection" }
            try #require(connections.count == 1)
            #expect(connections[0].attributes["protocol"] == "http")
            #expect(connections[0].attributes["address"] == "127.0.0.1")
            #expect(connections[0].attributes["port"] == "\(server.port)")
            #expect(connections[0].attributes["uri"] == "http://127.0.0.1:\(server.port)")
            #expect(connections[0].attributes["local"] == "1")
            #expect(connections[0].attributes["relay"] == nil)
        }
    }

    static let identifier = LoopbackFixture.machineIdentifier

    @Test(
        "Own server source forms",
        arguments: [
            "server://\(identifier)",
            "server://\(identifier)/com.plexapp.plugins.library",
            "server%3A%2F%2F\(identifier)",
            "server%3A%2F%2F\(identifier)%2Fcom.plexapp.plugins.library",
        ])
    func sourceForms(_ source: String) throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner("/security/resources?source=\(source)")
            #expect(response.status == 200)
            let device = xmlChildren(response, named: "Device").first
            #expect(device?.attributes["clientIdentifier"] == LoopbackFixture.machineIdentifier)
        }
    }

    @Test("Resources accepts owner query token")
    func ownerQueryToken() throws {
        try withLoopbackServer { server in
            let response = try server.send(resourcesTarget + "&X-Plex-Token=\(LoopbackFixture.adminToken)")
            #expect(response.status == 200)
            #expect(xmlChildren(response, named: "Device").count == 1)
        }
    }

    @Test("Refresh values 0 and 1", arguments: ["0", "1"])
    func refreshValues(_ refresh: String) throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner(resourcesTarget + "&refresh=\(refresh)")
            #expect(response.status == 200)
            #expect(xmlChildren(response, named: "Device").count == 1)
        }
    }

    static let forbiddenCases: [EndpointCase] = [
        EndpointCase("no token", resourcesTarget, status: 403),
        EndpointCase("wrong token", resourcesTarget, headers: [("X-Plex-Token", "wrong-token")], status: 403),
        EndpointCase("shared token", resourcesTarget, headers: [sharedToken], status: 403),
        EndpointCase("shared query token", resourcesTarget + "&X-Plex-Token=\(LoopbackFixture.sharedToken)", status: 403),
        EndpointCase("no token and no source", "/security/resources", status: 403),
    ]

    @Test("Resources rejects non-owners", arguments: forbiddenCases)
    func rejectsCaller(_ testCase: EndpointCase) throws {
        try withLoopbackServer { server in
            let response = try server.send(testCase.method, testCase.target, headers: testCase.headers)
            expectHTMLError(response, status: testCase.status, title: "Forbidden")
        }
    }

    @Test(
        "Resources rejects bad queries",
        arguments: [
            "", "?source=", "?refresh=0", "?source=\(identifier)", "?source=server://", "?source=provider://",
            "?source=http://\(identifier)", "?source=provider://tv.plex.provider.vod/extra",
            "?source=server://\(identifier)&refresh=2", "?source=server://\(identifier)&refresh=true",
            "?source=server://\(identifier)&refresh=",
        ])
    func rejectsQuery(_ query: String) throws {
        try withLoopbackServer { server in
            let response = try server.sendAsOwner("/security/resources\(query)")
            expectHTMLError(response, status: 400, title: "Bad Request")
        }
    }

    @Test(
        "Unknown source is 404",
        arguments: ["provider://tv.plex.provider.unknown", "server://ffffffffffffffffffffffffffffffffffffffff"])
    func unknownSource(_ source: String) throws {
        try withLoopbackServer(settings: ["sources": [Self.vodSource]]) { server in
            let response = try server.sendAsOwner("/security/resources?source=\(source)")
            expectHTMLError(response, status: 404, title: "Not Found")
        }
    }

    @Test("Catalogue provider entry")
    func catalogueProvider() throws {
        try withLoopbackServer(settings: ["sources": [Self.vodSource, Self.cabinSource]]) { server in
            let response = try server.sendAsOwner("/security/resources?source=provider://tv.plex.provider.vod")
            #expect(response.status == 200)
            let root = try #require(expectXMLContainer(response))
            #expect(root.attributes["size"] == "1")
            let device = try #require(xmlChildren(response, named: "Device").first)
            #expect(device.attributes["name"] == "Plex VOD")
            #expect(device.attributes["clientIdentifier"] == "tv.plex.provider.vod")
            #expect(device.attributes["accessToken"] == "vod-token")
            let connections = (parseXML(response.body) ?? []).filter { $0.name == "Connection" }
            try #require(connections.count == 1)
            #expect(connections[0].attributes["uri"] == "https://vod.provider.plex.tv:443")
            #expect(connections[0].attributes["local"] == "0")
        }
    }

    @Test("Catalogue server entry in JSON")
    func catalogueServerJSON() throws {
        try withLoopbackServer(settings: ["sources": [Self.vodSource, Self.cabinSource]]) { server in
            let response = try server.sendAsOwner(
                "/security/resources?source=server://\(Self.cabinIdentifier)", headers: [acceptJSON])
            #expect(response.status == 200)
            let container = try #require(expectJSONContainer(response))
            let device = try #require(container["Device"] as? [String: Any])
            #expect(device["name"] as? String == "Cabin")
            #expect(device["clientIdentifier"] as? String == Self.cabinIdentifier)
            #expect(device["accessToken"] == nil)
            let connections = try #require(device["Connection"] as? [[String: Any]])
            #expect(connections.count == 1)
            #expect(connections.first?["address"] as? String == "192.0.2.20")
        }
    }

    /// Writes a configuration file for the loopback server with `sources`.
    private func writeConfiguration(to path: String, sources: [[String: Any]]) throws {
        let data = try LoopbackFixture.configurationJSON(["sources": sources])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    @Test("Refresh rereads configuration sources")
    func refreshReloads() throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/pmsd.json"
        try writeConfiguration(to: path, sources: [Self.vodSource])
        let configuration = try ServerConfiguration(contentsOfFile: path)
        let server = try LoopbackServer(configuration: configuration, configurationPath: path)
        defer { server.stop() }
        let musicTarget = "/security/resources?source=provider://tv.plex.provider.music"

        try writeConfiguration(to: path, sources: [Self.vodSource, Self.musicSource])
        let beforeRefresh = try server.sendAsOwner(musicTarget + "&refresh=0")
        expectHTMLError(beforeRefresh, status: 404, title: "Not Found")

        // The identity request is pipelined behind the refresh, so the server
        // reads it only after sending the response that waits for the reload.
        let connection = try WireConnection(port: server.port)
        try connection.send(
            WireConnection.request("GET", musicTarget + "&refresh=1", headers: [ownerToken])
                + WireConnection.request("GET", "/identity"))
        let refreshed = try connection.readResponse()
        let identity = try connection.readResponse()
        #expect(refreshed.status == 200)
        #expect(xmlChildren(refreshed, named: "Device").first?.attributes["name"] == "Plex Music")
        #expect(identity.status == 200)
        #expect(mediaContainerXML(identity)?.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
        #expect(connection.readExtraBytes(waitingMilliseconds: 100).isEmpty)

        let afterRefresh = try server.sendAsOwner(musicTarget)
        #expect(afterRefresh.status == 200)
    }

    @Test("Refresh drops removed sources")
    func refreshRemoves() throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/pmsd.json"
        try writeConfiguration(to: path, sources: [Self.vodSource])
        let server = try LoopbackServer(configuration: try ServerConfiguration(contentsOfFile: path), configurationPath: path)
        defer { server.stop() }
        let vodTarget = "/security/resources?source=provider://tv.plex.provider.vod"

        #expect(try server.sendAsOwner(vodTarget).status == 200)
        try writeConfiguration(to: path, sources: [])
        let refreshed = try server.sendAsOwner(vodTarget + "&refresh=1")
        expectHTMLError(refreshed, status: 404, title: "Not Found")
    }

    @Test("Refresh keeps catalogue on bad file")
    func refreshKeepsCatalogue() throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/pmsd.json"
        try writeConfiguration(to: path, sources: [Self.vodSource])
        let server = try LoopbackServer(configuration: try ServerConfiguration(contentsOfFile: path), configurationPath: path)
        defer { server.stop() }

        try Data("{ \"sources\": [".utf8).write(to: URL(fileURLWithPath: path))
        let response = try server.sendAsOwner("/security/resources?source=provider://tv.plex.provider.vod&refresh=1")
        #expect(response.status == 200)
        #expect(xmlChildren(response, named: "Device").first?.attributes["name"] == "Plex VOD")
    }

    @Test("Refresh with Origin keeps CORS fields")
    func refreshWithOrigin() throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/pmsd.json"
        try writeConfiguration(to: path, sources: [Self.vodSource])
        let server = try LoopbackServer(configuration: try ServerConfiguration(contentsOfFile: path), configurationPath: path)
        defer { server.stop() }

        let origin = "https://app.plex.tv"
        let found = try server.sendAsOwner(
            "/security/resources?source=provider://tv.plex.provider.vod&refresh=1", headers: [("Origin", origin)])
        let missing = try server.sendAsOwner(
            "/security/resources?source=provider://tv.plex.provider.none&refresh=1", headers: [("Origin", origin)])
        #expect(found.status == 200)
        #expect(found.header("Access-Control-Allow-Origin") == origin)
        #expect(missing.status == 404)
        #expect(missing.header("Access-Control-Allow-Origin") == origin)
        #expect(missing.header("X-Plex-Protocol") == "1.0")
    }
}

// MARK: - Allowed networks

@Suite("Allowed networks over loopback")
struct AllowedNetworkTests {
    @Test("Loopback network admits without token")
    func allowedLoopback() throws {
        try withLoopbackServer(settings: ["allowedNetworks": "127.0.0.1/32"]) { server in
            let root = try server.send("/")
            let resources = try server.send(resourcesTarget)
            let mint = try server.send("POST", mintTarget)
            #expect(root.status == 200)
            #expect(mediaContainerXML(root)?.attributes["machineIdentifier"] == LoopbackFixture.machineIdentifier)
            #expect(resources.status == 200)
            expectHTMLError(mint, status: 403, title: "Forbidden")
        }
    }

    @Test(
        "Allowed network entry forms",
        arguments: ["127.0.0.1", "127.0.0.0/8", "127.0.0.0/255.0.0.0", "10.0.0.0/8, 127.0.0.1", "::ffff:127.0.0.0/104"])
    func allowedForms(_ networks: String) throws {
        try withLoopbackServer(settings: ["allowedNetworks": networks]) { server in
            let response = try server.send("/")
            #expect(response.status == 200)
        }
    }

    @Test("Other network entries need token", arguments: ["10.0.0.0/8", "127.0.0.2", "128.0.0.0/1", "::1"])
    func otherForms(_ networks: String) throws {
        try withLoopbackServer(settings: ["allowedNetworks": networks]) { server in
            let response = try server.send("/")
            expectHTMLError(response, status: 401, title: "Unauthorized")
        }
    }

    @Test("Other network still needs token")
    func otherNetwork() throws {
        try withLoopbackServer(settings: ["allowedNetworks": "10.0.0.0/8"]) { server in
            let root = try server.send("/")
            let withToken = try server.sendAsOwner("/")
            expectHTMLError(root, status: 401, title: "Unauthorized")
            #expect(withToken.status == 200)
        }
    }
}

// MARK: - Configuration changes

@Suite("Configuration changes over loopback")
struct ConfigurationChangeTests {
    @Test("Apply renames and keeps tokens")
    func applyRenames() throws {
        try withLoopbackServer { server in
            let token = try server.mintTransientToken(as: LoopbackFixture.adminToken)
            let before = mediaContainerXML(try server.sendAsOwner("/"))
            #expect(before?.attributes["friendlyName"] == LoopbackFixture.friendlyName)

            let renamed = try ServerConfiguration(
                json: LoopbackFixture.configurationJSON(["friendlyName": "Renamed Den"]))
            try server.onLoop { plex in try plex.apply(renamed) }

            let after = mediaContainerXML(try server.sendAsOwner("/"))
            #expect(after?.attributes["friendlyName"] == "Renamed Den")
            let device = xmlChildren(try server.sendAsOwner(resourcesTarget), named: "Device").first
            #expect(device?.attributes["name"] == "Renamed Den")
            #expect(try server.send("/", headers: [("X-Plex-Token", token)]).status == 200)
        }
    }

    @Test("Removing shared user revokes its tokens")
    func removeSharedUser() throws {
        try withLoopbackServer { server in
            let sharedTransient = try server.mintTransientToken(as: LoopbackFixture.sharedToken)
            let ownerTransient = try server.mintTransientToken(as: LoopbackFixture.adminToken)
            #expect(try server.send("/", headers: [("X-Plex-Token", sharedTransient)]).status == 200)

            let withoutShared = try ServerConfiguration(
                json: LoopbackFixture.configurationJSON(["sharedTokens": [[String: String]]()]))
            try server.onLoop { plex in try plex.apply(withoutShared) }

            let revoked = try server.send("/", headers: [("X-Plex-Token", sharedTransient)])
            let removedUser = try server.send("/", headers: [sharedToken])
            let owner = try server.send("/", headers: [("X-Plex-Token", ownerTransient)])
            expectHTMLError(revoked, status: 401, title: "Unauthorized")
            expectHTMLError(removedUser, status: 401, title: "Unauthorized")
            #expect(owner.status == 200)
            #expect(mediaContainerXML(owner)?.attributes["multiuser"] == "0")
        }
    }
}
