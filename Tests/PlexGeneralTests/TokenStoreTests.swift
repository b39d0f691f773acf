import Foundation
import Testing

@testable import PlexGeneral

@Suite("Transient token store")
struct TokenStoreTests {
    @Test("Minted token is a v4 UUID")
    func tokenFormat() throws {
        let store = TransientTokenStore()
        for _ in 0..<200 {
            let token = try #require(store.mint(level: .owner, now: 0))
            let characters = Array(token)
            #expect(token.hasPrefix("transient-"))
            #expect(characters.count == 46)
            let uuid = Array(characters.dropFirst(10))
            for offset in [8, 13, 18, 23] {
                #expect(uuid[offset] == "-")
            }
            let hexDigits = uuid.enumerated().filter { ![8, 13, 18, 23].contains($0.offset) }.map(\.element)
            #expect(hexDigits.count == 32)
            #expect(hexDigits.allSatisfy { "0123456789abcdef".contains($0) })
            #expect(uuid[14] == "4")
            #expect("89ab".contains(uuid[19]))
            #expect(UUID(uuidString: String(uuid)) != nil)
        }
    }

    @Test("Minted tokens are distinct")
    func distinctTokens() {
        let store = TransientTokenStore()
        var tokens = Set<String>()
        for _ in 0..<10_000 {
            if let token = store.mint(level: .owner, now: 0) {
                tokens.insert(token)
            }
        }
        #expect(tokens.count == 10_000)
        #expect(store.count == 10_000)
    }

    @Test("Lookup returns the minted level")
    func lookupLevel() throws {
        let store = TransientTokenStore()
        let ownerToken = try #require(store.mint(level: .owner, now: 10))
        let aliceToken = try #require(store.mint(level: .shared(name: "alice"), now: 10))
        let bobToken = try #require(store.mint(level: .shared(name: "bob"), now: 10))

        #expect(store.lookup(ownerToken, now: 11) == .owner)
        #expect(store.lookup(aliceToken, now: 11) == .shared(name: "alice"))
        #expect(store.lookup(Array(bobToken.utf8), now: 11) == .shared(name: "bob"))
        #expect(store.lookup(bobToken.utf8, now: 11) == .shared(name: "bob"))
        #expect(store.lookup(Array(bobToken.utf8).reversed().reversed(), now: 11) == .shared(name: "bob"))
    }

    @Test("Malformed or unknown tokens fail lookup")
    func malformedTokens() throws {
        let store = TransientTokenStore()
        let token = try #require(store.mint(level: .owner, now: 0))
        let unknown = "transient-00000000-0000-4000-8000-000000000000"
        let candidates = [
            "", "transient-", token.uppercased(), "Transient" + token.dropFirst(9), String(token.dropLast()),
            token + "0", token.replacingOccurrences(of: "-", with: "_"), "x" + token.dropFirst(1), unknown,
            "transient-" + String(repeating: "g", count: 36),
        ]
        for candidate in candidates {
            #expect(store.lookup(candidate, now: 0) == nil, "candidate \(candidate.count) characters long")
        }
    }

    @Test("Expired token fails before sweep")
    func expiryBeforeSweep() throws {
        let store = TransientTokenStore(lifetimeSeconds: 10)
        let token = try #require(store.mint(level: .owner, now: 100))
        #expect(store.lookup(token, now: 109) == .owner)
        #expect(store.lookup(token, now: 110) == nil)
        #expect(store.count == 1)
    }

    @Test("Sweep removes only expired tokens")
    func sweepRemovesExpired() throws {
        let store = TransientTokenStore(lifetimeSeconds: 100)
        var early: [String] = []
        var late: [String] = []
        for index in 0..<50 {
            early.append(try #require(store.mint(level: .owner, now: index)))
        }
        for index in 0..<30 {
            late.append(try #require(store.mint(level: .owner, now: 1000 + index)))
        }

        #expect(store.sweep(now: 99) == 0)
        #expect(store.count == 80)
        #expect(store.sweep(now: 120) == 21)
        #expect(store.count == 59)
        #expect(store.sweep(now: 149) == 29)
        #expect(store.count == 30)
        #expect(store.lookup(early[49], now: 149) == nil)
        #expect(store.lookup(late[0], now: 149) == .owner)
        #expect(store.sweep(now: 2000) == 30)
        #expect(store.count == 0)
        #expect(store.sweep(now: 3000) == 0)
    }

    @Test("Sweep handles changed lifetimes")
    func sweepWithChangedLifetime() throws {
        let store = TransientTokenStore(lifetimeSeconds: 1000)
        let longLived = try #require(store.mint(level: .owner, now: 0))
        store.lifetimeSeconds = 10
        let shortLived = try #require(store.mint(level: .owner, now: 5))

        #expect(store.sweep(now: 15) == 1)
        #expect(store.lookup(shortLived, now: 15) == nil)
        #expect(store.lookup(longLived, now: 15) == .owner)
        #expect(store.count == 1)
        #expect(store.sweep(now: 1000) == 1)
        #expect(store.count == 0)
    }

    @Test("Lifetime is clamped to 48 hours")
    func lifetimeClamp() {
        let store = TransientTokenStore(lifetimeSeconds: 1_000_000)
        #expect(store.lifetimeSeconds == 172_800)
        store.lifetimeSeconds = 0
        #expect(store.lifetimeSeconds == 1)
        store.lifetimeSeconds = 200_000
        #expect(store.lifetimeSeconds == 172_800)
        #expect(TransientTokenStore().lifetimeSeconds == 172_800)
    }

    @Test("Cap on live tokens")
    func cap() throws {
        let store = TransientTokenStore(lifetimeSeconds: 10, maximumCount: 3)
        for _ in 0..<3 {
            #expect(store.mint(level: .owner, now: 0) != nil)
        }
        #expect(store.mint(level: .owner, now: 9) == nil)
        #expect(store.count == 3)

        let afterExpiry = store.mint(level: .owner, now: 10)
        #expect(afterExpiry != nil)
        #expect(store.count == 1)

        store.maximumCount = 1
        #expect(store.mint(level: .owner, now: 11) == nil)
    }

    @Test("Remove tokens of one level")
    func removeByLevel() throws {
        let store = TransientTokenStore(lifetimeSeconds: 100)
        let ownerToken = try #require(store.mint(level: .owner, now: 0))
        let aliceTokens = [
            try #require(store.mint(level: .shared(name: "alice"), now: 1)),
            try #require(store.mint(level: .shared(name: "alice"), now: 2)),
        ]
        let bobToken = try #require(store.mint(level: .shared(name: "bob"), now: 3))

        #expect(store.removeAll(where: { $0 == .shared(name: "alice") }) == 2)
        #expect(store.count == 2)
        #expect(store.lookup(aliceTokens[0], now: 4) == nil)
        #expect(store.lookup(aliceTokens[1], now: 4) == nil)
        #expect(store.lookup(ownerToken, now: 4) == .owner)
        #expect(store.lookup(bobToken, now: 4) == .shared(name: "bob"))
        #expect(store.removeAll(where: { $0 == .shared(name: "carol") }) == 0)
        #expect(store.sweep(now: 100) == 1)
        #expect(store.sweep(now: 103) == 1)
        #expect(store.count == 0)
    }

    @Test("Printing the store reveals no token")
    func noTokenInOutput() throws {
        let store = TransientTokenStore()
        let token = try #require(store.mint(level: .shared(name: "alice"), now: 0))
        let uuid = String(token.dropFirst(10))
        var dumped = ""
        dump(store, to: &dumped)
        let described = String(describing: store) + String(reflecting: store)

        #expect(!dumped.contains(uuid))
        #expect(!described.contains(uuid))
        #expect(dumped.contains("count"))
    }

    @Test("Current time is monotonic")
    func currentTime() {
        let first = TransientTokenStore.currentTime()
        let second = TransientTokenStore.currentTime()
        #expect(first > 0)
        #expect(second >= first)
    }

    @Test("One million tokens fit in 256 MiB")
    func memoryForOneMillionTokens() throws {
        let before = try residentBytes()
        let store = TransientTokenStore(maximumCount: 1_000_000)
        var lastToken = ""
        for _ in 0..<1_000_000 {
            lastToken = try #require(store.mint(level: .shared(name: "shared user with a long name"), now: 0))
        }
        let after = try residentBytes()

        #expect(store.count == 1_000_000)
        #expect(store.mint(level: .owner, now: 0) == nil)
        #expect(store.lookup(lastToken, now: 1) == .shared(name: "shared user with a long name"))
        // Other tests run in parallel in this process, so the growth is an upper bound.
        #expect(after - before < 256 * 1024 * 1024)
    }
}

/// Reads the process's resident set size from /proc/self/statm.
private func residentBytes() throws -> Int {
    let text = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
    let fields = text.split(separator: " ")
    let pages = try #require(Int(fields[1]))
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
