import Crypto
import Documents
import Foundation
import Inventory
import OCI
import OCIRegistry
import Trust
import Vulnerability

/// The scan job (`warden scan`, `vuln/scan@v1`): an inventory (from any SBOM source) matched against the state
/// directory's OSV database, VEX statements and ignore rules applied, one report every output renders.
public enum ScanJob {
    public struct Request: Sendable {
        public var source: InventoryJob.Source
        /// The subject as the user wrote it (default: the source).
        public var name: String?
        public var platform: Platform?
        /// OpenVEX or CycloneDX VEX files (`--vex`).
        public var vexFiles: [String]
        /// OpenVEX attestations attached to the image are read when this trust policy verifies them (`--vex-key`,
        /// `--vex-policy`); unverified ones are left out with a warning.
        public var vexTrust: TrustPolicy?
        /// An ignore-rules file (`--ignore`).
        public var ignoreFile: String?
        public var osOwnedLanguagePackages: OSOwnedLanguagePackages
        /// A database older than this is reported (default 5 days, as grype).
        public var maxDatabaseAge: TimeInterval
        /// Refuse to scan with a stale or empty database instead of warning.
        public var failOnStale: Bool
        public var now: Date

        public init(
            source: InventoryJob.Source, name: String? = nil, platform: Platform? = nil, vexFiles: [String] = [], vexTrust: TrustPolicy? = nil,
            ignoreFile: String? = nil, osOwnedLanguagePackages: OSOwnedLanguagePackages = .os, maxDatabaseAge: TimeInterval = 5 * 86_400,
            failOnStale: Bool = false, now: Date = Date()
        ) {
            self.source = source
            self.name = name
            self.platform = platform
            self.vexFiles = vexFiles
            self.vexTrust = vexTrust
            self.ignoreFile = ignoreFile
            self.osOwnedLanguagePackages = osOwnedLanguagePackages
            self.maxDatabaseAge = maxDatabaseAge
            self.failOnStale = failOnStale
            self.now = now
        }
    }

    public struct Outcome: Sendable {
        public var report: ScanReport
        /// The inventory that was matched (its subject descriptor is what `--attest` attaches to).
        public var inventory: InventoryJob.Result
    }

    /// The exit code `--fail-on` asks for: 16 when a finding that is not suppressed is at or above `failOn`.
    public static let failOnExitCode: Int32 = 16

    /// The severity a `--fail-on`/`failOn` value names (`low` … `critical`, any case), or a `VulnerabilityError`
    /// naming `what` (how the surface calls the option) and the values it takes.
    public static func failOnSeverity(_ text: String, what: String) throws -> Severity {
        guard let s = Severity(parsing: text), s != .unknown, s != .none else {
            throw VulnerabilityError(.malformed, "\(what) \"\(text)\": expected low, medium, high or critical")
        }
        return s
    }

    public static func exitCode(_ report: ScanReport, failOn: Severity?) -> Int32 {
        guard let failOn else { return 0 }
        return report.open.contains { $0.severity >= failOn } ? failOnExitCode : 0
    }

    /// VEX documents and the ignore rules read before anything is scanned, so a bad file fails fast.
    static func readInputs(_ request: Request) throws -> ([VEXDocument], IgnoreRules?) {
        let vex = try request.vexFiles.map { path in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw VulnerabilityError(.notFound, "--vex \(path): cannot read the file")
            }
            return try VEXDocument.read([UInt8](data), name: path)
        }
        let ignore = try request.ignoreFile.map { path in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw VulnerabilityError(.notFound, "--ignore \(path): cannot read the file")
            }
            return try IgnoreRules.read([UInt8](data), file: path)
        }
        return (vex, ignore)
    }

    /// Scans `request.source` against `store`.
    public static func run(_ request: Request, store: any AdvisoryStore, registries: Registries) async throws -> Outcome {
        var (vex, ignore) = try readInputs(request)
        let status = try await store.summary()
        var warnings: [String] = []
        if let stale = staleness(status, now: request.now, maxAge: request.maxDatabaseAge) {
            if request.failOnStale { throw VulnerabilityError(.stale, stale + "; run `warden db import` with fresh data, or drop --fail-on-stale") }
            warnings.append(stale)
        }
        let inventory = try await InventoryJob.run(request.source, name: request.name, platform: request.platform, registries: registries)
        if let trust = request.vexTrust {
            if case .image(let location) = request.source, let subject = inventory.subject {
                let (docs, notes) = try await attachedVEX(location, subject: subject, trust: trust, now: request.now, registries: registries)
                vex += docs
                warnings += notes
            } else {
                warnings.append("\(request.source): VEX attestations are read only from images in a registry or an OCI layout")
            }
        }
        let matched = try await Matcher.match(
            inventory.inventory, store: store, options: .init(osOwnedLanguagePackages: request.osOwnedLanguagePackages))
        var findings = VEX.apply(vex, to: matched.findings, subject: inventory.inventory.subject.digest)
        var expired: [String] = []
        if let ignore {
            (findings, expired) = ignore.apply(to: findings, now: request.now)
        }
        let report = ScanReport(
            subject: inventory.inventory.subject, distro: inventory.inventory.distro, database: status, findings: findings,
            packages: inventory.inventory.packages, warnings: warnings + matched.warnings + InventoryJob.describe(inventory.skipped, limit: 5),
            expiredRules: expired)
        return Outcome(report: report, inventory: inventory)
    }

    /// Why the database is not fit to scan with (empty, or older than `maxAge`), or nil.
    public static func staleness(_ status: DatabaseStatus, now: Date, maxAge: TimeInterval) -> String? {
        guard status.records > 0, let fresh = status.freshness else {
            return "the vulnerability database is empty: nothing can match"
        }
        let age = now.timeIntervalSince(fresh)
        guard age > maxAge else { return nil }
        return
            "the vulnerability database is \(Int(age / 86_400)) days old (newest record \(status.newestModified ?? "?"), over the \(Int(maxAge / 86_400))-day maximum)"
    }

    /// OpenVEX attestations attached to `subject`, each verified against `trust`: the verified ones read as VEX
    /// documents, the others named in the notes with the reason they were left out.
    static func attachedVEX(
        _ location: Location, subject: Descriptor, trust: TrustPolicy, now: Date, registries: Registries
    ) async throws -> ([VEXDocument], [String]) {
        let store = try registries.store(for: location, create: false)
        let objects = try await Attachments.discover(subject, in: store, attestations: true)
        let openVEX = objects.filter { ($0.statement?.predicateType ?? $0.declaredPredicateType ?? "").hasPrefix("https://openvex.dev/ns") }
        guard !openVEX.isEmpty else { return ([], []) }
        let decision = try await ImageVerification.verify(
            subject, objects: objects, in: store, repository: location.repositoryName, policy: trust, now: now)
        var docs: [VEXDocument] = []
        var notes: [String] = []
        for o in openVEX {
            let verified = decision.attestations.contains { $0.location == o.location && $0.verified }
            guard verified, let statement = o.statement else {
                let reason = decision.attestations.first { $0.location == o.location }?.reason ?? "not verified"
                notes.append("OpenVEX attestation \(o.location) left out: \(reason)")
                continue
            }
            docs.append(try VEXDocument.read([UInt8](statement.predicate), name: "attestation \(o.location)"))
        }
        return (docs, notes)
    }

    /// Attaches the scan of an image as a signed in-toto attestation with cosign's vulnerability predicate, about
    /// the digest that was scanned.
    public static func attest(
        _ outcome: Outcome, of source: InventoryJob.Source, key: P256.Signing.PrivateKey, layout: SignatureFormat, started: Date,
        registries: Registries
    ) async throws -> SigningJob.AttestReport {
        guard case .image(let location) = source, let subject = outcome.inventory.subject else {
            throw InventoryError(.unsupported, "\(source): an attestation needs an image in a registry or an OCI layout")
        }
        let predicate = try VulnPredicate.make(
            result: try ScanFormat.json.render(outcome.report), version: WardenVersion.current, database: outcome.report.database,
            started: RFC3339.string(started), finished: RFC3339.string(Date()))
        return try await SigningJob.attest(
            .init(location: location.pinned(to: subject.digest), predicateType: VulnPredicate.type, predicate: Data(predicate), format: layout),
            key: key, registries: registries)
    }
}
