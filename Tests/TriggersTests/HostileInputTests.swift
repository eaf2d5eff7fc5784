import CEL
import Foundation
import Testing

@testable import Triggers

/// Hostile deliveries are refused with a reason, quickly, and never crash the reader.
@Suite struct HostileInputTests {
    static let formats: [ReceiverConfig] = [
        ReceiverConfig(name: "d", format: .distribution, registry: "r.example"), ReceiverConfig(name: "h", format: .harbor, registry: "r.example"),
        ReceiverConfig(name: "z", format: .zot, registry: "r.example"), ReceiverConfig(name: "hub", format: .dockerhub),
    ]

    /// Unsigned formats only (an unauthenticated receiver): the body is read, so its hostility is what is tested.
    @Test(arguments: formats)
    func deepNestingIsRefusedBeforeParsing(config: ReceiverConfig) throws {
        let body = bytes(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000))
        let clock = ContinuousClock()
        var r: ReceiverRejection?
        let elapsed = clock.measure { r = rejection { try Receivers.normalise(config: config, headers: [:], body: body) } }
        #expect(r?.status == 400 && r?.code == .payloadMalformed)
        #expect(r?.reason.contains("nested deeper than 64 levels (at 1:65)") == true, "\(String(describing: r))")
        #expect(elapsed < .seconds(2))
        // Brackets inside strings do not count.
        let quoted = bytes("{\"events\":[], \"x\": \"" + String(repeating: "[", count: 1000) + "\"}")
        if config.format == .distribution { #expect(try Receivers.normalise(config: config, headers: [:], body: quoted).isEmpty) }
    }

    @Test(arguments: formats)
    func truncatedAndEmptyBodies(config: ReceiverConfig) {
        for body in ["", "{", "{\"events\":[{\"action\":\"push\"", "\u{0}", "nul", "{\"a\":1,\"a\":2}", "{\"a\":\"\u{1}\"}"] {
            let r = rejection { try Receivers.normalise(config: config, headers: [:], body: bytes(body)) }
            #expect(r?.status == 400, "\(config.format) \(body.debugDescription): \(String(describing: r))")
        }
        let invalidUTF8: [UInt8] = Array("{\"events\":[{\"action\":\"".utf8) + [0xC3, 0x28] + Array("\"}]}".utf8)
        #expect(rejection { try Receivers.normalise(config: config, headers: [:], body: invalidUTF8) }?.status == 400)
    }

    @Test func oversizedBodiesAreRefusedUnread() {
        var config = ReceiverConfig(name: "d", format: .distribution, secret: "s")
        config.maxBodyBytes = 1024
        let r = rejection { try Receivers.normalise(config: config, headers: [:], body: [UInt8](repeating: 0x20, count: 1025)) }
        // 413 before authentication: the size is checked first.
        #expect(r?.status == 413 && r?.code == .payloadTooLarge)
    }

    @Test func longAndControlCharacterNamesAreQuotedShortAndEscaped() throws {
        let config = ReceiverConfig(name: "g", format: .distribution, registry: "r.example")
        let long = String(repeating: "a", count: 10_000) + "/B"
        let body = #"{"events":[{"action":"delete","target":{"repository":"\#(long)"}}]}"#
        let r = try #require(rejection { try Receivers.normalise(config: config, headers: [:], body: bytes(body)) })
        #expect(r.reason.count < 300)
        let control = #"{"events":[{"action":"delete","target":{"repository":"a\u001b[31m/b"}}]}"#
        let c = try #require(rejection { try Receivers.normalise(config: config, headers: [:], body: bytes(control)) })
        #expect(!c.reason.unicodeScalars.contains { $0.value < 0x20 })
        #expect(c.reason.contains("\\u{1b}"))
    }

    @Test(arguments: [
        "sha256:abc", "SHA256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        "sha256:6C3C624B58DBBCD3C0DD82B4C53F04194D1247C6EEBDAAB7C610CF7D66709B3B", "sha256", ":abc", "sha256:", "sha256::x", "sha256+:ab",
        "sha512:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b", "sha256:../../etc/passwd",
    ])
    func badDigestsAreRefused(digest: String) {
        let config = ReceiverConfig(name: "d", format: .distribution, registry: "r.example")
        let body = #"{"events":[{"action":"delete","target":{"repository":"a/b","digest":"\#(digest)"}}]}"#
        let r = rejection { try Receivers.normalise(config: config, headers: [:], body: bytes(body)) }
        #expect(r?.reason.hasPrefix("events[0].target.digest:") == true, "\(digest): \(String(describing: r))")
    }

    @Test func namesOfTheGrammars() {
        for good in ["a", "a/b", "a-b/c__d/e.f", "a--b", "0/1"] { #expect(Names.isRepository(good), "\(good)") }
        for bad in ["", "A", "a/", "/a", "a//b", "a/../b", "a/./b", "-a", "a-", "a___b", "a._b", "a b", "a%2Fb", String(repeating: "a", count: 256)] {
            #expect(!Names.isRepository(bad), "\(bad)")
        }
        for good in ["latest", "v1.0", "_x", "1.2.3-rc.1"] { #expect(Names.isTag(good)) }
        for bad in ["", "-x", ".x", "a/b", "a:b", String(repeating: "a", count: 129)] { #expect(!Names.isTag(bad), "\(bad)") }
        for good in ["r.example", "localhost:5000", "10.0.0.1:443", "[::1]:5000", "[fe80::1]", "my-registry.internal"] {
            #expect(Names.isHost(good), "\(good)")
        }
        for bad in ["", "a..b", "-a.b", "a.b:", "a.b:99999", "a.b:x", "a b", "a/b", "[::1", ":5000"] { #expect(!Names.isHost(bad), "\(bad)") }
        #expect(Names.isDigest("tarsum.v2+sha256:0123456789abcdef1"))
    }
}
