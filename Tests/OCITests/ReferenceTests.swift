import OCI
import Testing

let hex = String(repeating: "a", count: 64)

@Suite struct ReferenceTests {
    struct Valid: Sendable, CustomStringConvertible {
        var input: String
        var registry: String
        var repository: String
        var tag: String?
        var digest: String?
        var description: String { input }
    }

    static let valid: [Valid] = [
        Valid(input: "alpine", registry: "docker.io", repository: "library/alpine"),
        Valid(input: "alpine:3.20", registry: "docker.io", repository: "library/alpine", tag: "3.20"),
        Valid(input: "docker.io/alpine", registry: "docker.io", repository: "library/alpine"),
        Valid(input: "index.docker.io/library/alpine:edge", registry: "docker.io", repository: "library/alpine", tag: "edge"),
        Valid(input: "bitnami/redis", registry: "docker.io", repository: "bitnami/redis"),
        Valid(input: "localhost/app", registry: "localhost", repository: "app"),
        Valid(input: "localhost:5000/team/app:v1", registry: "localhost:5000", repository: "team/app", tag: "v1"),
        Valid(input: "127.0.0.1:5000/a/b/c", registry: "127.0.0.1:5000", repository: "a/b/c"),
        Valid(input: "[::1]:5000/app:x", registry: "[::1]:5000", repository: "app", tag: "x"),
        Valid(input: "[fe80::1]/app", registry: "[fe80::1]", repository: "app"),
        Valid(input: "ghcr.io/org/app@sha256:\(hex)", registry: "ghcr.io", repository: "org/app", digest: "sha256:\(hex)"),
        Valid(input: "ghcr.io/org/app:v1@sha256:\(hex)", registry: "ghcr.io", repository: "org/app", tag: "v1", digest: "sha256:\(hex)"),
        Valid(input: "Registry.Example.com/app", registry: "Registry.Example.com", repository: "app"),
        Valid(input: "quay.io/a__b/c-d/e.f---g", registry: "quay.io", repository: "a__b/c-d/e.f---g"),
        Valid(input: "quay.io/app:_tag.with-dots", registry: "quay.io", repository: "app", tag: "_tag.with-dots"),
    ]

    @Test(arguments: valid)
    func parsesValid(_ v: Valid) throws {
        let r = try Reference(parsing: v.input)
        #expect(r.registry == v.registry)
        #expect(r.repository == v.repository)
        #expect(r.tag == v.tag)
        #expect(r.digest?.description == v.digest)
    }

    @Test(arguments: [
        ("", "empty"),
        ("Alpine", "must be lowercase"),
        ("ghcr.io/Org/app", "must be lowercase"),
        ("ghcr.io/org/app:", "tag after ':' is empty"),
        ("ghcr.io/org/app:.bad", "must start with"),
        ("ghcr.io/org/app:v1!", "invalid character at position 3"),
        ("ghcr.io/org/app:" + String(repeating: "t", count: 129), "at most 128"),
        ("ghcr.io/org/app@sha256:123", "bad digest"),
        ("ghcr.io/org//app", "empty path component"),
        ("ghcr.io/-org/app", "must start and end"),
        ("ghcr.io/org/a..b", "invalid separator"),
        ("ghcr.io:99999/app", "invalid port"),
        ("ghcr.io:/app", "invalid port"),
        ("[::1/app", "unterminated IPv6"),
        ("-bad.io/app", "invalid label"),
        ("example.com/" + String(repeating: "a", count: 250), "at most 255"),
    ])
    func rejectsInvalid(input: String, message: String) throws {
        let e = try #require(throws: OCIError.self) {
            try Reference(parsing: input)
        }
        #expect(e.code == .invalidReference && e.reason.contains(message))
    }

    @Test func familiarAndDescription() throws {
        let r = try Reference(parsing: "alpine:3")
        #expect(r.description == "docker.io/library/alpine:3")
        #expect(r.familiar == "alpine:3")
        #expect(r.apiHost == "registry-1.docker.io")
        #expect(try Reference(parsing: "localhost:5000/x").manifestIdentifier == "latest")
    }

    @Test func layoutLocations() throws {
        #expect(try Location(parsing: "oci-layout:/tmp/x:v1") == .layout(path: "/tmp/x", tag: "v1", digest: nil))
        #expect(try Location(parsing: "oci-layout:rel/dir") == .layout(path: "rel/dir", tag: nil, digest: nil))
        let d = try Digest(parsing: "sha256:\(hex)")
        #expect(try Location(parsing: "oci-layout:/tmp/x@sha256:\(hex)") == .layout(path: "/tmp/x", tag: nil, digest: d))
        #expect(throws: OCIError.self) { try Location(parsing: "oci-layout::v1") }
        #expect(try Location(parsing: "localhost:5000/a:b") == .registry(try Reference(parsing: "localhost:5000/a:b")))
    }

    @Test func platforms() throws {
        let p = try Platform(parsing: "linux/arm64/v8")
        #expect(p.variant == "v8")
        #expect(try Platform(parsing: "linux/arm64").matches(p))
        #expect(!p.matches(try Platform(parsing: "linux/arm64/v7")))
        #expect(throws: OCIError.self) { try Platform(parsing: "linux") }
    }
}
