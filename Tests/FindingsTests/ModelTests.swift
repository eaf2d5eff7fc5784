import Foundation
import Testing

@testable import Findings

@Suite struct ModelTests {
    @Test(arguments: [
        (
            FindingKey(artefact: artefact(), datasource: "osv", dataKey: vulnerability()),
            "registry.example|team/app|sha256:\(String(repeating: "1", count: 64))|osv|vulnerability|pkg:deb/debian/openssl|CVE-2026-0001"
        ),
        (
            FindingKey(
                artefact: ArtefactID(registry: "r:5000", repository: "a/b", digest: "sha256:ab"), datasource: "clam|av",
                dataKey: .malware(file: "sha256:ff", signature: "Eicar-Test-Signature 100%")),
            "r:5000|a/b|sha256:ab|clam%7Cav|malware|sha256:ff|Eicar-Test-Signature 100%25"
        ),
        (
            FindingKey(artefact: artefact(), datasource: "eol", dataKey: .osEndOfLife(os: "debian", version: "10")),
            "registry.example|team/app|sha256:\(String(repeating: "1", count: 64))|eol|os-eol|debian|10"
        ),
    ])
    func stableStringRoundTrips(key: FindingKey, text: String) {
        #expect(key.stableString == text)
        #expect(FindingKey(stableString: text) == key)
    }

    @Test(arguments: ["", "a|b|c", "1|2|3|4|5|6|7|8", "a|b|c|d|e|f|%zz"])
    func stableStringRejectsOtherText(text: String) {
        #expect(FindingKey(stableString: text) == nil)
    }

    @Test func lineageDropsOnlyTheDigest() {
        let a = FindingKey(artefact: artefact("team/app", 1), datasource: "osv", dataKey: vulnerability())
        let b = FindingKey(artefact: artefact("team/app", 2), datasource: "osv", dataKey: vulnerability())
        #expect(a != b && a.lineage == b.lineage)
        #expect(a.lineage != FindingKey(artefact: artefact("team/other", 1), datasource: "osv", dataKey: vulnerability()).lineage)
        #expect(a.lineage != FindingKey(artefact: artefact("team/app", 1), datasource: "trivy", dataKey: vulnerability()).lineage)
        #expect(a.lineage != FindingKey(artefact: artefact("team/app", 1), datasource: "osv", dataKey: vulnerability("CVE-2026-0002")).lineage)
    }

    @Test func customTypesAreTheirOwnTypes() {
        let secret = FindingType("secret")
        #expect(secret != .vulnerability && secret.rawValue == "secret" && secret.displayName == "secret")
        #expect(FindingType.osEndOfLife.rawValue == "os-eol" && FindingType.malware.dataKeyLabels == ("File", "Signature"))
    }

    @Test(arguments: [(day(1), true), (day(0, hours: -1), false), (day(5), false), (day(4, hours: 23), true)])
    func openAtATime(time: Date, open: Bool) {
        #expect(finding(discovered: day(0), resolved: day(5)).isOpen(at: time) == open)
    }
}
