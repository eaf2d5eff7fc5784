import Crypto
import Foundation
import OCI
import OCITesting
import Replicate
import Testing
import Trust

@Suite struct SemVerTests {
    @Test func parsingAndOrder() throws {
        #expect(SemVer("v1.2.3")?.description == "1.2.3")
        #expect(SemVer("3.20")?.description == "3.20.0")
        #expect(SemVer("1.0.0-rc.1+build.5")?.description == "1.0.0-rc.1")
        for bad in ["", "latest", "1.2.3.4", "1..2", "1.2-", "v", "1.x", "١.٢"] { #expect(SemVer(bad) == nil, "\(bad)") }
        let ordered = [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1",
            "1.10.0", "2",
        ]
        let versions = ordered.compactMap(SemVer.init)
        #expect(versions.count == ordered.count)
        #expect(versions == versions.sorted())
        #expect(versions.shuffled().sorted().map(\.description) == versions.map(\.description))
    }

    @Test(arguments: [
        (">=1.2 <2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "1.5.0-rc.1"]),
        ("~1.4", ["1.4.0", "1.4.9"], ["1.5.0", "1.3.9"]),
        ("^1.2", ["1.2.0", "1.99.0"], ["2.0.0", "1.1.0"]),
        ("^0.3", ["0.3.1"], ["0.4.0"]),
        ("1.2.3 || >=3", ["1.2.3", "3.1.0"], ["1.2.4", "2.9.9"]),
        (">=1.0.0-rc.1 <1.0.1", ["1.0.0-rc.2", "1.0.0"], ["1.0.0-beta.1"]),
    ])
    func ranges(range: String, inside: [String], outside: [String]) throws {
        let r = try SemVerRange(range)
        for v in inside { #expect(r.contains(SemVer(v)!), "\(v) in \(range)") }
        for v in outside { #expect(!r.contains(SemVer(v)!), "\(v) not in \(range)") }
    }

    @Test func badRanges() {
        for bad in [">=x", "1.2 ||", "=>1", "~"] { #expect(throws: SemVerRange.RangeError.self) { try SemVerRange(bad) } }
    }

    @Test func tagSelection() throws {
        let tags = [
            "latest", "1.0.0", "1.1.0", "1.2.0-rc.1", "1.2.0", "2.0.0", "2.1.0-debug", "v3", "sha256-" + String(repeating: "a", count: 64) + ".sig",
        ]
        var s = TagSelection()
        s.newest = 2
        #expect(s.select(from: tags) == ["v3", "2.0.0"])
        s = TagSelection()
        s.semver = try SemVerRange(">=1.0 <2")
        #expect(s.select(from: tags) == ["1.0.0", "1.1.0", "1.2.0"])
        s = TagSelection()
        s.allow = ["^1\\."]
        s.deny = ["-rc"]
        #expect(s.select(from: tags) == ["1.0.0", "1.1.0", "1.2.0"])
        s = TagSelection()
        s.exact = ["latest"]
        #expect(!s.needsListing)
        #expect(s.select(from: []) == ["latest"])
        s = TagSelection()
        #expect(s.select(from: tags).count == 8)  // every tag but cosign's attachment tags
    }
}

@Suite struct ReplicationFileTests {
    let dir: String

    init() throws {
        dir = try makeTemporaryDirectory()
        try Data(publicKeyPEM(P256.Signing.PrivateKey().publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k.pub"))
        try Data(
            """
            apiVersion: warden.dev/v1
            kind: TrustPolicy
            authorities:
              k: {key: k.pub}
            policies:
              - images: ["**"]
                authorities: [k]

            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/trust.yaml"))
    }

    func parse(_ text: String) throws -> ReplicationFile {
        try ReplicationFile.parse(text, file: "repl.yaml", baseDirectory: dir)
    }

    @Test func fullExample() throws {
        let f = try parse(
            """
            apiVersion: warden.dev/v1
            kind: Replication
            registries:
              upstream.example.com:
                usernameEnv: UP_USER
                passwordEnv: UP_PASS
                concurrency: 2
                requestsPerSecond: 50
              localhost:5000: {plainHTTP: true}
            defaults:
              concurrency: 6
              platforms: [linux/amd64, linux/arm64]
              referrers: [signatures, attestations]
              verify: {policy: trust.yaml}
            artifacts:
              - source: upstream.example.com/library/alpine
                target: localhost:5000/mirror/alpine
                tags: {exact: ["3.20"], semver: ">=3.18 <4", newest: 3, deny: ["-rc"]}
              - source: upstream.example.com/tools/
                prefix: true
                target: localhost:5000/mirror/tools
                tags: {allow: ["^v"]}
                referrers: all
                platforms: all
                targetTag: "{tag}-mirror"
                verify:
                  authorities: {k: {key: k.pub}}
                  attestations: [{predicateType: slsaprovenance1}]
              - source: upstream.example.com/unverified
                target: localhost:5000/mirror/unverified
                tags: {digests: ["sha256:\(String(repeating: "0", count: 64))"]}
                verify: false
                referrers: none

            """)
        #expect(f.concurrency == 6)
        #expect(f.registries["upstream.example.com"]?.concurrency == 2)
        #expect(f.registries["localhost:5000"]?.plainHTTP == true)
        #expect(f.artifacts.count == 3)
        #expect(f.artifacts[0].platforms == .list([Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64")]))
        #expect(f.artifacts[0].referrers == .only(["signatures", "attestations"]))
        #expect(f.artifacts[0].verify?.source.hasSuffix("trust.yaml") == true)
        #expect(f.artifacts[1].prefix && f.artifacts[1].source == "upstream.example.com/tools")
        #expect(f.artifacts[1].targetTag == "{tag}-mirror")
        #expect(f.artifacts[1].verify?.policy.rules.first?.attestations.first?.predicateType == "https://slsa.dev/provenance/v1")
        #expect(f.artifacts[2].verify == nil && f.artifacts[2].referrers == .none)
        #expect(f.artifacts[2].tags.digests.count == 1)
    }

    static let head = "apiVersion: warden.dev/v1\nkind: Replication\n"

    static let malformed: [(String, String)] = [
        ("apiVersion: warden.dev/v1\nkind: Replicaton\n", "repl.yaml:2:7: kind must be Replication"),
        (head + "artifact: []\n", "repl.yaml:3:1: unknown key \"artifact\""),
        (head, "no artifacts"),
        (head + "artifacts:\n  - source: a.io/x\n", "repl.yaml:4:5: artifact needs target"),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, tag: [1]}\n", "unknown key \"tag\""),
        (head + "artifacts:\n  - {source: a.io/x:1.0, target: b.io/y}\n", "names a tag or digest"),
        (head + "artifacts:\n  - {source: \"A.io/X\", target: b.io/y}\n", "repl.yaml:4:14: invalid reference \"A.io/X\""),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, tags: {semver: \">=banana\"}}\n", "semver range \">=banana\""),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, tags: {allow: [\"(\"]}}\n", "not a valid regular expression"),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, tags: {newest: 0}}\n", "expected a positive integer"),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, tags: {newest: many}}\n", "expected an integer, found \"many\""),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, tags: {digests: [\"sha256:12\"]}}\n", "repl.yaml:4:55: invalid digest"),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, platforms: [linux]}\n", "repl.yaml:4:50: invalid platform \"linux\""),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, referrers: [sbom]}\n", "\"sbom\" is neither one of"),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, targetTag: \"bad tag\"}\n", "does not make a valid tag"),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, verify: {policy: missing.yaml}}\n", "cannot read trust policy"),
        (
            head + "artifacts:\n  - {source: a.io/x, target: b.io/y, verify: {authorities: {k: {key: k.pub}}, threshold: 2}}\n",
            "exceeds the 1 authorities"
        ),
        (head + "artifacts:\n  - {source: a.io/x, target: b.io/y, verify: true}\n", "verify is false"),
        (head + "artifacts:\n  - {source: a.io/, target: b.io/y, prefix: true, tags: {exact: [v1]}}\n", "a prefix entry selects tags by"),
        (
            head + "registries:\n  a.io: {usernameEnv: U}\nartifacts:\n  - {source: a.io/x, target: b.io/y}\n",
            "repl.yaml:4:9: give both usernameEnv and passwordEnv"
        ),
        (head + "registries:\n  a.io: {requestsPerSecond: -1}\nartifacts:\n  - {source: a.io/x, target: b.io/y}\n", "expected a positive number"),
        (head + "defaults:\n  concurrency: [1]\nartifacts:\n  - {source: a.io/x, target: b.io/y}\n", "repl.yaml:4:16: expected an integer"),
        ("artifacts: [\n", "not valid YAML"),
    ]

    /// Each bad input names its position and what is wrong.
    @Test(arguments: malformed)
    func malformedFiles(text: String, mentions: String) {
        #expect {
            try parse(text)
        } throws: { e in
            let reason = (e as? TrustError)?.reason ?? "\(e)"
            return reason.contains(mentions)
        }
    }
}
