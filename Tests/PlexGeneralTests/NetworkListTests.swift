import Testing

@testable import PlexGeneral

@Suite("Network list")
struct NetworkListTests {
    static let matchCases: [(networks: String, address: String, matches: Bool)] = [
        ("192.168.1.0/255.255.255.0", "192.168.1.77", true),
        ("192.168.1.0/255.255.255.0", "192.168.2.1", false),
        ("192.168.0.0/255.255.254.0", "192.168.1.200", true),
        ("192.168.0.0/255.255.254.0", "192.168.2.1", false),
        ("10.0.0.0/8", "10.255.0.1", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("192.168.1.7/24", "192.168.1.200", true),
        ("172.16.0.0/12", "172.31.255.255", true),
        ("172.16.0.0/12", "172.32.0.0", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("0.0.0.0/0.0.0.0", "198.51.100.1", true),
        ("198.51.100.1/32", "198.51.100.1", true),
        ("fd00::/8", "fd12:3456::1", true),
        ("fd00::/8", "fe80::1", false),
        ("2001:db8::1", "2001:db8::1", true),
        ("2001:db8::1", "2001:db8::2", false),
        ("2001:db8::/127", "2001:db8::1", true),
        ("2001:db8::/127", "2001:db8::2", false),
        ("2001:db8:abcd::/48", "2001:db8:abcd:ffff::1", true),
        ("2001:db8:abcd::/48", "2001:db8:abce::1", false),
        ("2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", true),
        ("2001:db8::/65", "2001:db8::8000:0:0:1", false),
        ("::/0", "2001:db8::1", true),
        ("::1", "::1", true),
        ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("10.0.0.0/8", "::ffff:11.1.2.3", false),
        ("10.0.0.0/8", "::10.1.2.3", false),
        ("::ffff:10.0.0.0/104", "10.1.2.3", true),
        ("::ffff:10.0.0.0/104", "11.1.2.3", false),
        ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true),
        ("2001:db8::/32", "10.0.0.1", false),
        ("10.0.0.0/8", "2001:db8::1", false),
        (" 10.0.0.0/8 ,\t192.168.0.0/16 ", "192.168.5.5", true),
        ("10.0.0.0/8,,192.168.0.0/16,", "192.168.5.5", true),
        ("10.0.0.0/8, fd00::/8", "fd00::5", true),
        ("", "10.0.0.1", false),
    ]

    @Test("Network membership", arguments: matchCases)
    func membership(networks: String, address: String, matches: Bool) throws {
        let list = try NetworkList(parsing: networks)
        #expect(list.contains(address: addressBytes(address)) == matches)
    }

    @Test("Membership from non-contiguous bytes")
    func nonContiguousAddress() throws {
        let list = try NetworkList(parsing: "10.0.0.0/8, fd00::/8")
        #expect(list.contains(address: addressBytes("10.1.2.3").reversed().reversed()))
        #expect(list.contains(address: addressBytes("fd00::1")[...]))
        #expect(!list.contains(address: addressBytes("fe00::1").reversed().reversed()))
    }

    @Test("Addresses of other lengths match nothing", arguments: [0, 3, 5, 15, 17, 32])
    func otherLengths(length: Int) throws {
        let list = try NetworkList(parsing: "0.0.0.0/0, ::/0")
        #expect(!list.contains(address: [UInt8](repeating: 0, count: length)))
    }

    static let invalidCases: [(networks: String, message: String)] = [
        ("10.0.0.0/33", #"invalid network "10.0.0.0/33": prefix length must be 0 to 32 for IPv4"#),
        ("10.0.0.0/", #"invalid network "10.0.0.0/": prefix length must be 0 to 32 for IPv4"#),
        ("10.0.0.0/-1", #"invalid network "10.0.0.0/-1": prefix length must be 0 to 32 for IPv4"#),
        ("10.0.0.0/+8", #"invalid network "10.0.0.0/+8": prefix length must be 0 to 32 for IPv4"#),
        ("10.0.0.0/0008", #"invalid network "10.0.0.0/0008": prefix length must be 0 to 32 for IPv4"#),
        ("10.0.0.0/8/8", #"invalid network "10.0.0.0/8/8": prefix length must be 0 to 32 for IPv4"#),
        (
            "10.0.0.0/255.0.255.0",
            #"invalid network "10.0.0.0/255.0.255.0": netmask bits are not contiguous (expected a form such as 255.255.255.0)"#
        ),
        ("10.0.0.0/255.255.0", #"invalid network "10.0.0.0/255.255.0": netmask is not a dotted IPv4 address"#),
        ("fd00::/129", #"invalid network "fd00::/129": prefix length must be 0 to 128 for IPv6"#),
        (
            "fd00::/255.0.0.0",
            #"invalid network "fd00::/255.0.0.0": a dotted netmask applies to IPv4 only, so write an IPv6 network as address/prefix"#
        ),
        ("hello", #"invalid network "hello": not an IPv4 or IPv6 address"#),
        ("10.0.0.0/8, 300.1.1.1", #"invalid network "300.1.1.1": not an IPv4 or IPv6 address"#),
        ("fe80::1%eth0", #"invalid network "fe80::1%eth0": not an IPv4 or IPv6 address"#),
        ("10.0.0", #"invalid network "10.0.0": not an IPv4 or IPv6 address"#),
        ("/8", #"invalid network "/8": not an IPv4 or IPv6 address"#),
        ("10.0.0.0 /8", #"invalid network "10.0.0.0 /8": not an IPv4 or IPv6 address"#),
    ]

    @Test("Invalid entries are named", arguments: invalidCases)
    func invalidEntries(networks: String, message: String) {
        #expect(throws: NetworkListError.self) {
            try NetworkList(parsing: networks)
        }
        do {
            _ = try NetworkList(parsing: networks)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test("Array entries")
    func arrayEntries() throws {
        let list = try NetworkList(entries: [" 10.0.0.0/8", "fd00::/8 "])
        #expect(list.count == 2)
        #expect(list.contains(address: addressBytes("10.0.0.1")))
        #expect(list.contains(address: addressBytes("fd00::1")))
    }

    @Test("Empty array entry is an error")
    func emptyArrayEntry() {
        #expect(throws: NetworkListError(entry: "", reason: "empty entry")) {
            try NetworkList(entries: ["10.0.0.0/8", " "])
        }
    }

    @Test("Empty list matches nothing")
    func emptyList() throws {
        let list = try NetworkList(parsing: " , ")
        #expect(list.isEmpty)
        #expect(list.count == 0)
        #expect(!list.contains(address: addressBytes("127.0.0.1")))
        #expect(!NetworkList().contains(address: addressBytes("::1")))
    }

    @Test("Description in canonical prefix form")
    func canonicalDescription() throws {
        let list = try NetworkList(parsing: "fd00::1/8, 192.168.1.7/255.255.255.0, 10.1.2.3")
        #expect(list.description == "192.168.1.0/24,10.1.2.3/32,fd00::/8")
    }
}
