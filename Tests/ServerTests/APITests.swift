import CEL
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OCITesting
import Storage
import Testing
import WardenApp
import Workflow

@testable import WardenServer

/// A server over a fresh state directory with the no-op action, an admin token, a workspace per name in `workspaces`
/// and a token per role in `main`.
struct Fixture {
    let server: ControlServer
    let dir: String
    let admin: String
    var tokens: [String: String] = [:]

    static let threeSteps = Demo.workflows[0]
    static let gate = Demo.workflows[1]

    static func make(
        writesPerMinute: Int = 100_000, lookup: (any TriggerLookup)? = nil, configure: (inout ServerSettings) -> Void = { _ in },
        scanners: (StateLayout) async throws -> [any ArtefactScanner] = { _ in [] }
    ) async throws -> Fixture {
        let dir = try makeTemporaryDirectory()
        var settings = ServerSettings()
        settings.limits.writesPerMinute = writesPerMinute
        settings.checkpointInterval = 3600
        configure(&settings)
        let server = try ControlServer(
            settings: settings, layout: StateLayout(dir + "/state"), catalog: ActionCatalog([NoopAction(), ProcessAction()]),
            logger: Logger(label: "test"), lookup: lookup, scanners: try await scanners(StateLayout(dir + "/state")))
        let admin = try await server.bootstrapAdmin()
        var f = Fixture(server: server, dir: dir, admin: admin.secret)
        let caller = ControlPlane.Caller(Principal(name: "admin", method: "token"))
        _ = try await server.control.createWorkspace("main", caller: caller)
        _ = try await server.control.createWorkspace("other", caller: caller)
        for role in Role.allCases {
            f.tokens[role.rawValue] = try await server.control.createToken(name: role.rawValue, roles: ["main": role], lifetime: nil, caller: caller)
                .secret
        }
        f.tokens["other-admin"] = try await server.control.createToken(name: "other-admin", roles: ["other": .admin], lifetime: nil, caller: caller)
            .secret
        let expired = try await server.control.createToken(name: "expired", roles: ["main": .admin], lifetime: 0.001, caller: caller)
        f.tokens["expired"] = expired.secret
        let revoked = try await server.control.createToken(name: "revoked", roles: ["main": .admin], lifetime: nil, caller: caller)
        try await server.control.revokeToken(id: revoked.record.id, caller: caller)
        f.tokens["revoked"] = revoked.secret
        for w in [threeSteps, gate] { _ = try await server.control.publish(.workflow, workspace: "main", text: w, caller: caller) }
        try await Task.sleep(for: .milliseconds(5))
        return f
    }

    func test<T: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await server.application(withServices: true).test(.router, body)
    }
}

extension TestClientProtocol {
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, token: String?, json: String? = nil, headers extra: [(String, String)] = [],
        contentType: String = "application/json"
    ) async throws -> TestResponse {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil { headers[.contentType] = contentType }
        for (k, v) in extra { headers[HTTPField.Name(k)!] = v }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: Value { (try? Value.parseJSON(text)) ?? .null }
    var status: Int { Int(head.status.code) }
}

extension Value {
    var string: String? { if case .string(let s) = self { s } else { nil } }
    var list: [Value] { if case .list(let l) = self { l } else { [] } }
    var int: Int? { if case .int(let i) = self { Int(i) } else { nil } }
    var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
}

@Suite(.serialized) struct APITests {
    @Test func runsStartAreWatchedApprovedByTheCallerAndAudited() async throws {
        let f = try await Fixture.make()
        let op = f.tokens["operator"]!
        try await f.test { client in
            let start = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"release-gate","labels":{"team":"a"}}"#)
            #expect(start.status == 201, "\(start.text)")
            let id = try #require(start.json["id"]?.string)
            #expect(start.head.headerFields[.location] == "/api/v1/workspaces/main/runs/\(id)")
            // The run waits for its approval, shown as such, with who may decide.
            var view = Value.null
            for _ in 0..<200 {
                view = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)", token: op).json
                if view["waitingForApproval"]?.list.count == 1 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(view["waitingForApproval"]?.list.first?.string == "gate", "\(view)")
            // A viewer may not approve; the operator approves as itself.
            let denied = try await client.call(.post, "/api/v1/workspaces/main/runs/\(id)/steps/gate/approve", token: f.tokens["viewer"]!)
            #expect(denied.status == 403 && denied.json["code"]?.string == "forbidden")
            let ok = try await client.call(.post, "/api/v1/workspaces/main/runs/\(id)/steps/gate/approve", token: op, json: #"{"comment":"ship it"}"#)
            #expect(ok.status == 202, "\(ok.text)")
            for _ in 0..<200 {
                view = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)", token: op).json
                if view["status"]?.string == "succeeded" { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(view["status"]?.string == "succeeded", "\(view)")
            let gate = view["steps"]?.list.first { $0["id"]?.string == "gate" }
            #expect(gate?["decisions"]?.list.first?["by"]?.string == "robot:operator")
            #expect(gate?["decisions"]?.list.first?["comment"]?.string == "ship it")
            // The journal as Server-Sent Events, resumable after an id.
            let events = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)/events", token: op)
            #expect(events.head.headerFields[.contentType] == "text/event-stream")
            let ids = events.text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
            #expect(ids.count >= 8 && ids == ids.sorted(), "\(events.text)")
            #expect(events.text.contains("event: run.finished"))
            let resumed = try await client.call(
                .get, "/api/v1/workspaces/main/runs/\(id)/events", token: op, headers: [("Last-Event-ID", "\(ids[3])")])
            let later = resumed.text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
            #expect(later == Array(ids.dropFirst(4)))
            // Labels filter; another workspace does not see the run.
            let page = try await client.call(.get, "/api/v1/workspaces/main/runs?label=team=a&status=succeeded", token: op).json
            #expect(page["runs"]?.list.map { $0["id"]?.string } == [id])
            let elsewhere = try await client.call(.get, "/api/v1/workspaces/other/runs/\(id)", token: f.tokens["other-admin"]!)
            #expect(elsewhere.status == 404)
            let crossed = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)", token: f.tokens["other-admin"]!)
            #expect(crossed.status == 403)
        }
        // The start and the approval are audit entries of the operator, each after its allow decision.
        let entries = try await f.server.store.auditEntries(AuditQuery(actor: "robot:operator", limit: 1000)).reversed()
        let actions = entries.map(\.action)
        #expect(actions.contains("run.start") && actions.contains("run.approve"))
        let start = try #require(entries.first { $0.action == "run.start" })
        #expect(start.subject.hasPrefix("run/") && start.workspace == "main")
        let denied = try await f.server.store.auditEntries(AuditQuery(actor: "robot:viewer", limit: 100))
        #expect(denied.contains { $0.decision == "deny" && $0.subject.hasSuffix("/approve") })
    }

    @Test func runPagesFollowTheCursorInTheStore() async throws {
        let f = try await Fixture.make()
        let op = f.tokens["operator"]!
        try await f.test { client in
            var ids: Set<String> = []
            for i in 0..<23 {
                let r = try await client.call(
                    .post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"three-steps@1","labels":{"n":"\#(i)"}}"#)
                #expect(r.status == 201, "\(r.text)")
                ids.insert(r.json["id"]?.string ?? "")
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.call(
                    .get, "/api/v1/workspaces/main/runs?limit=5" + (cursor.map { "&cursor=\($0)" } ?? ""), token: f.tokens["viewer"]!
                ).json
                seen += page["runs"]?.list.compactMap { $0["id"]?.string } ?? []
                cursor = page["next"]?.string
            } while cursor != nil
            #expect(seen.count == 23 && Set(seen) == ids)
            let bad = try await client.call(.get, "/api/v1/workspaces/main/runs?cursor=%%%", token: op)
            #expect(bad.status == 400 && bad.json["code"]?.string == "invalid")
            let badLimit = try await client.call(.get, "/api/v1/workspaces/main/runs?limit=100000", token: op)
            #expect(badLimit.status == 400)
        }
    }

    @Test func outputArtifactsAreServedByDigestToTheirRunOnly() async throws {
        let f = try await Fixture.make()
        let op = f.tokens["operator"]!
        let workflow = """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: makes-a-report
            steps:
              - id: make
                uses: process@v1
                with: {command: 'printf "report body" > $WARDEN_ARTIFACTS_OUT/report.txt; echo "aé€😀b" >&2; echo {}'}
            """
        try await f.test { client in
            let published = try await client.call(
                .post, "/api/v1/workspaces/main/workflows", token: f.tokens["author"]!, json: workflow, contentType: "application/yaml")
            #expect(published.status == 201, "\(published.text)")
            let start = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"makes-a-report"}"#)
            let id = try #require(start.json["id"]?.string, "\(start.text)")
            var view = Value.null
            for _ in 0..<400 {
                view = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)", token: op).json
                if view["status"]?.string == "succeeded" || view["status"]?.string == "failed" { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(view["status"]?.string == "succeeded", "\(view)")
            let artifact = view["steps"]?.list.first?["artifacts"]?.list.first
            #expect(artifact?["name"]?.string == "report.txt")
            let digest = try #require(artifact?["digest"]?.string)
            #expect(digest == "sha256:" + hex(SHA256.hash(data: Data("report body".utf8))))
            let got = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)/artifacts/\(digest)", token: f.tokens["viewer"]!)
            #expect(got.status == 200 && got.text == "report body")
            #expect(got.head.headerFields[HTTPField.Name("Docker-Content-Digest")!] == digest)
            #expect(got.head.headerFields[.contentDisposition] == "attachment; filename=\"report.txt\"")
            // A digest this run did not produce, a malformed one, and the run seen from another workspace.
            let other = "sha256:" + String(repeating: "0", count: 64)
            #expect(try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)/artifacts/\(other)", token: op).status == 404)
            let bad = try await client.call(.get, "/api/v1/workspaces/main/runs/\(id)/artifacts/sha256:zz", token: op)
            #expect(bad.status == 400 && bad.json["code"]?.string == "invalid")
            let crossed = try await client.call(
                .get, "/api/v1/workspaces/other/runs/\(id)/artifacts/\(digest)", token: f.tokens["other-admin"]!)
            #expect(crossed.status == 404)
            // Log pages end on whole characters, so pages of 4 bytes joined give the log's text.
            var text = ""
            var offset = 0
            for _ in 0..<200 {
                let page = try await client.call(
                    .get, "/api/v1/workspaces/main/runs/\(id)/logs?step=make&limit=4&offset=\(offset)", token: op)
                #expect(page.status == 200, "\(page.text)")
                text += page.json["text"]?.string ?? ""
                offset = page.json["next"]?.int ?? offset
                if page.json["eof"]?.bool != false { break }
            }
            #expect(text.hasSuffix("aé€😀b\n") && !text.contains("\u{FFFD}"), "\(text)")
            // Bytes on disk that no longer match their digest never make a complete response.
            let path = f.dir + "/state/artifacts/sha256/" + String(digest.dropFirst(7))
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            try Data("report bodY".utf8).write(to: URL(fileURLWithPath: path))
            let corrupt = try? await client.call(.get, "/api/v1/workspaces/main/runs/\(id)/artifacts/\(digest)", token: op)
            #expect(corrupt.map { $0.status != 200 || $0.text != "report bodY" } ?? true)
        }
    }

    @Test func aWriteCommitsItsAllowDecisionWithItsChangeAndAFailedOneStillAuditsIt() async throws {
        let f = try await Fixture.make()
        let op = f.tokens["operator"]!
        let before = try await f.server.store.auditCount()
        try await f.test { client in
            let start = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"three-steps"}"#)
            #expect(start.status == 201, "\(start.text)")
            let missing = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"nothing-like-it"}"#)
            #expect(missing.status == 404)
        }
        let entries = try await f.server.store.auditEntries(AuditQuery(actor: "robot:operator", limit: 100)).reversed().filter {
            $0.seq > before
        }
        let decisions = entries.filter { $0.action == "authz.decision" && $0.subject == "POST /api/v1/workspaces/{workspace}/runs" }
        #expect(decisions.count == 2 && decisions.allSatisfy { $0.decision == "allow" })
        // The started run's entry directly follows its decision (one transaction); the refused start has its decision.
        let startEntry = try #require(entries.first { $0.action == "run.start" })
        #expect(decisions.contains { $0.seq == startEntry.seq - 1 && $0.requestID == startEntry.requestID })
        #expect(entries.filter { $0.action == "run.start" }.count == 1)
    }

    @Test func publishingIsValidatedAndIdenticalContentFindsItsVersion() async throws {
        let f = try await Fixture.make()
        let author = f.tokens["author"]!
        try await f.test { client in
            let reformatted = Fixture.threeSteps.replacingOccurrences(of: "description: Three", with: "# a comment\ndescription:   Three")
            let same = try await client.call(
                .post, "/api/v1/workspaces/main/workflows", token: author, json: reformatted, contentType: "application/yaml")
            #expect(same.status == 200 && same.json["version"]?.int == 1, "\(same.text)")
            let changed = Fixture.threeSteps.replacingOccurrences(of: "id: three", with: "id: four")
            let v2 = try await client.call(
                .post, "/api/v1/workspaces/main/workflows", token: author, json: Value.object([("document", .string(changed))]).jsonText())
            #expect(v2.status == 201 && v2.json["version"]?.int == 2, "\(v2.text)")
            let broken = try await client.call(
                .post, "/api/v1/workspaces/main/workflows", token: author,
                json: "apiVersion: warden.dev/v1\nkind: Workflow\nname: x\nsteps:\n  - id: a\n    uses: nope@v1\n",
                contentType: "application/yaml")
            #expect(broken.status == 400, "\(broken.text)")
            #expect(broken.json["detail"]?.string?.contains("main/workflow.yaml:6:") == true, "\(broken.text)")
            let versions = try await client.call(.get, "/api/v1/workspaces/main/workflows/three-steps", token: f.tokens["viewer"]!).json
            #expect(versions.list.count == 2)
            let dep = try await client.call(.post, "/api/v1/workspaces/main/workflows/three-steps/versions/2/deprecate", token: author)
            #expect(dep.status == 200 && dep.json["deprecated"]?.bool == true, "\(dep.text)")
            let refused = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: f.tokens["operator"]!, json: #"{"workflow":"three-steps@2"}"#)
            #expect(refused.status == 409, "\(refused.text)")
            let latest = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: f.tokens["operator"]!, json: #"{"workflow":"three-steps"}"#)
            #expect(latest.status == 201 && latest.json["file"]?.string == "main/three-steps@1", "\(latest.text)")
            let unknownField = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: f.tokens["operator"]!, json: #"{"workflow":"x","bogus":1}"#)
            #expect(unknownField.status == 400 && unknownField.json["detail"]?.string?.contains("bogus") == true)
            let badInput = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: f.tokens["operator"]!, json: #"{"workflow":"release-gate","inputs":{"image":5}}"#)
            #expect(badInput.status == 400, "\(badInput.text)")
        }
    }

    @Test func idempotencyKeysReplayRefuseAndConflict() async throws {
        let f = try await Fixture.make()
        let op = f.tokens["operator"]!
        try await f.test { client in
            let body = #"{"workflow":"three-steps"}"#
            let first = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: body, headers: [("Idempotency-Key", "k1")])
            #expect(first.status == 201)
            let again = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: body, headers: [("Idempotency-Key", "k1")])
            #expect(again.status == 201 && again.text == first.text)
            #expect(again.head.headerFields[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let other = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"release-gate"}"#, headers: [("Idempotency-Key", "k1")])
            #expect(other.status == 422 && other.json["code"]?.string == "idempotency-key-reused")
            // A key still in flight (claimed by a first request that has not answered yet) is a 409.
            _ = try await f.server.store.claimIdempotency(scope: "main/robot:operator", key: "k2", fingerprint: "f", now: Date(), ttl: 60)
            let busy = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: body, headers: [("Idempotency-Key", "k2")])
            #expect(busy.status == 422 || busy.status == 409)
            let fp = Self.fingerprint("/api/v1/workspaces/main/runs", body)
            _ = try await f.server.store.claimIdempotency(scope: "main/robot:operator", key: "k3", fingerprint: fp, now: Date(), ttl: 60)
            let inFlight = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: body, headers: [("Idempotency-Key", "k3")])
            #expect(inFlight.status == 409 && inFlight.json["code"]?.string == "idempotency-in-flight", "\(inFlight.text)")
            // Concurrent requests with one key: one run, the others replay or wait.
            let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let r = try await client.call(
                            .post, "/api/v1/workspaces/main/runs", token: op, json: body, headers: [("Idempotency-Key", "k4")])
                        return (r.status, r.json["id"]?.string ?? "")
                    }
                }
                return try await group.reduce(into: [(Int, String)]()) { $0.append($1) }
            }
            #expect(results.allSatisfy { $0.0 == 201 || $0.0 == 409 }, "\(results)")
            #expect(Set(results.filter { $0.0 == 201 }.map(\.1)).count == 1, "\(results)")
        }
        let runs = try await f.server.store.runs(RunQuery(workspace: "main", limit: 100))
        #expect(runs.count == 2)
    }

    static func fingerprint(_ path: String, _ body: String) -> String {
        var h = Crypto.SHA256()
        h.update(data: Data("POST \(path)\n".utf8))
        h.update(data: Data(body.utf8))
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    @Test func limitsAnswer413And429WithTheirHeaders() async throws {
        let f = try await Fixture.make(writesPerMinute: 3) { $0.limits.bodyBytes = 2048 }
        let op = f.tokens["operator"]!
        try await f.test { client in
            let big = try await client.call(
                .post, "/api/v1/workspaces/main/runs", token: op,
                json: #"{"workflow":"three-steps","labels":{"x":""# + String(repeating: "a", count: 4000) + "\"}}")
            #expect(big.status == 413 && big.json["code"]?.string == "too-large", "\(big.text)")
            var last: TestResponse?
            for _ in 0..<4 { last = try await client.call(.post, "/api/v1/workspaces/main/runs", token: op, json: #"{"workflow":"three-steps"}"#) }
            let limited = try #require(last)
            #expect(limited.status == 429 && limited.json["code"]?.string == "rate-limited", "\(limited.text)")
            #expect(Int(limited.head.headerFields[HTTPField.Name("Retry-After")!] ?? "") ?? 0 >= 1)
            #expect(limited.head.headerFields[HTTPField.Name("RateLimit-Limit")!] == "3")
            #expect(limited.head.headerFields[HTTPField.Name("RateLimit-Remaining")!] == "0")
            // Reads are not limited; another principal has its own budget.
            #expect(try await client.call(.get, "/api/v1/workspaces/main/runs", token: op).status == 200)
            #expect(
                try await client.call(.post, "/api/v1/workspaces/main/runs", token: f.tokens["admin"]!, json: #"{"workflow":"three-steps"}"#).status
                    == 201)
        }
    }

    @Test func everyErrorIsOneProblemDocument() async throws {
        let f = try await Fixture.make()
        try await f.test { client in
            for (method, uri, token, status, code) in [
                (HTTPRequest.Method.get, "/nowhere", f.admin, 404, "route-not-found"),
                (.get, "/api/v1/workspaces/main/runs", nil, 401, "unauthenticated"),
                (.get, "/api/v1/workspaces/NOPE/runs", f.admin, 400, "invalid"), (.get, "/api/v1/workspaces/absent/runs", f.admin, 404, "not-found"),
                (.get, "/api/v1/workspaces/main/runs/zzz", f.admin, 404, "not-found"),
                (.post, "/api/v1/workspaces/main/runs", f.admin, 400, "invalid-json"),
            ] as [(HTTPRequest.Method, String, String?, Int, String)] {
                let r = try await client.call(method, uri, token: token, json: method == .post ? "{not json" : nil)
                #expect(r.status == status, "\(uri): \(r.text)")
                #expect(r.head.headerFields[.contentType] == "application/problem+json", "\(uri)")
                #expect(r.json["code"]?.string == code, "\(uri): \(r.text)")
                #expect(r.json["status"]?.int == status && r.json["requestId"]?.string?.isEmpty == false)
            }
            let r = try await client.call(.get, "/api/v1/workspaces/main/runs", token: nil)
            #expect(r.head.headerFields[.wwwAuthenticate] == "Bearer realm=\"warden\"")
            let deep = String(repeating: "[", count: 100_000)
            let nested = try await client.call(.post, "/api/v1/workspaces/main/runs", token: f.admin, json: deep)
            #expect(nested.status == 413 || nested.status == 400)
        }
    }

    @Test func healthReadinessAndMetrics() async throws {
        let f = try await Fixture.make()
        try await f.test { client in
            #expect(try await client.call(.get, "/healthz", token: nil).status == 200)
            var ready = 0
            for _ in 0..<100 {
                ready = try await client.call(.get, "/readyz", token: nil).status
                if ready == 200 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(ready == 200)
            _ = try await client.call(.get, "/api/v1/workspaces/main/runs", token: f.tokens["viewer"]!)
            let m = try await client.call(.get, "/metrics", token: nil).text
            #expect(m.contains(#"route="/api/v1/workspaces/{workspace}/runs""#), "\(m.prefix(2000))")
            #expect(m.contains("process_resident_memory_bytes"))
        }
    }

    /// Every route × every caller (each role in the route's workspace, no token, an expired, a revoked and another
    /// workspace's token) gives the documented outcome, and each decision is in the audit log.
    @Test func theAuthorisationMatrix() async throws {
        let f = try await Fixture.make()
        let store = f.server.store
        try await f.test { client in
            for spec in Routes.table where spec.access != .anyone {
                let uri = spec.path.replacingOccurrences(of: "{workspace}", with: "main").replacingOccurrences(of: "{run}", with: "r0")
                    .replacingOccurrences(of: "{step}", with: "gate").replacingOccurrences(of: "{name}", with: "three-steps")
                    .replacingOccurrences(of: "{version}", with: "1").replacingOccurrences(of: "{principal}", with: "someone")
                    .replacingOccurrences(of: "{id}", with: "nope")
                let method = HTTPRequest.Method(rawValue: spec.method)!
                for caller in ["none", "expired", "revoked", "other-admin"] + Role.allCases.map(\.rawValue) {
                    let token = caller == "none" ? nil : f.tokens[caller]!
                    let before = try await store.auditCount()
                    let r = try await client.call(method, uri, token: token, json: method == .get || method == .delete ? nil : "{}")
                    let expected: String
                    switch (caller, spec.access) {
                    case ("none", _), ("expired", _), ("revoked", _): expected = "401"
                    case (_, .authenticated): expected = "allow"
                    case (_, .permission(let p)):
                        let principal = Principal(name: "robot:\(caller)", method: "token")
                        let bindings = try await store.bindings(principals: principal.bindingNames)
                        expected =
                            Access.decide(principal, p, workspace: p.scope == .workspace ? "main" : nil, bindings: bindings).allowed ? "allow" : "403"
                    default: expected = "?"
                    }
                    switch expected {
                    case "401": #expect(r.status == 401, "\(spec.method) \(uri) as \(caller): \(r.status) \(r.text)")
                    case "403": #expect(r.status == 403, "\(spec.method) \(uri) as \(caller): \(r.status) \(r.text)")
                    default: #expect(r.status != 401 && r.status != 403, "\(spec.method) \(uri) as \(caller): \(r.status) \(r.text)")
                    }
                    // The decision (or the refused authentication) is in the audit log.
                    let new = try await store.auditChain(from: before + 1, limit: 100)
                    let decision = new.first { $0.action == "authz.decision" || $0.action == "authn.failure" }
                    if case .permission = spec.access {
                        #expect(decision != nil, "\(spec.method) \(uri) as \(caller): no audit entry")
                        if expected == "403" { #expect(decision?.decision == "deny") }
                        if expected == "allow" { #expect(decision?.decision == "allow") }
                    } else if expected == "401" {
                        #expect(decision?.action == "authn.failure", "\(spec.method) \(uri) as \(caller)")
                    }
                }
            }
        }
        // The permission table as documented: viewers read, authors publish, operators run, admins manage.
        #expect(Permission.runStart.role == .operator && Permission.workflowPublish.role == .author && Permission.runRead.role == .viewer)
        #expect(Permission.membersManage.role == .admin && Permission.tokenManage.scope == .everyWorkspace)
    }
}
