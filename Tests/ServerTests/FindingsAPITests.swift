import CEL
import Crypto
import Foundation
import OCITesting
import Storage
import Synchronization
import Testing
import WardenApp

@testable import WardenServer

/// The findings and compliance routes end to end on an in-process server: a scanner records scans, a viewer reads
/// findings with due dates, an operator of every workspace rescores, summaries, history and SLA reports follow —
/// each change audited with its request, each refusal a problem document.
@Suite(.serialized) struct FindingsAPITests {
    static let v1 = "r.example/team/app@sha256:" + String(repeating: "1", count: 64)
    static let v2 = "r.example/team/app@sha256:" + String(repeating: "2", count: 64)

    static func scan(_ artefact: String, _ entries: [(String, String, Double)], at: String? = nil) -> String {
        let items = entries.map { #"{"type":"vulnerability","subject":"\#($0.0)","id":"\#($0.1)","score":\#($0.2),"summary":"\#($0.0) \#($0.1)"}"# }
        let time = at.map { #","scannedAt":"\#($0)""# } ?? ""
        return #"{"artefact":"\#(artefact)","datasource":"vuln","tags":["1.0"],"entries":[\#(items.joined(separator: ","))]\#(time)}"#
    }

    @Test func aScanIsRescoredSummarisedAndReportedThroughTheAPI() async throws {
        let f = try await Fixture.make()
        let caller = ControlPlane.Caller(Principal(name: "admin", method: "token"))
        let scanner = try await f.server.control.createToken(name: "scanner", roles: ["*": .operator], lifetime: nil, caller: caller).secret
        let viewer = f.tokens["viewer"]!
        try await f.test { client in
            let track = try await client.call(
                .post, "/api/v1/artefacts", token: scanner,
                json: #"{"artefacts":[{"artefact":"\#(Self.v1)","component":"shop","componentVersion":"1.0"}]}"#)
            #expect(track.status == 200, "\(track.text)")
            #expect(track.json["artefacts"]?.list.first?["component"]?.string == "shop")
            let recorded = try await client.call(
                .post, "/api/v1/scans", token: scanner, json: Self.scan(Self.v1, [("openssl", "CVE-1", 9.8), ("zlib", "CVE-2", 5.0)]))
            #expect(recorded.status == 200, "\(recorded.text)")
            #expect(recorded.json["new"]?.int == 2 && recorded.json["closed"]?.int == 0)
            // An operator of one workspace may not record scans; a viewer of one reads findings.
            let refused = try await client.call(.post, "/api/v1/scans", token: f.tokens["operator"]!, json: Self.scan(Self.v1, []))
            #expect(refused.status == 403 && refused.json["code"]?.string == "forbidden", "\(refused.text)")
            let page = try await client.call(.get, "/api/v1/findings?component=shop&limit=1", token: viewer)
            #expect(page.status == 200, "\(page.text)")
            let first = try #require(page.json["items"]?.list.first)
            #expect(first["id"]?.string == "CVE-1" && first["category"]?.string == "CRITICAL" && first["dueDate"]?.string != nil)
            let cursor = try #require(page.json["next"]?.string)
            let second = try await client.call(.get, "/api/v1/findings?component=shop&limit=1&cursor=\(cursor)", token: viewer)
            #expect(second.json["items"]?.list.map { $0["id"]?.string } == ["CVE-2"] && second.json["next"] == nil, "\(second.text)")
            #expect(try await client.call(.get, "/api/v1/compliance/summary?subject=shop", token: viewer).json["summary"]?.string == "CRITICAL")

            // Rescored NONE for the component: the finding says so and the component is CLEAN.
            let body =
                #"{"package":"openssl","id":"CVE-1","scope":"component","scopeValue":"shop","category":"NONE","comment":"not built","expiresAt":"2099-01-01T00:00:00Z"}"#
            #expect(try await client.call(.post, "/api/v1/rescorings", token: viewer, json: body).status == 403)
            let created = try await client.call(.post, "/api/v1/rescorings", token: scanner, json: body)
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.json["id"]?.string)
            #expect(created.head.headerFields[.location] == "/api/v1/rescorings/\(id)" && created.json["user"]?.string == "robot:scanner")
            let key = try #require(first["key"]?.string).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let detail = try await client.call(.get, "/api/v1/finding?key=\(key)", token: viewer)
            #expect(detail.json["finding"]?["category"]?.string == "NONE" && detail.json["rescorings"]?.list.count == 1, "\(detail.text)")
            let summary = try await client.call(.get, "/api/v1/compliance/summary?subject=shop", token: viewer)
            #expect(summary.json["summary"]?.string == "MEDIUM" && summary.json["openByCategory"]?["NONE"]?.int == 1, "\(summary.text)")
            #expect(try await client.call(.get, "/api/v1/rescorings?package=openssl&id=CVE-1", token: viewer).json["rescorings"]?.list.count == 1)

            // Snapshots, the history, an SLA report far in the future (CVE-2 overdue, CVE-1 rescored).
            let snapshots = try await client.call(.post, "/api/v1/compliance/snapshots", token: scanner)
            #expect(snapshots.status == 200 && snapshots.json["snapshots"]?.int == 2, "\(snapshots.text)")
            let history = try await client.call(.get, "/api/v1/compliance/history?subject=shop", token: viewer)
            #expect(history.json["snapshots"]?.list.count == 1, "\(history.text)")
            let report = try await client.call(.get, "/api/v1/compliance/sla-report?subject=shop&releaseDate=2098-01-01T00:00:00Z", token: viewer)
            #expect(report.json["overdue"]?.list.map { $0["id"]?.string } == ["CVE-2"], "\(report.text)")
            #expect(report.json["rescoringsApplied"]?.list.count == 1)

            // The rescoring as OpenVEX: not_affected for the component's tracked version, the package its subcomponent.
            let vex = try await client.call(.get, "/api/v1/rescorings/openvex", token: viewer)
            let statement = try #require(vex.json["statements"]?.list.first, "\(vex.text)")
            #expect(statement["status"]?.string == "not_affected" && statement["vulnerability"]?["name"]?.string == "CVE-1")
            #expect(statement["products"]?.list.first?["@id"]?.string == Self.v1, "\(vex.text)")

            // Revoked: CRITICAL again, the rescoring kept in the history.
            #expect(try await client.call(.delete, "/api/v1/rescorings/\(id)", token: scanner).status == 200)
            #expect(try await client.call(.delete, "/api/v1/rescorings/rsc-none", token: scanner).status == 404)
            let after = try await client.call(.get, "/api/v1/finding?key=\(key)", token: viewer)
            #expect(after.json["finding"]?["category"]?.string == "CRITICAL" && after.json["rescorings"]?.list.count == 1)

            // Bad input: a problem naming what is wrong, nothing recorded.
            for (method, uri, json) in [
                ("GET", "/api/v1/findings?cursor=garbage!", nil), ("GET", "/api/v1/findings?limit=0", nil),
                ("GET", "/api/v1/findings?artefact=nope@sha256:1", nil), ("GET", "/api/v1/compliance/summary", nil),
                ("GET", "/api/v1/compliance/history?subject=shop&from=yesterday", nil), ("GET", "/api/v1/finding?key=a%7Cb", nil),
                (
                    "POST", "/api/v1/scans",
                    #"{"artefact":"\#(Self.v1)","datasource":"vuln","entries":[{"type":"vulnerability","subject":"x","id":"y","score":11}]}"#
                ),
                ("POST", "/api/v1/scans", #"{"artefact":"\#(Self.v1)","datasource":"Vuln!","entries":[]}"#),
                ("POST", "/api/v1/scans", #"{"artefact":"\#(Self.v1)","datasource":"vuln","entries":[{"type":"vulnerability"}]}"#),
                ("POST", "/api/v1/scans", #"{"artefact":"\#(Self.v1)","datasource":"vuln","extra":1}"#),
                ("POST", "/api/v1/rescorings", #"{"package":"openssl","id":"CVE-1","scope":"galaxy","category":"NONE","comment":"x"}"#),
                ("POST", "/api/v1/rescorings", #"{"package":"openssl","id":"CVE-1","scope":"global","category":"BLOCKER","comment":"x"}"#),
            ] {
                let r = try await client.call(method == "GET" ? .get : .post, uri, token: scanner, json: json)
                #expect(r.status == 400 && r.json["detail"]?.string?.isEmpty == false, "\(method) \(uri) \(json ?? ""): \(r.status) \(r.text)")
            }
            #expect(try await client.call(.get, "/api/v1/findings?component=shop&all=true", token: viewer).json["items"]?.list.count == 2)
        }
        let scans = try await f.server.store.auditEntries(AuditQuery(action: "findings.scan"))
        #expect(scans.count == 1 && scans[0].actor == "robot:scanner" && scans[0].requestID != nil)
        #expect(try await f.server.store.auditEntries(AuditQuery(action: "rescoring.create")).count == 1)
        #expect(try await f.server.store.auditEntries(AuditQuery(action: "rescoring.revoke")).count == 1)
    }

    @Test func exportedIssuesArePostedSignedAndAFailedDeliveryIsRetried() async throws {
        let failing = Mutex(false)
        let hook = try await ScriptedServer.start { _ in failing.withLock { $0 } ? .json("{}", status: 500) : .json("{}", status: 201) }
        defer { hook.stop() }
        let f = try await Fixture.make(configure: {
            $0.compliance.issuesWebhook = hook.baseURL + "/repos/acme/shop/issues"
            $0.compliance.issuesWebhookSecret = "s3cret"
        })
        let caller = ControlPlane.Caller(Principal(name: "admin", method: "token"))
        let scanner = try await f.server.control.createToken(name: "scanner", roles: ["*": .operator], lifetime: nil, caller: caller).secret
        try await f.test { client in
            #expect(
                try await client.call(.post, "/api/v1/scans", token: scanner, json: Self.scan(Self.v1, [("openssl", "CVE-1", 9.8)])).status == 200)
            let first = try await client.call(.post, "/api/v1/compliance/issues", token: scanner)
            #expect(first.status == 200 && first.json["open"]?.list.count == 1, "\(first.text)")
            let posted = try #require(hook.requests.last)
            #expect(posted.method == "POST" && posted.uri == "/repos/acme/shop/issues")
            let mac = HMAC<SHA256>.authenticationCode(for: posted.body, using: SymmetricKey(data: Data("s3cret".utf8)))
            #expect(posted.header("X-Warden-Signature-256") == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
            let payload = try Value.parseJSON(Array(posted.body))
            #expect(
                payload["state"]?.string == "open" && payload["title"]?.string?.hasPrefix("Vulnerabilities in artefact r.example/team/app") == true)
            #expect(
                payload["body"]?.string?.contains("CVE-1") == true
                    && payload["warden"]?["id"]?.string == first.json["open"]?.list.first?["id"]?.string)
            // Rescored NONE: the issue closes, but the receiver fails — the export fails and records nothing …
            let body = #"{"package":"openssl","id":"CVE-1","scope":"global","category":"NONE","comment":"not built"}"#
            #expect(try await client.call(.post, "/api/v1/rescorings", token: scanner, json: body).status == 201)
            failing.withLock { $0 = true }
            let refused = try await client.call(.post, "/api/v1/compliance/issues", token: scanner)
            #expect(refused.status == 409 && refused.json["detail"]?.string?.contains("500") == true, "\(refused.text)")
            // … so the next export delivers the close again.
            failing.withLock { $0 = false }
            let again = try await client.call(.post, "/api/v1/compliance/issues", token: scanner)
            #expect(again.json["closed"]?.list.first?["state"]?.string == "closed:no-open-findings", "\(again.text)")
            let closed = try Value.parseJSON(Array(try #require(hook.requests.last).body))
            #expect(closed["state"]?.string == "closed" && closed["state_reason"]?.string == "completed")
            #expect(hook.requests.filter { $0.method == "POST" }.count == 3)
        }
    }
}

/// The configuration file's `compliance:` section, read strictly.
@Suite struct ComplianceSettingsTests {
    static let receivers = """
        receivers:
          - {name: hub, format: distribution}
          - {name: harbor, format: harbor}

        """

    @Test func theComplianceSectionReadsEveryKeyAndNamesWhatIsWrong() throws {
        let s = try ServerSettings.parse(
            Self.receivers + """
                compliance:
                  enumerateEvery: 1m
                  scanners: [vuln, license]
                  followPushes: [hub]
                  issuesWebhook: {url: "https://hooks.example/issues"}
                """, file: "serve.yaml")
        #expect(s.compliance.enumerateEvery == 60 && s.compliance.scanners == ["vuln", "license"])
        #expect(s.compliance.followPushes == ["hub"] && s.compliance.issuesWebhook == "https://hooks.example/issues")
        #expect(try ServerSettings.parse("compliance: {followPushes: true}\n", file: "s.yaml").compliance.followPushes == [])
        #expect(try ServerSettings.parse("compliance: {followPushes: false}\n", file: "s.yaml").compliance.followPushes == nil)
        #expect(ServerSettings().compliance.followPushes == nil)
        for (text, expected) in [
            ("compliance: {followPushes: [nobody]}\n", "receiver nobody"),
            ("compliance: {followPushes: []}\n", "true, false or a list"),
            ("compliance: {issuesWebhook: {url: \"http://hooks.example\"}}\n", "https://"),
            ("compliance: {scanners: [vuln, antivirus]}\n", "antivirus"),
            ("compliance: {followPush: true}\n", "followPush"),
        ] {
            #expect {
                _ = try ServerSettings.parse(Self.receivers + text, file: "serve.yaml")
            } throws: { "\($0)".contains(expected) && "\($0)".contains("serve.yaml") }
        }
    }
}
