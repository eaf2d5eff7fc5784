import CEL
import Foundation
import HummingbirdTesting
import Inventory
import OCI
import OCIRegistry
import OCITesting
import Storage
import Testing
import Triggers
import WardenApp

@testable import WardenServer

/// The compliance engine end to end in a server with its services running, against a real docker-registry and
/// the real scanners: a component declared through the API follows a tag; a push is enumerated, scanned for
/// vulnerabilities (the state's OSV database), licenses and OS end of life; the findings have due dates; one is
/// rescored; the summary and the exported issues follow; a new push to the tag is a new version that keeps the
/// discovery dates.
@Suite(.serialized) struct ComplianceLoopLiveTests {
    /// A Debian 7 image with one dpkg package (nginx-full from source nginx) and its machine-readable copyright.
    static func image(version: String, extra: String) -> [UInt8] {
        var w = TarWriter()
        w.file("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 7 (wheezy)\"\nID=debian\nVERSION_ID=\"7\"\nVERSION_CODENAME=wheezy\n")
        w.file(
            "var/lib/dpkg/status",
            "Package: nginx-full\nStatus: install ok installed\nPriority: optional\nSection: httpd\nInstalled-Size: 1000\n"
                + "Maintainer: Debian Nginx Maintainers\nArchitecture: amd64\nSource: nginx\nVersion: \(version)\nDescription: nginx web server\n\n")
        w.file(
            "usr/share/doc/nginx-full/copyright",
            "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2002 Igor Sysoev\nLicense: BSD-2-clause\n"
        )
        w.file("srv/build.txt", extra)
        return w.finish()
    }

    /// Pushes a one-layer image to `layout` as `tag`.
    static func push(_ tar: [UInt8], to layout: LayoutStore, tag: String) async throws {
        let layer = Descriptor(mediaType: MediaType.imageLayer, digest: OCI.Digest.compute(Data(tar)), size: Int64(tar.count))
        try await layout.push(layer, bytes: Data(tar))
        let config = try JSONEncoder().encode(
            ImageConfig(architecture: "amd64", os: "linux", diffIDs: [layer.digest], created: "2026-01-01T00:00:00Z"))
        let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, digest: OCI.Digest.compute(config), size: Int64(config.count))
        try await layout.push(configDescriptor, bytes: config)
        let manifest = try RawManifest.encode(ImageManifest(config: configDescriptor, layers: [layer]), mediaType: MediaType.imageManifest)
        try await layout.push(manifest)
        try await layout.tag(manifest.descriptor, as: tag)
    }

    /// One hand-written OSV record: nginx of Debian 7 before 1.2.1-2.2+wheezy3, CVSS 3.1 base 9.8.
    static let advisory = """
        {"schema_version": "1.6.0", "id": "WARDEN-TEST-2026-0001", "modified": "2026-11-01T00:00:00Z", "published": "2026-11-01T00:00:00Z",
         "summary": "nginx: session reuse across virtual hosts", "aliases": ["CVE-2014-3616"],
         "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
         "affected": [{"package": {"ecosystem": "Debian:7", "name": "nginx"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.1-2.2+wheezy3"}]}]}]}
        """

    func findings(_ client: any TestClientProtocol, _ token: String, _ query: String) async throws -> [Value] {
        try await client.call(.get, "/api/v1/findings?\(query)", token: token).json["items"]?.list ?? []
    }

    @Test(.timeLimit(.minutes(5))) func aPushedTagIsEnumeratedScannedRescoredAndExported() async throws {
        let reg = try await RegistryProcess.start()
        defer { reg.stop() }
        let issues = try makeTemporaryDirectory() + "/issues"
        let registries = try Registries()
        let f = try await Fixture.make(
            lookup: RegistryTriggerLookup(registries: registries),
            configure: {
                $0.compliance.enumerateEvery = 1
                $0.compliance.issuesDirectory = issues
            },
            scanners: { layout in
                let osv = try makeTemporaryDirectory()
                try Data(Self.advisory.utf8).write(to: URL(fileURLWithPath: osv + "/WARDEN-TEST-2026-0001.json"))
                let store = try DatabaseJob.open(state: layout)
                _ = try await DatabaseJob.importAdvisories(.init(paths: [osv]), into: store)
                return try ArtefactScanners.standard(names: ["vuln", "license", "os-eol"], registries: registries, state: layout, clamd: nil)
            })
        let caller = ControlPlane.Caller(Principal(name: "admin", method: "token"))
        let scanner = try await f.server.control.createToken(name: "scanner", roles: ["*": .operator], lifetime: nil, caller: caller).secret
        let layoutPath = try makeTemporaryDirectory()
        let layout = try LayoutStore(path: layoutPath)
        try await Self.push(Self.image(version: "1.2.1-2.2+wheezy2", extra: "one"), to: layout, tag: "1.0")
        try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layoutPath):1.0", "docker://\(reg.host)/team/app:1.0"])
        let first = try await Skopeo.rawManifest("\(reg.host)/team/app:1.0").1.description

        try await f.server.application(withServices: true).test(.live) { client in
            let component = """
                apiVersion: warden.dev/v1
                kind: Component
                metadata: {name: shop}
                spec:
                  version: "1"
                  artefacts: [\(reg.host)/team/app:1.0]
                """
            let declared = try await client.call(.post, "/api/v1/components", token: scanner, json: component, contentType: "application/yaml")
            #expect(declared.status == 200, "\(declared.text)")
            // Enumerated within a second, scanned by the workers: three datasources' findings.
            var items: [Value] = []
            for _ in 0..<600 {
                items = try await findings(client, scanner, "component=shop")
                if Set(items.compactMap { $0["datasource"]?.string }) == ["vuln", "license", "os-eol"] { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let backlog = try await client.call(.get, "/api/v1/backlog", token: scanner).text
            #expect(Set(items.compactMap { $0["datasource"]?.string }) == ["vuln", "license", "os-eol"], "\(items) backlog: \(backlog)")
            let vuln = try #require(items.first { $0["datasource"]?.string == "vuln" })
            #expect(vuln["id"]?.string == "CVE-2014-3616" && vuln["subject"]?.string?.hasPrefix("pkg:deb/debian/nginx-full") == true, "\(vuln)")
            #expect(vuln["category"]?.string == "CRITICAL" && vuln["dueDate"]?.string != nil && vuln["artefact"]?.string?.hasSuffix(first) == true)
            let eol = try #require(items.first { $0["datasource"]?.string == "os-eol" })
            #expect(eol["subject"]?.string == "debian" && eol["id"]?.string == "7", "\(eol)")
            let license = try #require(items.first { $0["datasource"]?.string == "license" })
            #expect(license["id"]?.string == "BSD-2-clause", "\(license)")
            #expect(try await client.call(.get, "/api/v1/compliance/summary?subject=shop", token: scanner).json["summary"]?.string == "CRITICAL")

            // The enumerator exported the issues: the vulnerability's is open; rescored NONE, its issue closes.
            let exported = try await client.call(.post, "/api/v1/compliance/issues", token: scanner)
            let vulnIssue = try #require(
                exported.json["open"]?.list.first { $0["title"]?.string?.hasPrefix("Vulnerabilities") == true }, "\(exported.text)")
            let issueID = try #require(vulnIssue["id"]?.string)
            #expect(FileManager.default.fileExists(atPath: issues + "/\(issueID).md"))
            let rescore =
                #"{"package":"\#(vuln["subject"]!.string!)","id":"CVE-2014-3616","scope":"component","scopeValue":"shop","category":"NONE","comment":"the affected TLS session cache is off"}"#
            #expect(try await client.call(.post, "/api/v1/rescorings", token: scanner, json: rescore).status == 201)
            let summary = try await client.call(.get, "/api/v1/compliance/summary?subject=shop", token: scanner).json
            // NONE: the rescored vulnerability and the permissive license.
            #expect(summary["summary"]?.string != "CRITICAL" && summary["openByCategory"]?["NONE"]?.int == 2, "\(summary)")
            // Closed by this export or by the enumerator's own, which runs every second: the file says so either way.
            let again = try await client.call(.post, "/api/v1/compliance/issues", token: scanner)
            #expect(again.status == 200 && again.json["open"]?.list.contains { $0["id"]?.string == issueID } == false, "\(again.text)")
            let closedIssue = try String(contentsOfFile: issues + "/\(issueID).json", encoding: .utf8)
            #expect(closedIssue.contains("no-open-findings"), "\(closedIssue)")

            // A new push to the tag: a new version, scanned, its findings discovered when version 1's were.
            try await Self.push(Self.image(version: "1.2.1-2.2+wheezy2", extra: "two"), to: layout, tag: "1.0")
            try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layoutPath):1.0", "docker://\(reg.host)/team/app:1.0"])
            let second = try await Skopeo.rawManifest("\(reg.host)/team/app:1.0").1.description
            #expect(second != first)
            var next: [Value] = []
            for _ in 0..<600 {
                next = try await findings(client, scanner, "artefact=\(reg.host)/team/app@\(second)")
                if next.count == items.count { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(next.count == items.count, "\(next)")
            let moved = try #require(next.first { $0["datasource"]?.string == "vuln" })
            #expect(moved["discoveredAt"]?.string == vuln["discoveredAt"]?.string && moved["category"]?.string == "NONE")
            let artefacts = try await client.call(.get, "/api/v1/artefacts?component=shop", token: scanner).json["artefacts"]?.list ?? []
            #expect(artefacts.first { $0["artefact"]?.string?.hasSuffix(first) == true }?["tracked"]?.bool == false, "\(artefacts)")
        }
        #expect(try await f.server.store.auditEntries(AuditQuery(action: "artefact.version")).count == 2)
        #expect(try await f.server.store.auditEntries(AuditQuery(action: "findings.scan")).count >= 6)
    }

    /// A registry notifying the server: a tag pushed is followed (with `followPushes`), enumerated and scanned without
    /// anyone declaring it; a cosign signature tag pushed next to it is not.
    @Test(.timeLimit(.minutes(5))) func aTagPushedToANotifyingRegistryIsFollowedAndScanned() async throws {
        let registries = try Registries()
        let f = try await Fixture.make(
            lookup: RegistryTriggerLookup(registries: registries),
            configure: {
                $0.receivers = [ReceiverConfig(name: "registry", format: .distribution, secret: "s3cret", header: "Authorization")]
                $0.compliance.enumerateEvery = 1
                $0.compliance.followPushes = []
                $0.compliance.scanners = ["license"]
            },
            scanners: { layout in
                try ArtefactScanners.standard(names: ["license"], registries: registries, state: layout, clamd: nil)
            })
        try await f.server.application(withServices: true).test(.live) { client in
            let reg = try await RegistryProcess.start(
                notify: (url: "http://127.0.0.1:\(client.port!)/api/v1/hooks/registry", authorization: "Bearer s3cret"))
            defer { reg.stop() }
            let layoutPath = try makeTemporaryDirectory()
            let layout = try LayoutStore(path: layoutPath)
            try await Self.push(Self.image(version: "1.2.1-2.2+wheezy2", extra: "web"), to: layout, tag: "2.0")
            try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layoutPath):2.0", "docker://\(reg.host)/team/web:2.0"])
            let digest = try await Skopeo.rawManifest("\(reg.host)/team/web:2.0").1.description
            let signatureTag = digest.replacingOccurrences(of: "sha256:", with: "sha256-") + ".sig"
            try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layoutPath):2.0", "docker://\(reg.host)/team/web:\(signatureTag)"])
            var items: [Value] = []
            for _ in 0..<600 {
                items = try await findings(client, f.admin, "repository=team/web&registry=\(reg.host)")
                if !items.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let tags = try await client.call(.get, "/api/v1/tracked-tags", token: f.admin).json["tags"]?.list ?? []
            #expect(tags.compactMap { $0["reference"]?.string } == ["\(reg.host)/team/web:2.0"], "\(tags)")
            #expect(items.first?["id"]?.string == "BSD-2-clause" && items.first?["artefact"]?.string?.hasSuffix(digest) == true, "\(items)")
            let audit = try await f.server.store.auditEntries(AuditQuery(action: "tag.track"))
            #expect(audit.map(\.actor) == ["system:compliance"], "\(audit)")
        }
    }
}
