import ArgumentParser
import CommandSupport
import Crypto
import Documents
import Foundation
import Inventory
import OCI
import OCIRegistry
import Trust
import Vulnerability
import WardenApp

struct ScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Match an image's packages against the offline OSV database (warden db import), with VEX and ignore rules.",
        discussion: """
            SOURCE is any SBOM source: a registry reference, oci-layout:PATH[:TAG|@DIGEST], docker-archive:PATH, dir:PATH, \
            or sbom:FILE (CycloneDX or SPDX JSON from any tool). Each finding names the package (purl, version, \
            locations, the layer that introduced it), every id of its vulnerability group, the range and the \
            comparison that decided, the fixed version and where its severity came from.

            -o FORMAT writes to standard output, -o FORMAT=FILE to a file (table, json, sarif, cyclonedx-json, \
            openvex); repeat it for several. --fail-on SEVERITY exits 16 when a finding that no VEX statement or \
            ignore rule suppresses is at or above it. The database is refused with --fail-on-stale, else reported, \
            when it is older than --max-db-age days.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Image reference, oci-layout:PATH, docker-archive:PATH, dir:PATH or sbom:FILE.") var source: String
    @Option(name: .long, help: "State directory holding vulnerabilities.sqlite; default .warden.") var state: String = StateLayout.defaultRoot
    @Option(name: [.customShort("o"), .customLong("format")], help: "table, json, sarif, cyclonedx-json or openvex, optionally =FILE.")
    var formats: [String] = []
    @Option(name: .long, help: "Exit 16 when an open finding is at or above this severity (low, medium, high, critical).")
    var failOn: String?
    @Option(name: .long, help: "An OpenVEX or CycloneDX VEX document; repeatable.") var vex: [String] = []
    @Option(name: .long, help: "Read OpenVEX attestations attached to the image that verify with this public key.") var vexKey: String?
    @Option(name: .long, help: "Read OpenVEX attestations attached to the image that this trust policy verifies.") var vexPolicy: String?
    @Option(name: .long, help: "An ignore-rules file (YAML: id, package, fix-state, reason, expires).") var ignore: String?
    @Option(name: .long, help: "os (default): language packages an OS package installed match through it; match: also in their ecosystem.")
    var osOwnedLanguagePackages: OSOwnedLanguagePackages = .os
    @Option(name: .long, help: "Days after which the database counts as stale (default 5).") var maxDbAge: Double = 5
    @Flag(name: .long, help: "Refuse to scan with a stale or empty database.") var failOnStale = false
    @Option(name: .long, help: "Platform of a multi-platform image (default: this machine's).") var platform: String?
    @Option(name: .long, help: "The time ignore-rule expiry and database age are judged at (RFC 3339); default now.") var now: String?
    @Flag(name: .long, help: "Attach the result to the image as a signed vulnerability attestation (needs --key).") var attest = false
    @Option(name: .long, help: "Signing key for --attest.") var key: String?
    @Option(name: .long, help: "Attestation layout for --attest: legacy (.att tag) or bundle.") var attestFormat: SignatureFormatOption = .bundle
    @OptionGroup var password: PasswordOptions

    func validate() throws {
        let _: [(ScanFormat, String?)] = try parseOutputs(formats)
        if let failOn {
            do { _ = try ScanJob.failOnSeverity(failOn, what: "--fail-on") } catch let e as VulnerabilityError { throw ValidationError(e.reason) }
        }
        try validateAttestation(attest, key: key, source: source)
        if vexKey != nil && vexPolicy != nil { throw ValidationError("give --vex-key or --vex-policy, not both") }
        guard maxDbAge > 0 else { throw ValidationError("--max-db-age must be a positive number of days") }
    }

    func run() async throws {
        let requested: [(ScanFormat, String?)] = try parseOutputs(formats)
        let outputs = requested.isEmpty ? [(.table, nil)] : requested
        let wanted = try platform.map { p in
            do { return try Platform(parsing: p) } catch let e as OCIError { throw ValidationError(e.reason) }
        }
        let at = try now.map { text in
            guard let d = RFC3339.date(text) else { throw ValidationError("--now \(text) is not an RFC 3339 timestamp") }
            return d
        }
        let parsed: InventoryJob.Source
        do { parsed = try InventoryJob.Source(parsing: source) } catch let e as OCIError { throw ValidationError(e.reason) }
        let signingKey = try key.map { try loadKey($0, password) }
        let started = Date()
        let outcome: ScanJob.Outcome
        do {
            let vexTrust: TrustPolicy? =
                try (vexKey != nil || vexPolicy != nil)
                ? VerificationJob.trustPolicy(AuthoritySpec(policy: vexPolicy, key: vexKey), attestations: []) { path, what in
                    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                        throw TrustError(.malformed, "\(what == "--key" ? "--vex-key" : what) \(path): cannot read the file")
                    }
                    return text
                } : nil
            let request = ScanJob.Request(
                source: parsed, name: source, platform: wanted, vexFiles: vex, vexTrust: vexTrust, ignoreFile: ignore,
                osOwnedLanguagePackages: osOwnedLanguagePackages, maxDatabaseAge: maxDbAge * 86_400, failOnStale: failOnStale, now: at ?? Date())
            let store = try DatabaseJob.open(state: StateLayout(state))
            outcome = try await withRegistries(global) { registries in
                let outcome = try await ScanJob.run(request, store: store, registries: registries)
                if attest, let signingKey {
                    let m = try await ScanJob.attest(
                        outcome, of: parsed, key: signingKey, layout: attestFormat.format, started: started, registries: registries)
                    printError("Attested \(m.digest) (\(m.predicateType)) in \(m.manifest)")
                }
                return outcome
            }
        } catch let e as ValidationError {
            throw e
        } catch {
            throw failure(for: error)
        }
        for w in outcome.report.warnings { printError("warning: \(w)") }
        for (format, file) in outputs {
            let data = Data(try format.render(outcome.report, timestamp: at ?? Date()))
            if let file {
                try PrivateFiles.writeAtomically(data, to: file, mode: 0o644)
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
        let code = ScanJob.exitCode(outcome.report, failOn: try failOn.map { try ScanJob.failOnSeverity($0, what: "--fail-on") })
        if code != 0 { throw ExitCode(code) }
    }
}

extension OSOwnedLanguagePackages: ExpressibleByArgument {}
