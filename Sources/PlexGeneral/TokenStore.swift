#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rights that a request's token grants.
public enum AccessLevel: Sendable, Hashable {
    /// The server owner, who has the admin token.
    case owner
    /// A shared user, identified by the name given in the configuration.
    case shared(name: String)
}

/// In-memory transient tokens (`transient-<UUID>`), each carrying the access level
/// of the token it was minted from.
///
/// The store has no locks, so only the server's event loop thread may use it.
/// Times are whole seconds from a monotonic clock, such as `currentTime()`.
/// A token minted at `now` is valid while the time is below `now + lifetimeSeconds`.
///
/// Each token is kept as its 16 UUID bytes plus an expiry and an index into a table
/// of interned access levels, so a live token costs a dictionary bucket of 32 bytes
/// and a heap slot of 24 bytes. One million live tokens grew RSS by about 90 MiB in a
/// release build on x86_64 Linux, and a test checks that they stay under 256 MiB.
/// The store never prints or logs token values, and its `customMirror` hides them from `dump`.
public final class TransientTokenStore: CustomReflectable {
    /// The maximum lifetime of a transient token, 48 hours, as Plex's API description states.
    public static let maximumLifetimeSeconds = 172_800

    /// Seconds from minting until a new token expires, from 1 to `maximumLifetimeSeconds`.
    /// Values outside that range are clamped. Tokens already minted keep their expiry.
    public var lifetimeSeconds: Int {
        didSet {
            lifetimeSeconds = min(max(lifetimeSeconds, 1), Self.maximumLifetimeSeconds)
        }
    }

    /// The maximum number of live tokens. `mint` returns nil while the store has this many.
    public var maximumCount: Int

    private var tokens: [TokenKey: TokenEntry] = [:]
    private var expiryHeap = ExpiryHeap()
    private var levels: [AccessLevel] = [.owner]
    private var levelIndices: [AccessLevel: UInt32] = [.owner: 0]
    private var randomGenerator = SystemRandomNumberGenerator()
    /// Kernel CSPRNG output read ahead from /dev/urandom in 4 KiB blocks, so
    /// minting costs a few system calls per 256 tokens rather than two per
    /// token. Each word is used once.
    private var randomPool = [UInt64](repeating: 0, count: 512)
    private var randomPoolNext = 512

    /// Creates an empty store. `lifetimeSeconds` is clamped to 1 through `maximumLifetimeSeconds`.
    public init(lifetimeSeconds: Int = TransientTokenStore.maximumLifetimeSeconds, maximumCount: Int = 1_000_000) {
        self.lifetimeSeconds = min(max(lifetimeSeconds, 1), Self.maximumLifetimeSeconds)
        self.maximumCount = maximumCount
    }

    /// The number of stored tokens, including expired ones that `sweep` has not removed yet.
    public var count: Int {
        tokens.count
    }

    /// Mints a token with the given access level, or returns nil when `maximumCount`
    /// live tokens exist.
    ///
    /// The UUID is version 4 with 122 random bits from the kernel CSPRNG, read
    /// from /dev/urandom in blocks of 4 KiB. When the store is full
    /// it first sweeps expired tokens, which costs time proportional to their number.
    public func mint(level: AccessLevel, now: Int) -> String? {
        if tokens.count >= maximumCount {
            sweep(now: now)
            if tokens.count >= maximumCount {
                return nil
            }
        }

        var key = randomKey()
        while tokens[key] != nil {
            key = randomKey()
        }
        let expiry = now + lifetimeSeconds
        tokens[key] = TokenEntry(expiry: expiry, levelIndex: internedIndex(of: level))
        expiryHeap.push(ExpiryHeap.Item(expiry: expiry, key: key))
        return formatToken(key)
    }

    /// Returns the access level of a live token, or nil when the token is unknown,
    /// malformed or expired, whether or not `sweep` has removed it yet.
    public func lookup(_ token: some Collection<UInt8>, now: Int) -> AccessLevel? {
        let key =
            token.withContiguousStorageIfAvailable { parseToken($0) }
            ?? Array(token).withUnsafeBufferPointer { parseToken($0) }
        guard let key, let entry = tokens[key], entry.expiry > now else {
            return nil
        }
        return levels[Int(entry.levelIndex)]
    }

    /// Returns the access level of a live token given as a string, by the rules of `lookup(_:now:)`.
    public func lookup(_ token: String, now: Int) -> AccessLevel? {
        var token = token
        return token.withUTF8 { lookup($0, now: now) }
    }

    /// Removes the expired tokens and returns how many it removed.
    ///
    /// Expiries sit in a min-heap, so the cost is O(k log n) for k expired tokens among
    /// n stored, and the heap stays correct when `lifetimeSeconds` changes between mints.
    @discardableResult
    public func sweep(now: Int) -> Int {
        var removed = 0
        while let earliest = expiryHeap.first, earliest.expiry <= now {
            expiryHeap.popFirst()
            if let entry = tokens[earliest.key], entry.expiry == earliest.expiry {
                tokens[earliest.key] = nil
                removed += 1
            }
        }
        return removed
    }

    /// Removes every token whose access level matches, for example the tokens of a shared
    /// user that a configuration reload removed, and returns how many it removed.
    /// This scans all stored tokens.
    @discardableResult
    public func removeAll(where shouldRemove: (AccessLevel) -> Bool) -> Int {
        var removedIndices = Set<UInt32>()
        for (index, level) in levels.enumerated() where shouldRemove(level) {
            removedIndices.insert(UInt32(index))
        }
        guard !removedIndices.isEmpty else {
            return 0
        }
        let before = tokens.count
        tokens = tokens.filter { !removedIndices.contains($0.value.levelIndex) }
        expiryHeap = ExpiryHeap(items: tokens.map { ExpiryHeap.Item(expiry: $0.value.expiry, key: $0.key) })
        return before - tokens.count
    }

    /// A mirror that shows the token count but never a token.
    public var customMirror: Mirror {
        Mirror(self, children: ["count": tokens.count, "lifetimeSeconds": lifetimeSeconds])
    }

    /// Reads CLOCK_BOOTTIME in whole seconds. Unlike CLOCK_MONOTONIC it keeps counting
    /// while the machine is suspended, so a token's lifetime is measured in real time.
    public static func currentTime() -> Int {
        var time = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_BOOTTIME, &time)
        #else
        clock_gettime(CLOCK_MONOTONIC, &time)
        #endif
        return time.tv_sec
    }

    private func internedIndex(of level: AccessLevel) -> UInt32 {
        if let index = levelIndices[level] {
            return index
        }
        let index = UInt32(levels.count)
        levels.append(level)
        levelIndices[level] = index
        return index
    }

    private func nextRandomWord() -> UInt64 {
        if randomPoolNext == randomPool.count {
            refillRandomPool()
        }
        let word = randomPool[randomPoolNext]
        randomPool[randomPoolNext] = 0
        randomPoolNext += 1
        return word
    }

    private func refillRandomPool() {
        let filled = randomPool.withUnsafeMutableBytes { bytes -> Bool in
            let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return false }
            defer { close(descriptor) }
            var offset = 0
            while offset < bytes.count {
                let count = read(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        if !filled {
            // /dev/urandom cannot be read: SystemRandomNumberGenerator reads
            // the kernel CSPRNG through getrandom(2), or stops the process.
            for index in randomPool.indices {
                randomPool[index] = randomGenerator.next()
            }
        }
        randomPoolNext = 0
    }

    private func randomKey() -> TokenKey {
        let high = nextRandomWord()
        let low = nextRandomWord()
        // RFC 9562: the version nibble (the high nibble of byte 6) is 4, and the variant
        // bits (the top two bits of byte 8) are 10.
        return TokenKey(
            high: high & 0xFFFF_FFFF_FFFF_0FFF | 0x0000_0000_0000_4000,
            low: low & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000)
    }
}

/// The 128 bits of a token's UUID, in the order they are written.
struct TokenKey: Hashable {
    var high: UInt64
    var low: UInt64
}

private struct TokenEntry {
    var expiry: Int
    var levelIndex: UInt32
}

/// The prefix of every transient token.
private let tokenPrefix: StaticString = "transient-"
/// The length of `transient-` followed by a hyphenated UUID.
private let tokenLength = 10 + 36
/// Tests whether an offset within the UUID text is one of the hyphens of the 8-4-4-4-12 form.
@inline(__always)
private func isHyphenOffset(_ offset: Int) -> Bool {
    offset == 8 || offset == 13 || offset == 18 || offset == 23
}

/// Formats a key as `transient-` followed by the lowercase hyphenated UUID.
func formatToken(_ key: TokenKey) -> String {
    String(unsafeUninitializedCapacity: tokenLength) { buffer in
        tokenPrefix.withUTF8Buffer { prefix in
            _ = buffer.initialize(from: prefix)
        }
        var position = tokenPrefix.utf8CodeUnitCount
        var digitIndex = 0
        while digitIndex < 32 {
            if isHyphenOffset(position - tokenPrefix.utf8CodeUnitCount) {
                buffer[position] = UInt8(ascii: "-")
                position += 1
                continue
            }
            let word = digitIndex < 16 ? key.high : key.low
            let shift = UInt64(60 - 4 * (digitIndex % 16))
            buffer[position] = hexDigit(UInt8(truncatingIfNeeded: word >> shift) & 0x0F)
            position += 1
            digitIndex += 1
        }
        return position
    }
}

/// Parses `transient-` followed by a lowercase hyphenated UUID, or returns nil.
func parseToken(_ bytes: UnsafeBufferPointer<UInt8>) -> TokenKey? {
    guard bytes.count == tokenLength else {
        return nil
    }
    let prefixMatches = tokenPrefix.withUTF8Buffer { prefix in
        bytes.prefix(prefix.count).elementsEqual(prefix)
    }
    guard prefixMatches else {
        return nil
    }

    var high: UInt64 = 0
    var low: UInt64 = 0
    var digitCount = 0
    for uuidOffset in 0..<36 {
        let byte = bytes[tokenPrefix.utf8CodeUnitCount + uuidOffset]
        if isHyphenOffset(uuidOffset) {
            guard byte == UInt8(ascii: "-") else {
                return nil
            }
            continue
        }
        let value: UInt8
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
        default: return nil
        }
        if digitCount < 16 {
            high = high << 4 | UInt64(value)
        } else {
            low = low << 4 | UInt64(value)
        }
        digitCount += 1
    }
    return TokenKey(high: high, low: low)
}

/// A binary min-heap of token expiries.
private struct ExpiryHeap {
    struct Item {
        var expiry: Int
        var key: TokenKey
    }

    private var items: [Item] = []

    init() {}

    /// Builds a heap from unordered items in O(n).
    init(items: [Item]) {
        self.items = items
        var index = items.count / 2
        while index > 0 {
            index -= 1
            siftDown(from: index)
        }
    }

    var first: Item? {
        items.first
    }

    mutating func push(_ item: Item) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].expiry < items[parent].expiry else {
                break
            }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() {
        guard !items.isEmpty else {
            return
        }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        siftDown(from: 0)
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count && items[left].expiry < items[smallest].expiry {
                smallest = left
            }
            if right < items.count && items[right].expiry < items[smallest].expiry {
                smallest = right
            }
            if smallest == parent {
                return
            }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
