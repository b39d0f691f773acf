#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The values of the `GET /` body that depend on the server. Every other attribute
/// describes a server with no transcoder, no sync, no media providers and no plex.tv
/// sign-in, so it is fixed.
public struct ServerInfo: Sendable, Equatable {
    /// The server name shown to clients.
    public var friendlyName: String
    /// 40 lowercase hexadecimal characters, the same as in `/identity`.
    public var machineIdentifier: String
    /// The version in `N.N.N.N-hhhhhhhhh` form.
    public var version: String
    /// The operating system name, such as `Linux`.
    public var platform: String
    /// The operating system release, such as `6.1.0-18-amd64`.
    public var platformVersion: String
    /// The time the server last changed, in seconds since the Unix epoch.
    public var updatedAt: Int
    /// Whether shared users are configured. Sets `multiuser` and `allowSharing`.
    public var hasSharedUsers: Bool
    /// The top-level paths the server serves, such as `["identity", "security"]`,
    /// each listed as a `Directory` child.
    public var directories: [String]

    /// Creates the server-dependent values of the `GET /` body.
    public init(
        friendlyName: String, machineIdentifier: String, version: String, platform: String = "Linux",
        platformVersion: String, updatedAt: Int, hasSharedUsers: Bool, directories: [String]
    ) {
        self.friendlyName = friendlyName
        self.machineIdentifier = machineIdentifier
        self.version = version
        self.platform = platform
        self.platformVersion = platformVersion
        self.updatedAt = updatedAt
        self.hasSharedUsers = hasSharedUsers
        self.directories = directories
    }

    /// Reads the kernel release from uname(2), or returns an empty string when uname fails.
    public static func currentPlatformVersion() -> String {
        var names = utsname()
        guard uname(&names) == 0 else {
            return ""
        }
        return withUnsafeBytes(of: &names.release) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

extension ResponseBody {
    /// Appends the `GET /` body: every root attribute that python-plexapi reads, with
    /// `size` first and equal to the number of `Directory` children, then one
    /// `<Directory count="1" key="K" title="K"/>` per served top-level path.
    ///
    /// Attribute names and value types follow the `GET /` responses of Plex Media Server
    /// and the types python-plexapi casts them to. A boolean is always `0`/`1` (or
    /// `false`/`true`), because python-plexapi fails on any other value. The states of a
    /// server that is not signed in to plex.tv are `myPlexMappingState="unknown"` and
    /// `myPlexSigninState="none"`.
    public static func appendServerInfo(to buffer: inout [UInt8], format: BodyFormat, info: ServerInfo) {
        beginContainer(in: &buffer, format: format)
        var attributes = AttributeWriter(format: format)
        attributes.write("size", info.directories.count, to: &buffer)
        attributes.write("allowCameraUpload", false, to: &buffer)
        attributes.write("allowChannelAccess", false, to: &buffer)
        attributes.write("allowMediaDeletion", false, to: &buffer)
        attributes.write("allowSharing", info.hasSharedUsers, to: &buffer)
        attributes.write("allowSync", false, to: &buffer)
        attributes.write("allowTuners", false, to: &buffer)
        attributes.write("backgroundProcessing", false, to: &buffer)
        attributes.write("certificate", false, to: &buffer)
        attributes.write("companionProxy", false, to: &buffer)
        attributes.write("countryCode", "", to: &buffer)
        attributes.write("diagnostics", "", to: &buffer)
        attributes.write("eventStream", false, to: &buffer)
        attributes.write("friendlyName", info.friendlyName, to: &buffer)
        attributes.write("hubSearch", false, to: &buffer)
        attributes.write("itemClusters", false, to: &buffer)
        attributes.write("livetv", 0, to: &buffer)
        attributes.write("machineIdentifier", info.machineIdentifier, to: &buffer)
        attributes.write("mediaProviders", false, to: &buffer)
        attributes.write("multiuser", info.hasSharedUsers, to: &buffer)
        attributes.write("musicAnalysis", 0, to: &buffer)
        attributes.write("myPlex", false, to: &buffer)
        attributes.write("myPlexMappingState", "unknown", to: &buffer)
        attributes.write("myPlexSigninState", "none", to: &buffer)
        attributes.write("myPlexSubscription", false, to: &buffer)
        attributes.write("myPlexUsername", "", to: &buffer)
        attributes.write("offlineTranscode", 0, to: &buffer)
        attributes.write("ownerFeatures", "", to: &buffer)
        attributes.write("platform", info.platform, to: &buffer)
        attributes.write("platformVersion", info.platformVersion, to: &buffer)
        attributes.write("pluginHost", false, to: &buffer)
        attributes.write("pushNotifications", false, to: &buffer)
        attributes.write("readOnlyLibraries", 0, to: &buffer)
        attributes.write("streamingBrainABRVersion", 0, to: &buffer)
        attributes.write("streamingBrainVersion", 0, to: &buffer)
        attributes.write("sync", false, to: &buffer)
        attributes.write("transcoderActiveVideoSessions", 0, to: &buffer)
        attributes.write("transcoderAudio", false, to: &buffer)
        attributes.write("transcoderLyrics", false, to: &buffer)
        attributes.write("transcoderPhoto", false, to: &buffer)
        attributes.write("transcoderSubtitles", false, to: &buffer)
        attributes.write("transcoderVideo", false, to: &buffer)
        attributes.write("transcoderVideoBitrates", "", to: &buffer)
        attributes.write("transcoderVideoQualities", "", to: &buffer)
        attributes.write("transcoderVideoResolutions", "", to: &buffer)
        attributes.write("updatedAt", info.updatedAt, to: &buffer)
        attributes.write("updater", false, to: &buffer)
        attributes.write("version", info.version, to: &buffer)
        attributes.write("voiceSearch", false, to: &buffer)

        switch format {
        case .xml:
            buffer.appendASCII(">\n")
            for directory in info.directories {
                buffer.appendASCII("<Directory")
                appendDirectoryAttributes(directory, to: &buffer, format: format)
                buffer.appendASCII("/>\n")
            }
            buffer.appendASCII("</MediaContainer>\n")
        case .json:
            buffer.appendASCII(",\"Directory\":[")
            for (index, directory) in info.directories.enumerated() {
                if index > 0 {
                    buffer.append(UInt8(ascii: ","))
                }
                buffer.append(UInt8(ascii: "{"))
                appendDirectoryAttributes(directory, to: &buffer, format: format)
                buffer.append(UInt8(ascii: "}"))
            }
            buffer.appendASCII("]}}")
        }
    }

    private static func appendDirectoryAttributes(_ path: String, to buffer: inout [UInt8], format: BodyFormat) {
        var attributes = AttributeWriter(format: format)
        attributes.write("count", 1, to: &buffer)
        attributes.write("key", path, to: &buffer)
        attributes.write("title", path, to: &buffer)
    }
}
