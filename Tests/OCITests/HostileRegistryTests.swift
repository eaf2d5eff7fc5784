import Foundation
import NIOCore
import OCI
import OCIRegistry
import OCITesting
import Synchronization
import Testing

/// A registry under an attacker's control (a scripted server): listings that never end, answers that drip or never
/// come, pages and uploads pointed at another origin, token realms elsewhere. Each ends in a clear error or goes on
/// without the credentials, never in an endless download, a stalled run or a leaked password.
@Suite struct HostileRegistryTests {
    static func registries(
        credentials: [String: Credentials] = [:], _ configure: (inout RegistryConfiguration) -> Void = { _ in }
    ) throws -> Registries {
        var c = RegistryConfiguration()
        c.retry.maxAttempts = 1
        c.connectTimeout = .seconds(2)
        c.credentials = CredentialResolver(explicit: credentials, configFiles: [], environment: [:])
        configure(&c)
        return try Registries(configuration: c)
    }

    static func query(_ uri: String, _ name: String) -> String? {
        URLComponents(string: "http://x" + uri)?.queryItems?.first { $0.name == name }?.value
    }

    @Test func tagPagesThatNeverEndAreCut() async throws {
        let server = try await ScriptedServer.start { request in
            let last = Int(Self.query(request.uri, "last")?.dropFirst() ?? "0") ?? 0
            return .json(
                #"{"name":"app","tags":["t\#(last + 1)"]}"#, headers: [("Link", "</v2/app/tags/list?n=1&last=t\(last + 1)>; rel=\"next\"")])
        }
        defer { server.stop() }
        let regs = try Self.registries { $0.listLimits.pages = 50 }
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let error = try await #require(throws: OCIError.self) {
            _ = try await repo.listTags()
        }
        #expect(error.reason.contains("more than 50 pages"))
        #expect(server.requests.count == 50)
        try await regs.shutdown()
    }

    @Test func listingsLargerThanTheByteLimitAreCut() async throws {
        let server = try await ScriptedServer.start { request in
            let last = Int(Self.query(request.uri, "last")?.dropFirst() ?? "0") ?? 0
            let tags = (0..<20).map { "\"t\(last + 1)-\($0)\"" }.joined(separator: ",")
            return .json(#"{"name":"app","tags":[\#(tags)]}"#, headers: [("Link", "</v2/app/tags/list?last=t\(last + 1)>; rel=\"next\"")])
        }
        defer { server.stop() }
        let regs = try Self.registries { $0.listLimits.bytes = 2000 }
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let error = try await #require(throws: OCIError.self) { _ = try await repo.listTags() }
        #expect(error.reason.contains("refusing to read further"))
        #expect(server.requests.count < 20)
        try await regs.shutdown()
    }

    @Test func aLinkBackToAPageAlreadyReadIsALoop() async throws {
        let server = try await ScriptedServer.start { _ in
            .json(#"{"name":"app","tags":["a"]}"#, headers: [("Link", "</v2/app/tags/list?n=1&last=a>; rel=\"next\"")])
        }
        defer { server.stop() }
        let regs = try Self.registries()
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let error = try await #require(throws: OCIError.self) { _ = try await repo.listTags() }
        #expect(error.reason.contains("Link headers loop"))
        #expect(server.requests.count == 2)
        try await regs.shutdown()
    }

    @Test func referrerPagesThatNeverEndAreCut() async throws {
        let subject = Descriptor.of(Data("subject".utf8), mediaType: MediaType.imageManifest)
        let counter = Mutex(0)
        let server = try await ScriptedServer.start { request in
            let n = counter.withLock { c -> Int in
                c += 1
                return c
            }
            let entry = Descriptor.of(Data("referrer \(n)".utf8), mediaType: MediaType.imageManifest)
            let index = String(decoding: try! JSONEncoder().encode(ImageIndex(manifests: [entry])), as: UTF8.self)
            return .json(
                index, headers: [("Content-Type", MediaType.imageIndex), ("Link", "</v2/app/referrers/\(subject.digest)?page=\(n)>; rel=\"next\"")])
        }
        defer { server.stop() }
        let regs = try Self.registries { $0.listLimits.items = 100 }
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let error = try await #require(throws: OCIError.self) {
            _ = try await repo.referrers(of: subject, artifactType: nil)
        }
        #expect(error.reason.contains("more than 10 referrers"))
        #expect(server.requests.count == 11)
        try await regs.shutdown()
    }

    /// A registry that wants Basic credentials, whose tag page links to another origin and whose upload session
    /// lives on another origin: the other origin gets the requests, never the credentials.
    @Test func credentialsStayWithTheirOrigin() async throws {
        let other = try await ScriptedServer.start { request in
            if request.uri.hasPrefix("/v2/app/tags/list") { return .json(#"{"name":"app","tags":["b"]}"#) }
            return ScriptedServer.Reply(status: 201, headers: [("Docker-Content-Digest", Self.query(request.uri, "digest") ?? "")])
        }
        defer { other.stop() }
        let otherBase = other.baseURL
        let registry = try await ScriptedServer.start { request in
            guard request.header("Authorization") == "Basic " + Data("mirror:s3cret".utf8).base64EncodedString() else {
                return ScriptedServer.Reply(status: 401, headers: [("WWW-Authenticate", #"Basic realm="registry""#)])
            }
            if request.uri.hasPrefix("/v2/app/tags/list") {
                return .json(#"{"name":"app","tags":["a"]}"#, headers: [("Link", "<\(otherBase)/v2/app/tags/list?last=a>; rel=\"next\"")])
            }
            if request.method == "POST" { return ScriptedServer.Reply(status: 202, headers: [("Location", "\(otherBase)/uploads/1")]) }
            return ScriptedServer.Reply(status: 404)
        }
        defer { registry.stop() }
        let regs = try Self.registries(credentials: [registry.host: Credentials(username: "mirror", password: "s3cret")])
        let repo = try regs.repository(Reference(parsing: "\(registry.host)/app"))
        #expect(try await repo.listTags() == ["a", "b"])
        let blob = Data("layer".utf8)
        try await repo.push(Descriptor.of(blob, mediaType: MediaType.imageLayer), bytes: blob)
        #expect(other.requests.count == 2)
        #expect(other.requests.allSatisfy { $0.header("Authorization") == nil }, "\(other.requests.map(\.headers))")
        #expect(registry.requests.contains { $0.header("Authorization") != nil })
        try await regs.shutdown()
    }

    /// A Bearer challenge naming a plain-HTTP token realm on another host (0.0.0.0 reaches this machine without being
    /// a loopback name): credentials are not sent there unless `insecureTokenRealm` says so.
    @Test func credentialsGoToAPlainHTTPTokenRealmElsewhereOnlyWhenAllowed() async throws {
        let tokenServer = try await ScriptedServer.start { _ in .json(#"{"token":"t0k3n"}"#) }
        defer { tokenServer.stop() }
        let realm = "http://0.0.0.0:\(tokenServer.port)/token"
        let registry = try await ScriptedServer.start { request in
            if request.header("Authorization") == "Bearer t0k3n" { return .json(#"{"name":"app","tags":["v1"]}"#) }
            return ScriptedServer.Reply(status: 401, headers: [("WWW-Authenticate", "Bearer realm=\"\(realm)\",service=\"registry\"")])
        }
        defer { registry.stop() }
        let credentials = [registry.host: Credentials(username: "mirror", password: "s3cret")]
        let strict = try Self.registries(credentials: credentials)
        let repo = try strict.repository(Reference(parsing: "\(registry.host)/app"))
        let e = try await #require(throws: OCIError.self) {
            _ = try await repo.listTags()
        }
        #expect(e.code == .unauthorized && e.reason.contains("--insecure-token-realm") && !e.reason.contains("s3cret"))
        #expect(tokenServer.requests.isEmpty)
        try await strict.shutdown()

        let lax = try Self.registries(credentials: credentials) { $0.insecureTokenRealm = true }
        #expect(try await lax.repository(Reference(parsing: "\(registry.host)/app")).listTags() == ["v1"])
        #expect(tokenServer.requests.first?.header("Authorization")?.hasPrefix("Basic ") == true)
        try await lax.shutdown()
    }

    /// A manifest dripped a byte at a time, and a server that never answers: each ends at the request deadline
    /// (headers and body together), not when the drip ends.
    @Test func slowAnswersEndAtTheirDeadline() async throws {
        let manifest = String(repeating: " ", count: 400) + "{}"
        let server = try await ScriptedServer.start { request in
            if request.uri.hasSuffix("/silent") { return ScriptedServer.Reply(silent: true) }
            return ScriptedServer.Reply(
                headers: [("Content-Type", MediaType.imageManifest)], body: Data(manifest.utf8), drip: .milliseconds(50))
        }
        defer { server.stop() }
        let regs = try Self.registries {
            $0.requestTimeout = .seconds(2)
            $0.readTimeout = .seconds(2)
        }
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let e = try await #require(throws: OCIError.self) {
            _ = try await repo.getManifest("dripped")
        }
        #expect(e.code == .transport && e.reason.contains("did not arrive within 2 s"))
        let silent = try await #require(throws: OCIError.self) {
            _ = try await repo.getManifest("silent")
        }
        #expect(silent.code == .transport)
        try await regs.shutdown()
    }

    /// A blob dripped far below the minimum transfer rate is given up after one window, with the rate named.
    @Test func blobsBelowTheMinimumRateAreGivenUp() async throws {
        let blob = Data(repeating: 7, count: 5000)
        let server = try await ScriptedServer.start { _ in
            ScriptedServer.Reply(headers: [("Content-Type", "application/octet-stream")], body: blob, drip: .milliseconds(10))
        }
        defer { server.stop() }
        let regs = try Self.registries {
            $0.minimumTransferRate = 1000
            $0.transferRateWindow = .seconds(1)
        }
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let error = try await #require(throws: OCIError.self) {
            _ = try await repo.fetchVerified(Descriptor.of(blob, mediaType: MediaType.imageLayer)).collect(limit: 1 << 20)
        }
        #expect(error.reason.contains("below the minimum transfer rate"))
        try await regs.shutdown()
    }
}
