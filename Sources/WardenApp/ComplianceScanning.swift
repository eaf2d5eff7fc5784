import CEL
import Documents
import Findings
import Foundation
import Inventory
import OCI
import OCIRegistry
import Storage
import Triggers
import Vulnerability

/// What one scanner made of one artefact version: the complete scan, the rescorings it implies (VEX), and
/// informational data (JSON) kept with the scan's meta entry.
public struct ScannerResult: Sendable {
    public var scan: Scan
    public var vex: [CompliancePlane.RescoreRequest]
    public var info: String?
    public init(scan: Scan, vex: [CompliancePlane.RescoreRequest] = [], info: String? = nil) {
        self.scan = scan
        self.vex = vex
        self.info = info
    }
}

/// A scanner the backlog runs: one datasource, a complete scan of an artefact version in a registry.
public protocol ArtefactScanner: Sendable {
    var datasource: String { get }
    func scan(_ artefact: ArtefactID, at: Date) async throws -> ScannerResult
}

/// The built-in scanners, each the same function the CLI and the workflow actions call.
public enum ArtefactScanners {
    /// The scanners `names` names (`vuln`, `license`, `os-eol`, `malware`), over `registries`; `clamd` is clamd's
    /// address (the malware scanner's), `state` the state directory whose OSV database the vulnerability scanner reads.
    public static func standard(names: [String], registries: Registries, state: StateLayout, clamd: String?) throws -> [any ArtefactScanner] {
        try names.map { name -> any ArtefactScanner in
            switch name {
            case VulnerabilityFindings.datasource: return Vulnerabilities(registries: registries, state: state)
            case LicenseScanner.datasource: return Licenses(registries: registries)
            case OSEndOfLifeTable.datasource:
                // Without distro-info-data each scan fails and says so; the server still starts.
                return OSEndOfLife(registries: registries, table: Result { try OSEndOfLifeTable.load() }.mapError { ControlError(.invalid, "\($0)") })
            case MalwareScanner.datasource:
                guard let clamd else { throw ControlError(.invalid, "the malware scanner needs clamd's address") }
                return Malware(registries: registries, clamd: ClamdClient(address: try ClamdAddress(parsing: clamd)))
            default: throw ControlError(.invalid, "scanner \(name) is not one of vuln, license, os-eol, malware")
            }
        }
    }

    /// The image `artefact` names, in its registry.
    static func source(_ artefact: ArtefactID) throws -> InventoryJob.Source { try InventoryJob.Source(parsing: artefact.description) }

    /// Vulnerabilities: the state directory's OSV database matched against the image's inventory (`warden scan`'s
    /// job), VEX statements attached to the image not read.
    public struct Vulnerabilities: ArtefactScanner {
        public let registries: Registries
        public let state: StateLayout
        public var datasource: String { VulnerabilityFindings.datasource }
        public init(registries: Registries, state: StateLayout) {
            self.registries = registries
            self.state = state
        }
        public func scan(_ artefact: ArtefactID, at: Date) async throws -> ScannerResult {
            let store = try DatabaseJob.open(state: state)
            let outcome = try await ScanJob.run(
                ScanJob.Request(source: try ArtefactScanners.source(artefact), name: artefact.description, now: at), store: store,
                registries: registries)
            let (scan, vex) = VulnerabilityFindings.scan(outcome.report, artefact: artefact, at: at)
            return ScannerResult(
                scan: scan, vex: vex,
                info: outcome.report.distro.map { Value.object([("os", .string("\($0.id) \($0.versionID ?? "")"))]).jsonText(sortedKeys: true) })
        }
    }

    /// Licenses of the image's packages.
    public struct Licenses: ArtefactScanner {
        public let registries: Registries
        public var datasource: String { LicenseScanner.datasource }
        public init(registries: Registries) { self.registries = registries }
        public func scan(_ artefact: ArtefactID, at: Date) async throws -> ScannerResult {
            let inventory = try await InventoryJob.run(try ArtefactScanners.source(artefact), name: artefact.description, registries: registries)
            return ScannerResult(scan: LicenseScanner.scan(inventory.inventory, artefact: artefact, at: at))
        }
    }

    /// The image's operating system past its end of life.
    public struct OSEndOfLife: ArtefactScanner {
        public let registries: Registries
        /// The table, or why it could not be read.
        public let table: Result<OSEndOfLifeTable, ControlError>
        public var datasource: String { OSEndOfLifeTable.datasource }
        public init(registries: Registries, table: Result<OSEndOfLifeTable, ControlError>) {
            self.registries = registries
            self.table = table
        }
        public func scan(_ artefact: ArtefactID, at: Date) async throws -> ScannerResult {
            let table: OSEndOfLifeTable
            switch self.table {
            case .success(let t): table = t
            case .failure(let why):
                throw ControlError(.invalid, "the OS end-of-life tables are unavailable (install distro-info-data): \(why.reason)")
            }
            let inventory = try await InventoryJob.run(try ArtefactScanners.source(artefact), name: artefact.description, registries: registries)
            let (scan, status) = table.scan(inventory.inventory, artefact: artefact, at: at)
            return ScannerResult(scan: scan, info: Value.object([("status", .string(status.description))]).jsonText(sortedKeys: true))
        }
    }

    /// Every file of every layer through clamd.
    public struct Malware: ArtefactScanner {
        public let registries: Registries
        public let clamd: ClamdClient
        public var datasource: String { MalwareScanner.datasource }
        public init(registries: Registries, clamd: ClamdClient) {
            self.registries = registries
            self.clamd = clamd
        }
        public func scan(_ artefact: ArtefactID, at: Date) async throws -> ScannerResult {
            guard case .image(let location) = try ArtefactScanners.source(artefact) else {
                throw ControlError(.invalid, "\(artefact) is not an image reference")
            }
            let store = try registries.store(for: location, create: false)
            let subject = try await store.resolve(location.resolvedReference)
            let report = try await MalwareScanner.scan(image: subject, in: store, clamd: clamd)
            let info = Value.object([
                ("engine", .string(report.engine)), ("files", .int(Int64(report.filesScanned))), ("bytes", .int(Int64(report.bytesScanned))),
            ]).jsonText(sortedKeys: true)
            return ScannerResult(scan: report.scan(artefact: artefact, at: at), info: info)
        }
    }
}

extension CompliancePlane {
    /// Who the compliance engine's own changes are audited as.
    public static let system = ControlPlane.Caller(Principal(name: "system:compliance", method: "system"))

    // MARK: Tracking

    /// A tracked tag as the API and the CLI show it.
    public struct TrackedTagView: Sendable, Encodable, Equatable {
        public var reference: String
        public var component, componentVersion: String?
        public var addedAt: Date
        init(_ r: TrackedTagRecord) {
            reference = r.reference
            component = r.component
            componentVersion = r.componentVersion
            addedAt = r.addedAt
        }
    }

    /// Follows `registry/repository:tag` references (each new digest becomes a tracked version, of `component`
    /// when given).
    public func trackTags(_ references: [String], component: String?, componentVersion: String?, caller: ControlPlane.Caller) async throws
        -> [TrackedTagView]
    {
        guard !references.isEmpty, references.count <= 1000 else { throw ControlError(.invalid, "track 1 to 1000 tags at once") }
        for c in [component, componentVersion].compactMap({ $0 }) where c.isEmpty || c.utf8.count > 255 {
            throw ControlError(.invalid, "a component name or version is 1 to 255 bytes")
        }
        let now = control.now()
        let records = try references.map { text -> TrackedTagRecord in
            guard case .tag(let t)? = ComponentDocument.reference(text) else {
                throw ControlError(.invalid, "\(text.prefix(200)) is not registry/repository:tag")
            }
            return TrackedTagRecord(
                registry: t.registry, repository: t.repository, tag: t.tag, component: component, componentVersion: componentVersion, addedAt: now)
        }
        let events = records.map { r in
            let details: [(String, Value)] = r.component.map { [("component", .string($0))] } ?? []
            return control.event(caller, "tag.track", "tag/\(r.reference)", workspace: nil, details: details)
        }
        try await store.trackTags(records, audit: control.audit(caller) + events)
        caller.decision?.committed()
        return records.map(TrackedTagView.init)
    }

    public func untrackTag(_ reference: String, caller: ControlPlane.Caller) async throws {
        guard case .tag(let t)? = ComponentDocument.reference(reference) else {
            throw ControlError(.invalid, "\(reference.prefix(200)) is not registry/repository:tag")
        }
        let event = control.event(caller, "tag.untrack", "tag/\(reference)", workspace: nil)
        guard try await store.untrackTag(registry: t.registry, repository: t.repository, tag: t.tag, audit: control.audit(caller, event)) else {
            throw ControlError(.notFound, "\(reference) is not tracked")
        }
        caller.decision?.committed()
    }

    public func trackedTags() async throws -> [TrackedTagView] { try await store.trackedTags().map(TrackedTagView.init) }

    /// What declaring a component recorded.
    public struct DeclaredComponent: Sendable, Encodable {
        public var component: String
        public var version: String
        public var tags: [TrackedTagView]
        public var artefacts: [ArtefactView]
    }

    /// Declares a `kind: Component` document: its tags followed, its pinned versions tracked, all of the component.
    public func declare(component text: String, file: String, caller: ControlPlane.Caller) async throws -> DeclaredComponent {
        let doc: ComponentDocument
        do { doc = try ComponentDocument.parse(text, file: file) } catch let e as YAMLError { throw ControlError(.invalid, e.description) }
        let version = doc.version.isEmpty ? nil : doc.version
        let tags =
            doc.tags.isEmpty
            ? []
            : try await trackTags(
                doc.tags.map { "\($0.registry)/\($0.repository):\($0.tag)" }, component: doc.name, componentVersion: version, caller: caller)
        let artefacts =
            doc.artefacts.isEmpty
            ? []
            : try await track(
                doc.artefacts.map { ArtefactSighting(ref: Self.ref($0), component: doc.name, componentVersion: version ?? "") }, caller: caller)
        return DeclaredComponent(component: doc.name, version: doc.version, tags: tags, artefacts: artefacts)
    }

    // MARK: Tags seen by the triggers' receivers

    /// What following the registry pushes did.
    public struct PushFollowing: Sendable, Encodable, Equatable {
        /// Events read from the event log (newer than the last round's).
        public var read = 0
        /// Tags followed from now on: pushed, and not tracked before.
        public var followed: [String] = []
        /// Whether the position reached was kept (false: another server took the enumerator's lease meanwhile).
        public var kept = true
    }

    /// The poll cursor under which the position in the event log is kept (`:` keeps it apart from the pollers'
    /// `workspace/trigger` cursors).
    static let pushCursor = ":compliance/pushes"

    /// Whether a pushed tag names a version to scan: not cosign's `sha256-<hex>.sig|.att|.sbom` tags (signatures,
    /// attestations and SBOMs stored next to an image).
    static func followable(tag: String) -> Bool {
        guard tag.hasPrefix("sha256-") else { return true }
        return !(tag.hasSuffix(".sig") || tag.hasSuffix(".att") || tag.hasSuffix(".sbom"))
    }

    /// Reads the registry pushes the triggers' receivers recorded since the previous round (newest first, at most
    /// `limit`; all receivers, or those `receivers` names) and follows each pushed tag not tracked yet, as if
    /// tracked by hand (`tag.track`, by `system:compliance`): the enumerator resolves it from then on, so the pushed
    /// version and every later one are scanned, and the versions it leaves are untracked. A tag tracked already keeps
    /// its component. Pushes by digest alone (referrers: signatures, attestations, SBOMs), blob pushes and cosign's
    /// `sha256-….sig|.att|.sbom` tags are not followed. The position reached is kept with the poll cursors, fenced
    /// by lease `lease` of `holder` (epoch `epoch`): one server at a time moves it.
    public func followPushes(receivers: [String]?, lease: String, holder: String, epoch: Int64, limit: Int = 10_000) async throws
        -> PushFollowing
    {
        var outcome = PushFollowing()
        let cursor = try await store.pollCursor(trigger: Self.pushCursor)
        let mark: (Date, String)? = cursor["receivedAt"].flatMap(Double.init).map { (Date(timeIntervalSince1970: $0), cursor["id"] ?? "") }
        var newest: (Date, String)?
        var tags: [String: TrackedTagRecord] = [:]
        var before: (receivedAt: Date, id: String)?
        let decoder = JSONDecoder()
        reading: while outcome.read < limit {
            let page = try await store.events(receiver: nil, before: before, limit: min(500, limit - outcome.read))
            for record in page {
                if let mark, (record.receivedAt, record.id) <= mark { break reading }
                outcome.read += 1
                if newest == nil { newest = (record.receivedAt, record.id) }
                guard record.kind == TriggerEvent.Kind.registryPush.rawValue, receivers.map({ $0.contains(record.receiver) }) ?? true,
                    let event = try? decoder.decode(TriggerEvent.self, from: Data(record.event.utf8)), let tag = event.subject.tag,
                    Self.followable(tag: tag), !event.subject.registry.isEmpty, !event.subject.repository.isEmpty,
                    event.subject.mediaType.map(MediaType.isManifest) ?? true
                else { continue }
                let t = TrackedTagRecord(registry: event.subject.registry, repository: event.subject.repository, tag: tag, addedAt: control.now())
                tags[t.reference] = tags[t.reference] ?? t
            }
            guard page.count == 500, let last = page.last else { break }
            before = (last.receivedAt, last.id)
        }
        let tracked = Set(try await store.trackedTags().map(\.reference))
        let new = tags.values.filter { !tracked.contains($0.reference) }.sorted { $0.reference < $1.reference }
        if !new.isEmpty {
            let events = new.map {
                control.event(Self.system, "tag.track", "tag/\($0.reference)", workspace: nil, details: [("source", .string("push"))])
            }
            try await store.trackTags(new, audit: events)
            outcome.followed = new.map(\.reference)
        }
        if let newest {
            let moved: [String: String?] = ["receivedAt": String(newest.0.timeIntervalSince1970), "id": newest.1]
            outcome.kept =
                try await store.recordPoll(
                    trigger: Self.pushCursor, lease: lease, holder: holder, epoch: epoch, now: control.now(), events: [], cursor: moved, audit: [])
                != nil
        }
        return outcome
    }

    // MARK: The enumerator

    /// What one enumeration did.
    public struct EnumerationOutcome: Sendable, Encodable, Equatable {
        /// Artefact versions seen for the first time at a tracked tag.
        public var newVersions: [String] = []
        /// Versions a tracked tag no longer points at, no longer tracked.
        public var untracked: [String] = []
        /// Backlog items queued (or raised).
        public var queued = 0
        /// Inactive artefacts deleted after the grace period.
        public var deleted = 0
        /// Tags that could not be resolved, with why.
        public var errors: [String] = []
    }

    /// One round of the scanning loop's enumerator: every tracked tag resolved (new digests become tracked versions,
    /// of the tag's component; the versions it pointed at before stop being tracked), then a backlog item per
    /// scanner for every tracked version never scanned by it or last scanned longer than `interval` ago, its priority
    /// the worst open category of the version's findings (never scanned: HIGH); inactive versions are deleted after
    /// `grace`.
    public func enumerate(
        lookup: any TriggerLookup, scanners: [String], interval: TimeInterval = 86_400, grace: TimeInterval = 86_400
    ) async throws -> EnumerationOutcome {
        var outcome = EnumerationOutcome()
        let now = control.now()
        var sightings: [ArtefactSighting] = []
        var gone: [ArtefactRef] = []
        for tag in try await store.trackedTags() {
            let digest: String
            do { digest = try await lookup.resolve(registry: tag.registry, repository: tag.repository, tag: tag.tag).digest } catch {
                outcome.errors.append("\(tag.reference): \(error)")
                continue
            }
            let ref = ArtefactRef(registry: tag.registry, repository: tag.repository, digest: digest)
            if try await store.artefact(ref) == nil { outcome.newVersions.append(ref.description) }
            sightings.append(ArtefactSighting(ref: ref, component: tag.component, componentVersion: tag.componentVersion, tags: [tag.tag]))
            for old in try await store.artefacts(registry: tag.registry, repository: tag.repository, component: nil, trackedOnly: true)
            where old.ref != ref && old.tags.contains(tag.tag) && !sightings.contains(where: { $0.ref == old.ref }) {
                gone.append(old.ref)
            }
        }
        let events = outcome.newVersions.map { control.event(Self.system, "artefact.version", "artefact/\($0)", workspace: nil) }
        if !sightings.isEmpty { _ = try await store.recordArtefacts(sightings, at: now, audit: events) }
        // A version another tracked tag still names stays tracked.
        gone = gone.filter { g in !sightings.contains { $0.ref == g } }
        if !gone.isEmpty {
            outcome.untracked = Array(Set(gone.map(\.description))).sorted()
            try await store.markInactive(
                gone, at: now, audit: outcome.untracked.map { control.event(Self.system, "artefact.untrack", "artefact/\($0)", workspace: nil) })
        }
        var items: [BacklogRecord] = []
        for a in try await store.artefacts(registry: nil, repository: nil, component: nil, trackedOnly: true) {
            let scans = Dictionary(try await store.scans(of: a.ref).map { ($0.datasource, $0.scannedAt) }, uniquingKeysWith: max)
            let due = scanners.filter { s in scans[s].map { now.timeIntervalSince($0) >= interval } ?? true }
            guard !due.isEmpty else { continue }
            let priority = scans.isEmpty ? BacklogPriority.high : try await worstPriority(a.ref, now: now)
            items += due.map { BacklogRecord(scanner: $0, artefact: a.ref, priority: priority.rawValue, createdAt: now) }
        }
        if !items.isEmpty { try await store.enqueue(items, audit: []) }
        outcome.queued = items.count
        outcome.deleted = try await store.deleteInactive(
            before: now - grace, audit: [control.event(Self.system, "artefact.delete", "artefacts", workspace: nil)])
        return outcome
    }

    /// The backlog priority of the worst open category of an artefact version's findings.
    func worstPriority(_ ref: ArtefactRef, now: Date) async throws -> BacklogPriority {
        let records = try await store.findings(
            FindingQuery(registry: ref.registry, repository: ref.repository, digest: ref.digest, openOnly: true, limit: Int.max))
        let evaluator = try await evaluator(for: records)
        var components = ComponentCache(store: store)
        let component = try await components.component(of: ref)
        return records.map { BacklogPriority(evaluator.effective(Self.finding($0), component: component, now: now).category) }.max() ?? .none
    }

    // MARK: The backlog

    /// A backlog item as the API shows it.
    public struct BacklogView: Sendable, Encodable {
        public var scanner, artefact: String
        public var priority: Int
        public var createdAt: Date
        public var claimedBy: String?
        public var leaseUntil: Date?
        init(_ r: BacklogRecord) {
            scanner = r.scanner
            artefact = r.artefact.description
            priority = r.priority
            createdAt = r.createdAt
            claimedBy = r.claimedBy
            leaseUntil = r.leaseUntil
        }
    }

    public func backlog(limit: Int) async throws -> [BacklogView] {
        guard (1...1000).contains(limit) else { throw ControlError(.invalid, "limit must be 1 to 1000") }
        return try await store.backlog(limit: limit).map(BacklogView.init)
    }

    /// What a worker did with one backlog item.
    public struct WorkOutcome: Sendable {
        public var scanner: String
        public var artefact: String
        public var scan: ScanOutcome?
        public var error: String?
        /// Whether trying the failed scan again may succeed (the error table's retry class): false for content the
        /// scanner refuses (clamd's size limit, a malformed image).
        public var retryable: Bool?
    }

    /// Claims the next backlog item of one of `scanners` for `worker`, runs its scanner (renewing the claim while it
    /// runs), records the scan and its VEX rescorings, and completes the item. A failed scan completes the item too
    /// (the next enumeration queues the version again) and says why. nil: nothing to do.
    public func work(worker: String, scanners: [String: any ArtefactScanner], lease: TimeInterval = 1800) async throws -> WorkOutcome? {
        guard let item = try await store.claim(worker: worker, scanners: Array(scanners.keys).sorted(), now: control.now(), lease: lease) else {
            return nil
        }
        var outcome = WorkOutcome(scanner: item.scanner, artefact: item.artefact.description)
        let store = self.store
        let now = control.now
        let heartbeat = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(max(1, lease / 3)))
                _ = try await store.heartbeat(worker: worker, scanner: item.scanner, artefact: item.artefact, now: now(), lease: lease)
            }
        }
        defer { heartbeat.cancel() }
        do {
            let result = try await scanners[item.scanner]!.scan(Self.id(item.artefact), at: control.now())
            outcome.scan = try await recordScan(result.scan, info: result.info, caller: Self.system)
            for request in result.vex { _ = try await rescoreOnce(request, caller: Self.system) }
        } catch {
            let d = ErrorDisposition(error)
            outcome.error = d.reason
            outcome.retryable = d.retryable
        }
        _ = try await store.complete(worker: worker, scanner: item.scanner, artefact: item.artefact)
        return outcome
    }

    /// Rescores unless the same rescoring (scope, category, comment) is in force: nil then.
    public func rescoreOnce(_ request: RescoreRequest, caller: ControlPlane.Caller) async throws -> RescoringView? {
        let existing = try await store.rescorings(type: request.dataKey.type.rawValue, subject: request.dataKey.subject, dataID: request.dataKey.id)
        let now = control.now()
        let scope = Self.record(
            try Rescoring(
                id: "-", dataKey: request.dataKey, scope: request.scope, categoryID: request.category, comment: request.comment, user: "-",
                createdAt: now))
        let same = existing.contains {
            $0.scope == scope.scope && $0.scopeValue == scope.scopeValue && $0.category == request.category && $0.comment == request.comment
                && ($0.expiresAt.map { $0 > now } ?? true)
        }
        return same ? nil : try await rescore(request, caller: caller)
    }
}
