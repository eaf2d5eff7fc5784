import CEL
import Crypto
import Documents
import Findings
import Foundation
import Storage

/// The compliance engine's jobs (`warden serve`'s findings routes, `warden findings`, `warden rescore`, `warden
/// compliance`): complete scans folded into the findings of their artefact (discovery dates carried across versions,
/// absent findings closed), findings with their effective SLA category and due date, scoped rescorings with expiry,
/// compliance summaries, daily snapshots and SLA reports. The rules are the Findings module's; this adapts them to
/// the store and audits every change. Like the control plane's jobs, these do not authorise: the surfaces do (the
/// API by its route table: `findings.read`, `findings.write`, `findings.rescore`).
public struct CompliancePlane: Sendable {
    public let control: ControlPlane
    public let policy: SLAPolicy
    public let discovery: DiscoveryDates
    var store: any ControlStore { control.store }

    public init(control: ControlPlane, policy: SLAPolicy = .default, discovery: DiscoveryDates = DiscoveryDates()) {
        self.control = control
        self.policy = policy
        self.discovery = discovery
    }

    /// The plane with the state directory's SLA policy (`sla-policy.yaml`, `warden compliance policy set`), or the
    /// defaults when there is none: what every surface opens, so the server, the CLI and the workflow actions apply
    /// the same categories and discovery rule. A policy that does not read is an error naming its file and line.
    public static func open(control: ControlPlane, state: StateLayout) throws -> CompliancePlane {
        guard let data = FileManager.default.contents(atPath: state.slaPolicy) else { return CompliancePlane(control: control) }
        let (policy, discovery) = try readPolicy(String(decoding: data, as: UTF8.self), file: state.slaPolicy)
        return CompliancePlane(control: control, policy: policy, discovery: discovery)
    }

    /// Reads an SLA policy document; its mistakes as an invalid-input error with their `file:line:col`.
    public static func readPolicy(_ text: String, file: String) throws -> (SLAPolicy, DiscoveryDates) {
        do { return try SLAPolicy.parseDocument(text, file: file) } catch let e as YAMLError { throw ControlError(.invalid, e.description) }
    }

    /// Checks an SLA policy document and makes it the state directory's (written atomically, audited as
    /// `sla-policy.set`). A running server reads it when it starts.
    public static func setPolicy(_ text: String, file: String, state: StateLayout, control: ControlPlane, caller: ControlPlane.Caller) async throws
        -> SLAPolicy
    {
        let (policy, _) = try readPolicy(text, file: file)
        try PrivateFiles.writeAtomically(Data(text.utf8), to: state.slaPolicy, mode: 0o644)
        let digest = SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
        let event = control.event(caller, "sla-policy.set", "sla-policy", workspace: nil, details: [("sha256", .string(digest))])
        try await control.store.appendAudit(control.audit(caller, event))
        return policy
    }

    /// The policy as the CLI shows it.
    public struct PolicyView: Sendable, Codable {
        public struct Category: Sendable, Codable {
            public var id, displayName: String
            public var value: Int
            /// nil: never due.
            public var allowedProcessingDays: Double?
            public var cvss: [Double]?
            public var pattern: String?
        }
        /// The file it was read from, or `defaults`.
        public var source: String
        public var types: [String: [Category]]
        /// nil: discovery dates are reused without limit.
        public var maximumReuseDays: Double?
    }

    public func policyView(source: String) -> PolicyView {
        func days(_ d: Duration?) -> Double? { d.map { $0.seconds / 86_400 } }
        var types: [String: [PolicyView.Category]] = [:]
        for (type, list) in policy.categorisations {
            types[type.rawValue] = list.map { c in
                var cvss: [Double]?
                var pattern: String?
                switch c.selector {
                case .score(let r): cvss = [r.lowerBound, r.upperBound]
                case .pattern(let p): pattern = p.source
                case nil: break
                }
                return PolicyView.Category(
                    id: c.id, displayName: c.displayName, value: c.value, allowedProcessingDays: days(c.allowedProcessingTime), cvss: cvss,
                    pattern: pattern)
            }
        }
        return PolicyView(source: source, types: types, maximumReuseDays: days(discovery.maximumReuse))
    }

    // MARK: Scans

    /// What recording a scan did.
    public struct ScanOutcome: Sendable, Equatable, Encodable {
        public var artefact: String
        public var datasource: String
        /// Findings the scan reported (new or updated).
        public var reported: Int
        /// Findings it reported for the first time on this artefact version.
        public var new: Int
        /// Open findings it no longer reported, now resolved.
        public var closed: Int
        public init(artefact: String, datasource: String, reported: Int, new: Int, closed: Int) {
            self.artefact = artefact
            self.datasource = datasource
            self.reported = reported
            self.new = new
            self.closed = closed
        }
    }

    /// Records a complete scan of one artefact version by one datasource, with the sightings (tags, component) of
    /// the artefact, in one transaction with its audit entry.
    public func recordScan(_ scan: Scan, tags: [String] = [], info: String? = nil, caller: ControlPlane.Caller) async throws -> ScanOutcome {
        try Self.check(scan)
        for t in tags where t.isEmpty || t.utf8.count > 128 { throw ControlError(.invalid, "a tag is 1 to 128 bytes") }
        let merge = FindingsMerge(discovery: discovery)
        let counts = Counts()
        let event = control.event(
            caller, "findings.scan", "artefact/\(scan.artefact)", workspace: nil,
            details: [("datasource", .string(scan.datasource)), ("entries", .int(Int64(scan.entries.count)))])
        let written = try await store.recordScan(
            ScanRecord(
                artefact: Self.ref(scan.artefact), datasource: scan.datasource, scannedAt: scan.scannedAt, findings: scan.entries.count, info: info),
            audit: control.audit(caller, event)
        ) { existing in
            let known = Set(existing.filter { $0.artefact == Self.ref(scan.artefact) }.map(\.cursor.withoutArtefact))
            let result = merge.merge(existing: existing.map(Self.finding), scan: scan)
            counts.set(new: result.upserts.filter { !known.contains(Self.record($0).cursor.withoutArtefact) }.count, closed: result.closed.count)
            return (result.upserts + result.closed).map(Self.record)
        }
        caller.decision?.committed()
        if !tags.isEmpty {
            _ = try await store.recordArtefacts([ArtefactSighting(ref: Self.ref(scan.artefact), tags: tags)], at: scan.scannedAt, audit: [])
        }
        let (new, closed) = counts.value
        return ScanOutcome(
            artefact: scan.artefact.description, datasource: scan.datasource, reported: written.count - closed, new: new, closed: closed)
    }

    /// Records that artefacts exist (and which component they belong to): what the enumerator and `kind: Component`
    /// declarations do.
    public func track(_ sightings: [ArtefactSighting], caller: ControlPlane.Caller) async throws -> [ArtefactView] {
        guard sightings.count <= 1000 else { throw ControlError(.invalid, "at most 1000 artefacts at once, not \(sightings.count)") }
        for s in sightings {
            try Self.check(Self.id(s.ref))
            for t in s.tags where t.isEmpty || t.utf8.count > 128 { throw ControlError(.invalid, "a tag is 1 to 128 bytes") }
            for c in [s.component, s.componentVersion].compactMap({ $0 }) where c.isEmpty || c.utf8.count > 255 {
                throw ControlError(.invalid, "a component name or version is 1 to 255 bytes")
            }
        }
        let events = sightings.map { s in
            control.event(
                caller, "artefact.track", "artefact/\(s.ref)", workspace: nil,
                details: s.component.map { [("component", .string(ComponentRef(name: $0, version: s.componentVersion ?? "").description))] } ?? [])
        }
        let out = try await store.recordArtefacts(sightings, at: control.now(), audit: (caller.decision?.events ?? []) + events)
        caller.decision?.committed()
        return out.map(ArtefactView.init)
    }

    /// An artefact as the API and the CLI show it.
    public struct ArtefactView: Sendable, Encodable {
        public var artefact: String
        public var component, componentVersion: String?
        public var tags: [String]
        public var firstSeenAt: Date
        public var tracked: Bool
        public var inactiveSince: Date?
        init(_ r: ArtefactRecord) {
            artefact = r.ref.description
            component = r.component
            componentVersion = r.componentVersion
            tags = r.tags
            firstSeenAt = r.firstSeenAt
            tracked = r.inactiveSince == nil
            inactiveSince = r.inactiveSince
        }
    }

    /// Artefacts by reference (`registry`, `repository`) or component; `trackedOnly` leaves out inactive ones.
    public func artefacts(registry: String?, repository: String?, component: String?, trackedOnly: Bool) async throws -> [ArtefactView] {
        try await store.artefacts(registry: registry, repository: repository, component: component, trackedOnly: trackedOnly).map(ArtefactView.init)
    }

    // MARK: Findings

    /// A findings list's filters: the store's (in SQL) and the effective ones (category, overdue) applied to its pages.
    public struct FindingFilter: Sendable, Equatable {
        public var registry, repository, digest, component, componentVersion, type, datasource, package, id: String?
        public var openOnly: Bool
        /// Only findings whose effective category has this id (`uncategorised` for those in none).
        public var category: String?
        /// Only findings overdue now (true) or not (false).
        public var overdue: Bool?
        public var cursor: String?
        public var limit: Int
        public init(
            registry: String? = nil, repository: String? = nil, digest: String? = nil, component: String? = nil, componentVersion: String? = nil,
            type: String? = nil, datasource: String? = nil, package: String? = nil, id: String? = nil, openOnly: Bool = true,
            category: String? = nil, overdue: Bool? = nil, cursor: String? = nil, limit: Int = 100
        ) {
            self.registry = registry
            self.repository = repository
            self.digest = digest
            self.component = component
            self.componentVersion = componentVersion
            self.type = type
            self.datasource = datasource
            self.package = package
            self.id = id
            self.openOnly = openOnly
            self.category = category
            self.overdue = overdue
            self.cursor = cursor
            self.limit = limit
        }
    }

    /// A finding with its SLA state now.
    public struct FindingView: Sendable, Codable {
        public var key: String
        public var artefact: String
        public var component: String?
        public var datasource, type, subject, id: String
        public var score: Double?
        public var summary: String
        public var discoveredAt: Date
        public var lastSeenAt: Date
        public var resolvedAt: Date?
        public var category: String
        public var dueDate: Date?
        public var overdue: Bool
        /// The rescoring that decides the category, if any.
        public var rescoring: String?

        init(_ f: Finding, component: ComponentRef?, _ e: Effective) {
            key = f.key.stableString
            artefact = f.key.artefact.description
            self.component = component?.description
            datasource = f.key.datasource
            type = f.key.type.rawValue
            subject = f.key.dataKey.subject
            id = f.key.dataKey.id
            score = f.score
            summary = f.summary
            discoveredAt = f.discoveredAt
            lastSeenAt = f.lastSeenAt
            resolvedAt = f.resolvedAt
            category = e.category.description
            dueDate = e.dueDate
            overdue = e.overdue
            rescoring = e.rescoring?.id
        }
    }

    public struct FindingsPage: Sendable, Codable {
        public var items: [FindingView]
        /// The next page's cursor; nil on the last page.
        public var next: String?
    }

    /// How many stored findings one request reads at most while effective filters skip findings: past it, the page
    /// ends short with a cursor to go on.
    static let scanBudget = 20_000

    /// A page of findings in key order, each with its effective category and due date now.
    public func findings(_ filter: FindingFilter, caller: ControlPlane.Caller) async throws -> FindingsPage {
        guard (1...1000).contains(filter.limit) else { throw ControlError(.invalid, "limit must be 1 to 1000, not \(filter.limit)") }
        let now = control.now()
        var q = FindingQuery(
            registry: filter.registry, repository: filter.repository, digest: filter.digest, component: filter.component,
            componentVersion: filter.componentVersion, type: filter.type, datasource: filter.datasource, subject: filter.package, dataID: filter.id,
            openOnly: filter.openOnly, after: try filter.cursor.map(FindingPageCursor.decode), limit: filter.limit + 1)
        let effectiveFilters = filter.category != nil || filter.overdue != nil
        if effectiveFilters { q.limit = max(200, filter.limit + 1) }
        var items: [FindingView] = []
        var cursors: [FindingCursor] = []
        var read = 0
        var components = ComponentCache(store: store)
        while true {
            let batch = try await store.findings(q)
            read += batch.count
            let evaluator = try await evaluator(for: batch)
            for r in batch {
                let f = Self.finding(r)
                let component = try await components.component(of: r.artefact)
                let e = evaluator.effective(f, component: component, now: now)
                if let c = filter.category, c != e.category.description { continue }
                if let o = filter.overdue, o != e.overdue { continue }
                items.append(FindingView(f, component: component, e))
                cursors.append(r.cursor)
                if items.count > filter.limit { break }
            }
            if items.count > filter.limit {
                items.removeLast()
                cursors.removeLast()
                return FindingsPage(items: items, next: cursors.last.map(FindingPageCursor.encode))
            }
            guard batch.count == q.limit, let last = batch.last else { return FindingsPage(items: items, next: nil) }
            q.after = last.cursor
            if read >= Self.scanBudget { return FindingsPage(items: items, next: FindingPageCursor.encode(last.cursor)) }
        }
    }

    /// One finding with its SLA state now and the history of the rescorings that cover it.
    public struct FindingDetail: Sendable, Codable {
        public var finding: FindingView
        public var rescorings: [RescoringView]
    }

    public func finding(key text: String, caller: ControlPlane.Caller) async throws -> FindingDetail {
        guard let key = FindingKey(stableString: text) else {
            throw ControlError(.invalid, "finding key \"\(text.prefix(120))\" is not registry|repository|digest|datasource|type|subject|id")
        }
        let q = FindingQuery(
            registry: key.artefact.registry, repository: key.artefact.repository, digest: key.artefact.digest, type: key.type.rawValue,
            datasource: key.datasource, subject: key.dataKey.subject, dataID: key.dataKey.id, limit: 1)
        guard let r = try await store.findings(q).first else { throw ControlError(.notFound, "no finding \(text)") }
        let f = Self.finding(r)
        let evaluator = try await evaluator(for: [r])
        var components = ComponentCache(store: store)
        let component = try await components.component(of: r.artefact)
        let e = evaluator.effective(f, component: component, now: control.now())
        return FindingDetail(
            finding: FindingView(f, component: component, e),
            rescorings: evaluator.rescorings.history(of: f.key, component: component?.name).map(RescoringView.init))
    }

    /// The evaluator for findings: the policy and the rescorings of their data keys.
    func evaluator(for records: [FindingRecord]) async throws -> SLAEvaluator {
        let ids = Set(records.map(\.dataID))
        guard !ids.isEmpty else { return SLAEvaluator(policy: policy) }
        let rescorings = try await store.rescorings(dataIDs: ids).compactMap { try? Self.rescoring($0) }
        return SLAEvaluator(policy: policy, rescorings: RescoringIndex(rescorings))
    }

    // MARK: Rescorings

    /// A rescoring as the API and the CLI show it.
    public struct RescoringView: Sendable, Codable, Equatable {
        public var id, type, subject, findingID, scope, category, comment, user: String
        public var scopeValue: String?
        public var createdAt: Date
        public var dueDate: Date?
        public var processingDays: Double?
        public var expiresAt: Date?
        public var freshClock: Bool
        init(_ r: Rescoring) {
            let rec = CompliancePlane.record(r)
            id = r.id
            type = r.dataKey.type.rawValue
            subject = r.dataKey.subject
            findingID = r.dataKey.id
            scope = rec.scope
            scopeValue = rec.scopeValue.isEmpty ? nil : rec.scopeValue
            category = r.categoryID
            comment = r.comment
            user = r.user
            createdAt = r.createdAt
            dueDate = r.dueDate
            processingDays = r.processingTime.map { $0.seconds / 86_400 }
            expiresAt = r.expiresAt
            freshClock = r.freshClock
        }
    }

    /// What a person asks for: findings of `dataKey` in `scope` belong in category `category`.
    public struct RescoreRequest: Sendable {
        public var dataKey: DataKey
        public var scope: Rescoring.Scope
        public var category: String
        public var comment: String
        public var dueDate: Date?
        public var processingTime: Duration?
        public var expiresAt: Date?
        public var freshClock: Bool
        public init(
            dataKey: DataKey, scope: Rescoring.Scope, category: String, comment: String, dueDate: Date? = nil, processingTime: Duration? = nil,
            expiresAt: Date? = nil, freshClock: Bool = false
        ) {
            self.dataKey = dataKey
            self.scope = scope
            self.category = category
            self.comment = comment
            self.dueDate = dueDate
            self.processingTime = processingTime
            self.expiresAt = expiresAt
            self.freshClock = freshClock
        }
    }

    /// Records a rescoring by the caller, now; the category must be one of the policy's for the finding type.
    public func rescore(_ request: RescoreRequest, caller: ControlPlane.Caller) async throws -> RescoringView {
        let known = policy.categorisations[request.dataKey.type]?.map(\.id) ?? []
        guard known.contains(request.category) else {
            throw ControlError(
                .invalid,
                "category \(request.category) is not one of the SLA policy's for \(request.dataKey.type) findings (\(known.isEmpty ? "it has none" : known.joined(separator: ", ")))"
            )
        }
        let now = control.now()
        let r: Rescoring
        do {
            r = try Rescoring(
                id: "rsc-" + Self.randomID(), dataKey: request.dataKey, scope: request.scope, categoryID: request.category, comment: request.comment,
                user: caller.principal.name, createdAt: now, dueDate: request.dueDate, processingTime: request.processingTime,
                expiresAt: request.expiresAt, freshClock: request.freshClock)
        } catch let e as Rescoring.Invalid { throw ControlError(.invalid, e.reason) }
        let event = control.event(
            caller, "rescoring.create", "rescoring/\(r.id)", workspace: nil,
            details: [
                ("finding", .string(r.dataKey.description)), ("scope", .string(r.scope.description)), ("category", .string(r.categoryID)),
                ("comment", .string(r.comment)), ("expiresAt", r.expiresAt.map { .string(RFC3339.string($0)) } ?? .null),
            ])
        _ = try await store.addRescoring(Self.record(r), audit: control.audit(caller, event))
        caller.decision?.committed()
        return RescoringView(r)
    }

    /// Ends a rescoring now (it stays in the findings' history).
    public func revoke(_ id: String, caller: ControlPlane.Caller) async throws -> RescoringView {
        guard let old = try await store.rescoring(id: id) else { throw ControlError(.notFound, "no rescoring \(id)") }
        let event = control.event(caller, "rescoring.revoke", "rescoring/\(id)", workspace: nil)
        // It ends after it began, even when revoked at the instant it was made.
        let at = max(control.now(), old.createdAt.addingTimeInterval(0.001))
        guard let r = try await store.revokeRescoring(id: id, at: at, audit: control.audit(caller, event)) else {
            throw ControlError(.notFound, "no rescoring \(id)")
        }
        caller.decision?.committed()
        return RescoringView(try Self.rescoring(r))
    }

    /// Rescorings, oldest first; with a data key, those about it.
    public func rescorings(of dataKey: DataKey?, caller: ControlPlane.Caller) async throws -> [RescoringView] {
        return try await store.rescorings(type: dataKey?.type.rawValue, subject: dataKey?.subject, dataID: dataKey?.id).map {
            RescoringView(try Self.rescoring($0))
        }
    }

    /// Audits every rescoring that expired since the last call (`rescoring.expire`, by the system): the expired ones.
    @discardableResult
    public func auditExpiries() async throws -> [String] {
        var done: [String] = []
        for r in try await store.unauditedExpiries(now: control.now()) {
            let e = AuditEvent(
                at: control.now(), actor: "system:compliance", action: "rescoring.expire", subject: "rescoring/\(r.id)",
                details: Value.object([
                    ("finding", .string("\(r.type) \(r.subject) \(r.dataID)")), ("expiredAt", .string(RFC3339.string(r.expiresAt ?? control.now()))),
                    ("freshClock", .bool(r.freshClock)),
                ]).jsonText(sortedKeys: true))
            if try await store.recordExpiry(id: r.id, audit: [e]) { done.append(r.id) }
        }
        return done
    }

    // MARK: Compliance

    /// What a summary, a snapshot or a report is about.
    public enum Subject: Sendable, Equatable, CustomStringConvertible {
        case artefact(ArtefactID)
        case component(String)

        public var kind: String {
            switch self {
            case .artefact: "artefact"
            case .component: "component"
            }
        }
        public var name: String {
            switch self {
            case .artefact(let a): a.description
            case .component(let c): c
            }
        }
        public var description: String { "\(kind) \(name)" }

        /// `registry/repository@sha256:…` names an artefact, anything else a component.
        public init(parsing text: String) throws {
            if let at = text.range(of: "@sha256:") {
                let head = text[..<at.lowerBound]
                guard let slash = head.firstIndex(of: "/") else {
                    throw ControlError(.invalid, "artefact \(text.prefix(200)) must be registry/repository@sha256:<hex>")
                }
                let id = ArtefactID(
                    registry: String(head[..<slash]), repository: String(head[head.index(after: slash)...]),
                    digest: String(text[text.index(after: at.lowerBound)...]))
                try CompliancePlane.check(id)
                self = .artefact(id)
            } else {
                guard !text.isEmpty, text.utf8.count <= 255 else { throw ControlError(.invalid, "a component name is 1 to 255 bytes") }
                self = .component(text)
            }
        }
    }

    /// A compliance snapshot as the API, the CLI and the history show it.
    public struct SnapshotView: Sendable, Codable, Equatable {
        public var subject: String
        public var kind: String
        public var summary: String
        public var at: Date
        public var from: Date
        public var open: Int
        public var openByCategory: [String: Int]
        public var uncategorised: Int
        public var overdue: Int
        public var dueWithin7Days: Int
        public var dueWithin30Days: Int
        public var resolved: Int

        init(_ subject: Subject, _ s: ComplianceSnapshot, scanned: Bool) {
            self.subject = subject.name
            kind = subject.kind
            summary = s.summary(scanned: scanned).description
            at = s.at
            from = s.from
            open = s.open
            openByCategory = s.openByCategory
            uncategorised = s.uncategorised
            overdue = s.overdue
            dueWithin7Days = s.dueWithin7Days
            dueWithin30Days = s.dueWithin30Days
            resolved = s.resolved
        }
    }

    func query(_ subject: Subject) -> FindingQuery {
        switch subject {
        case .artefact(let a): FindingQuery(registry: a.registry, repository: a.repository, digest: a.digest, limit: Int.max)
        case .component(let c): FindingQuery(component: c, limit: Int.max)
        }
    }

    /// The subject's compliance now (resolved: in the last 24 hours): CLEAN, the worst open category or UNKNOWN.
    public func summary(_ subject: Subject, caller: ControlPlane.Caller) async throws -> SnapshotView {
        let now = control.now()
        return try await snapshot(subject, from: now - 86_400, at: now)
    }

    func snapshot(_ subject: Subject, from: Date, at: Date) async throws -> SnapshotView {
        let records = try await store.findings(query(subject))
        let evaluator = try await evaluator(for: records)
        let component: ComponentRef?
        let scanned: Bool
        switch subject {
        case .artefact(let a):
            let rec = try await store.artefact(Self.ref(a))
            component = rec?.component.map { ComponentRef(name: $0, version: rec?.componentVersion ?? "") }
            scanned = !(try await store.scans(of: Self.ref(a)).isEmpty)
        case .component(let name):
            component = ComponentRef(name: name, version: "")
            var any = false
            for a in try await store.artefacts(registry: nil, repository: nil, component: name, trackedOnly: false) {
                if !(try await store.scans(of: a.ref).isEmpty) {
                    any = true
                    break
                }
            }
            scanned = any
        }
        let s = ComplianceSnapshot(findings: records.map(Self.finding), evaluator: evaluator, component: component, from: from, at: at)
        return SnapshotView(subject, s, scanned: scanned)
    }

    /// Takes today's snapshot of every tracked artefact and every component (replacing today's if taken already):
    /// the daily job, also run on demand. How many snapshots were saved.
    @discardableResult
    public func takeSnapshots() async throws -> Int {
        try await auditExpiries()
        let now = control.now()
        let day = Self.day(now)
        let artefacts = try await store.artefacts(registry: nil, repository: nil, component: nil, trackedOnly: true)
        var subjects = artefacts.map { Subject.artefact(Self.id($0.ref)) }
        subjects += Set(artefacts.compactMap(\.component)).sorted().map(Subject.component)
        var out: [SnapshotRecord] = []
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        for s in subjects {
            let view = try await snapshot(s, from: now - 86_400, at: now)
            out.append(
                SnapshotRecord(kind: s.kind, subject: s.name, day: day, at: now, data: String(decoding: try encoder.encode(view), as: UTF8.self)))
        }
        try await store.saveSnapshots(out)
        return out.count
    }

    /// The subject's daily snapshots, oldest first, between two days (`yyyy-mm-dd`, inclusive) when given.
    public func history(_ subject: Subject, from: String?, to: String?, caller: ControlPlane.Caller) async throws -> [SnapshotView] {
        for d in [from, to].compactMap({ $0 }) where Self.parseDay(d) == nil {
            throw ControlError(.invalid, "day \(d.prefix(40)) is not yyyy-mm-dd")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try await store.snapshots(kind: subject.kind, subject: subject.name, from: from, to: to).map {
            try decoder.decode(SnapshotView.self, from: Data($0.data.utf8))
        }
    }

    /// Rescorings as the API lists them.
    public struct RescoringList: Sendable, Codable {
        public var rescorings: [RescoringView]
        public init(rescorings: [RescoringView]) { self.rescorings = rescorings }
    }

    /// Snapshots as the API lists them.
    public struct SnapshotList: Sendable, Codable {
        public var snapshots: [SnapshotView]
        public init(snapshots: [SnapshotView]) { self.snapshots = snapshots }
    }

    /// How many snapshots were taken.
    public struct SnapshotCount: Sendable, Codable {
        public var snapshots: Int
        public init(snapshots: Int) { self.snapshots = snapshots }
    }

    /// An SLA report as the API and the CLI show it.
    public struct SLAReportView: Sendable, Codable {
        public var subject: String
        public var releaseDate: Date
        public var overdue: [FindingView]
        public var rescoringsApplied: [RescoringView]
    }

    /// Which of the subject's findings were overdue at `releaseDate`, with the rescorings in force then.
    public func slaReport(_ subject: Subject, releaseDate: Date, caller: ControlPlane.Caller) async throws -> SLAReportView {
        let records = try await store.findings(query(subject))
        let evaluator = try await evaluator(for: records)
        var components = ComponentCache(store: store)
        var byArtefact: [ArtefactRef: [Finding]] = [:]
        for r in records { byArtefact[r.artefact, default: []].append(Self.finding(r)) }
        var overdue: [FindingView] = []
        var applied: [String: Rescoring] = [:]
        for (ref, findings) in byArtefact.sorted(by: { $0.key < $1.key }) {
            let component = try await components.component(of: ref)
            let report = SLAReport(findings: findings, evaluator: evaluator, component: component, releaseDate: releaseDate)
            overdue += report.overdue.map { FindingView($0.finding, component: component, $0.effective) }
            for r in report.rescoringsApplied { applied[r.id] = r }
        }
        overdue.sort { ($0.dueDate ?? .distantPast, $0.key) < ($1.dueDate ?? .distantPast, $1.key) }
        return SLAReportView(
            subject: subject.name, releaseDate: releaseDate, overdue: overdue,
            rescoringsApplied: applied.values.sorted(by: Rescoring.chronological).map(RescoringView.init))
    }

    // MARK: Mapping between the domain and the store

    static func ref(_ a: ArtefactID) -> ArtefactRef { ArtefactRef(registry: a.registry, repository: a.repository, digest: a.digest) }
    static func id(_ r: ArtefactRef) -> ArtefactID { ArtefactID(registry: r.registry, repository: r.repository, digest: r.digest) }

    /// A stored finding in the domain's terms.
    public static func finding(_ r: FindingRecord) -> Finding {
        Finding(
            key: FindingKey(
                artefact: id(r.artefact), datasource: r.datasource, dataKey: DataKey(type: FindingType(r.type), subject: r.subject, id: r.dataID)),
            score: r.score, summary: r.summary, discoveredAt: r.discoveredAt, lastSeenAt: r.lastSeenAt, resolvedAt: r.resolvedAt)
    }

    static func record(_ f: Finding) -> FindingRecord {
        FindingRecord(
            artefact: ref(f.key.artefact), datasource: f.key.datasource, type: f.key.type.rawValue, subject: f.key.dataKey.subject,
            dataID: f.key.dataKey.id, score: f.score, summary: f.summary, discoveredAt: f.discoveredAt, lastSeenAt: f.lastSeenAt,
            resolvedAt: f.resolvedAt)
    }

    /// The scope a kind and a value name: `global`, `component` NAME, `artefact` REGISTRY/REPOSITORY, `single`
    /// REGISTRY/REPOSITORY@sha256:….
    public static func scope(kind: String, value: String?) throws -> Rescoring.Scope {
        let value = value ?? ""
        switch kind {
        case "global": return .global
        case "component":
            guard !value.isEmpty, value.utf8.count <= 255 else {
                throw ControlError(.invalid, "a component scope names the component (1 to 255 bytes)")
            }
            return .component(value)
        case "artefact":
            guard let slash = value.firstIndex(of: "/"), slash != value.startIndex, value.index(after: slash) != value.endIndex, !value.contains("@")
            else { throw ControlError(.invalid, "an artefact scope is registry/repository, not \(value.prefix(200))") }
            return .artefact(ArtefactName(registry: String(value[..<slash]), repository: String(value[value.index(after: slash)...])))
        case "single":
            guard case .artefact(let a) = try Subject(parsing: value) else {
                throw ControlError(.invalid, "a single scope is registry/repository@sha256:…, not \(value.prefix(200))")
            }
            return .single(a)
        default: throw ControlError(.invalid, "scope \(kind.prefix(40)) is not global, component, artefact or single")
        }
    }

    /// A stored rescoring in the domain's terms (its scope and fields checked again).
    public static func rescoring(_ r: RescoringRecord) throws -> Rescoring {
        let scope = try scope(kind: r.scope, value: r.scopeValue)
        return try Rescoring(
            id: r.id, dataKey: DataKey(type: FindingType(r.type), subject: r.subject, id: r.dataID), scope: scope, categoryID: r.category,
            comment: r.comment, user: r.user, createdAt: r.createdAt, dueDate: r.dueDate, processingTime: r.processingSeconds.map { .seconds($0) },
            expiresAt: r.expiresAt, freshClock: r.freshClock)
    }

    static func record(_ r: Rescoring) -> RescoringRecord {
        let (scope, value): (String, String) =
            switch r.scope {
            case .global: ("global", "")
            case .component(let c): ("component", c)
            case .artefact(let a): ("artefact", a.description)
            case .single(let a): ("single", a.description)
            }
        return RescoringRecord(
            id: r.id, type: r.dataKey.type.rawValue, subject: r.dataKey.subject, dataID: r.dataKey.id, scope: scope, scopeValue: value,
            category: r.categoryID, comment: r.comment, user: r.user, createdAt: r.createdAt, dueDate: r.dueDate,
            processingSeconds: r.processingTime?.seconds, expiresAt: r.expiresAt, freshClock: r.freshClock)
    }

    /// An artefact identity the tables accept: a registry, a repository and a `sha256:` digest of 64 hex digits.
    static func check(_ a: ArtefactID) throws {
        guard !a.registry.isEmpty, !a.repository.isEmpty, a.registry.utf8.count + a.repository.utf8.count <= 512 else {
            throw ControlError(.invalid, "artefact \(a.description.prefix(200)): registry and repository are required (at most 512 bytes)")
        }
        let hex = a.digest.dropFirst("sha256:".count)
        guard a.digest.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw ControlError(.invalid, "artefact \(a.description.prefix(200)): the digest must be sha256: and 64 lower-case hex digits")
        }
    }

    /// A scan the tables accept: a valid artefact, a datasource and finding type of `[a-z0-9._-]` (1 to 64), data
    /// keys of 1 to 1024 bytes, summaries of at most 4096, scores from 0 to 10, at most 100,000 entries.
    static func check(_ scan: Scan) throws {
        try check(scan.artefact)
        func name(_ s: String, _ what: String) throws {
            guard (1...64).contains(s.utf8.count),
                s.utf8.allSatisfy({ (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d })
            else { throw ControlError(.invalid, "\(what) \"\(s.prefix(80))\" must be 1 to 64 of a-z, 0-9, '.', '_', '-'") }
        }
        try name(scan.datasource, "datasource")
        guard scan.entries.count <= 100_000 else { throw ControlError(.invalid, "a scan has at most 100000 entries, not \(scan.entries.count)") }
        for (i, e) in scan.entries.enumerated() {
            try name(e.dataKey.type.rawValue, "entries[\(i)].type")
            guard (1...1024).contains(e.dataKey.subject.utf8.count), (1...1024).contains(e.dataKey.id.utf8.count) else {
                throw ControlError(.invalid, "entries[\(i)]: subject and id are 1 to 1024 bytes")
            }
            guard e.summary.utf8.count <= 4096 else { throw ControlError(.invalid, "entries[\(i)].summary is longer than 4096 bytes") }
            if let s = e.score, !(s.isFinite && (0...10).contains(s)) { throw ControlError(.invalid, "entries[\(i)].score must be 0 to 10") }
        }
    }

    static func randomID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    static let dayFormat: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f
    }()
    static func day(_ d: Date) -> String { dayFormat.string(from: d) }
    static func parseDay(_ s: String) -> Date? { s.utf8.count == 10 ? dayFormat.date(from: s) : nil }
}

/// Counts a merge closure hands out of the store's transaction.
final class Counts: @unchecked Sendable {
    private let lock = NSLock()
    private var new = 0
    private var closed = 0
    func set(new: Int, closed: Int) { lock.withLock { (self.new, self.closed) = (new, closed) } }
    var value: (Int, Int) { lock.withLock { (new, closed) } }
}

/// The components of artefacts, each read once per request.
struct ComponentCache {
    let store: any ControlStore
    var known: [ArtefactRef: ComponentRef?] = [:]
    init(store: any ControlStore) { self.store = store }
    mutating func component(of ref: ArtefactRef) async throws -> ComponentRef? {
        if let c = known[ref] { return c }
        let a = try await store.artefact(ref)
        let c = a?.component.map { ComponentRef(name: $0, version: a?.componentVersion ?? "") }
        known[ref] = c
        return c
    }
}

/// The opaque cursor of a findings page: the last position read, base64url of its JSON.
enum FindingPageCursor {
    static func encode(_ cursor: FindingCursor) -> String { RunCursor.base64url((try? JSONEncoder().encode(cursor)) ?? Data()) }

    static func decode(_ text: String) throws -> FindingCursor {
        guard let data = RunCursor.bytes(text, limit: 4096), let c = try? JSONDecoder().decode(FindingCursor.self, from: data) else {
            throw ControlError(.invalid, "cursor \"\(text.prefix(80))\" is not one this server gave; start again without it")
        }
        return c
    }
}

extension FindingCursor {
    /// The position without the artefact: the finding's key within its artefact.
    var withoutArtefact: [String] { [datasource, type, subject, dataID] }
}
