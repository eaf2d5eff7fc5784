import Documents
import Foundation

/// A person's decision about a finding: it belongs in another SLA category (NONE: it does not apply), with a reason,
/// for the artefacts of a scope, optionally with its own due date and an expiry.
public struct Rescoring: Hashable, Sendable, Identifiable {
    /// Which findings a rescoring covers, from the widest to the narrowest.
    public enum Scope: Hashable, Sendable, CustomStringConvertible {
        /// Every artefact.
        case global
        /// Every artefact of every version of the component with this name.
        case component(String)
        /// Every version of the artefact.
        case artefact(ArtefactName)
        /// One artefact version.
        case single(ArtefactID)

        /// Higher is narrower: of the rescorings that apply, the narrowest wins.
        public var specificity: Int {
            switch self {
            case .global: 0
            case .component: 1
            case .artefact: 2
            case .single: 3
            }
        }

        /// Whether the scope covers a finding of `artefact`, part of the component named `component`.
        public func covers(_ artefact: ArtefactID, component: String?) -> Bool {
            switch self {
            case .global: true
            case .component(let name): name == component
            case .artefact(let name): name == artefact.name
            case .single(let id): id == artefact
            }
        }

        public var description: String {
            switch self {
            case .global: "global"
            case .component(let name): "component \(name)"
            case .artefact(let name): "artefact \(name)"
            case .single(let id): "artefact \(id)"
            }
        }
    }

    /// Why a rescoring cannot be made.
    public struct Invalid: Error, Hashable, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    public let id: String
    /// The findings it is about (with ``scope``): this type and data key.
    public var dataKey: DataKey
    public var scope: Scope
    /// The category it assigns (an id of the policy's categories for the type).
    public var categoryID: String
    public var comment: String
    public var user: String
    public var createdAt: Date
    /// A due date of its own, instead of the category's processing time.
    public var dueDate: Date?
    /// A processing time of its own (from the finding's discovery), instead of the category's.
    public var processingTime: Duration?
    /// From then on it no longer applies: the finding is back in its own category.
    public var expiresAt: Date?
    /// With ``expiresAt``: the finding's SLA clock restarts at the expiry, as if discovered then.
    public var freshClock: Bool

    /// Throws ``Invalid`` for an empty comment, user or category, both a due date and a processing time, or an
    /// expiry not after the creation.
    public init(
        id: String, dataKey: DataKey, scope: Scope, categoryID: String, comment: String, user: String, createdAt: Date, dueDate: Date? = nil,
        processingTime: Duration? = nil, expiresAt: Date? = nil, freshClock: Bool = false
    ) throws {
        func check(_ ok: Bool, _ reason: String) throws { if !ok { throw Invalid(reason: "rescoring \(id): \(reason)") } }
        try check(!comment.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "a comment saying why is required")
        try check(!user.isEmpty, "the user is required")
        try check(!categoryID.isEmpty, "the category is required")
        try check(dueDate == nil || processingTime == nil, "give a due date or a processing time, not both")
        try check(processingTime.map { $0 >= .zero } ?? true, "the processing time is negative")
        try check(expiresAt.map { $0 > createdAt } ?? true, "it expires before it is created")
        try check(!freshClock || expiresAt != nil, "a fresh clock needs an expiry")
        self.id = id
        self.dataKey = dataKey
        self.scope = scope
        self.categoryID = categoryID
        self.comment = comment
        self.user = user
        self.createdAt = createdAt
        self.dueDate = dueDate
        self.processingTime = processingTime
        self.expiresAt = expiresAt
        self.freshClock = freshClock
    }

    /// Created by `time` and not expired at it.
    public func isInForce(at time: Date) -> Bool { createdAt <= time && (expiresAt.map { time < $0 } ?? true) }

    /// Whether it covers the finding `key` (of the component named `component`), whatever the time.
    public func applies(to key: FindingKey, component: String?) -> Bool {
        dataKey == key.dataKey && scope.covers(key.artefact, component: component)
    }

    /// Creation order (then id order): how histories and lists of rescorings are sorted.
    public static func chronological(_ a: Rescoring, _ b: Rescoring) -> Bool { (a.createdAt, a.id) < (b.createdAt, b.id) }

    /// Precedence among rescorings that apply: narrower scope, then newer, then the larger id.
    public static func precedes(_ a: Rescoring, _ b: Rescoring) -> Bool {
        (a.scope.specificity, a.createdAt, a.id) > (b.scope.specificity, b.createdAt, b.id)
    }
}

/// Every rescoring, indexed by data key and then by scope, so finding the one that applies to a finding costs a
/// few hash lookups whatever the number of rescorings. Built once, shared by any number of evaluations.
public struct RescoringIndex: Sendable {
    /// The rescorings of one data key, by scope, each list in precedence order (newest first).
    struct Bucket: Sendable {
        var single: [ArtefactID: [Rescoring]] = [:]
        var artefact: [ArtefactName: [Rescoring]] = [:]
        var component: [String: [Rescoring]] = [:]
        var global: [Rescoring] = []
        var freshClock = false

        /// The lists that can apply to a finding, narrowest first.
        func lists(for artefact: ArtefactID, component: String?) -> [[Rescoring]] {
            [single[artefact] ?? [], self.artefact[artefact.name] ?? [], component.flatMap { self.component[$0] } ?? [], global]
        }

        /// The first rescoring in precedence order that covers a finding and satisfies `p` (no allocation: the hot
        /// path of every evaluation).
        func first(for artefact: ArtefactID, component: String?, where p: (Rescoring) -> Bool) -> Rescoring? {
            if let list = single[artefact], let r = list.first(where: p) { return r }
            if let list = self.artefact[artefact.name], let r = list.first(where: p) { return r }
            if let component, let list = self.component[component], let r = list.first(where: p) { return r }
            return global.first(where: p)
        }
    }

    /// The rescoring that decides a finding at a time, and when the finding's SLA clock restarted.
    public struct Match: Hashable, Sendable {
        public var rescoring: Rescoring?
        /// The latest expiry, by then, of a fresh-clock rescoring that decided the finding until it expired.
        public var clockRestart: Date?
    }

    let buckets: [DataKey: Bucket]
    /// Every rescoring, oldest first.
    public let all: [Rescoring]

    public init(_ rescorings: [Rescoring]) {
        all = rescorings.sorted(by: Rescoring.chronological)
        var buckets: [DataKey: Bucket] = [:]
        for r in all.reversed() {
            switch r.scope {
            case .global: buckets[r.dataKey, default: Bucket()].global.append(r)
            case .component(let name): buckets[r.dataKey, default: Bucket()].component[name, default: []].append(r)
            case .artefact(let name): buckets[r.dataKey, default: Bucket()].artefact[name, default: []].append(r)
            case .single(let id): buckets[r.dataKey, default: Bucket()].single[id, default: []].append(r)
            }
            if r.freshClock { buckets[r.dataKey]!.freshClock = true }
        }
        self.buckets = buckets
    }

    /// The rescoring in force at `time` that decides the finding `key` (of the component named `component`): the
    /// narrowest scope, then the newest. Expired rescorings do not apply.
    public func match(_ key: FindingKey, component: String?, at time: Date) -> Match {
        guard let bucket = buckets[key.dataKey] else { return Match() }
        let winner = bucket.first(for: key.artefact, component: component) { $0.isInForce(at: time) }
        guard bucket.freshClock else { return Match(rescoring: winner) }
        var restart: Date?
        for list in bucket.lists(for: key.artefact, component: component) {
            for r in list where r.freshClock {
                guard let end = r.expiresAt, end <= time, restart.map({ end > $0 }) ?? true else { continue }
                // It restarts the clock only if it was what decided the finding just before it expired.
                let before = bucket.first(for: key.artefact, component: component) { $0.createdAt < end && ($0.expiresAt.map { $0 >= end } ?? true) }
                if before?.id == r.id { restart = end }
            }
        }
        return Match(rescoring: winner, clockRestart: restart)
    }

    /// Every rescoring that covers the finding, in force or not, oldest first: the finding's history.
    public func history(of key: FindingKey, component: String?) -> [Rescoring] {
        guard let bucket = buckets[key.dataKey] else { return [] }
        return bucket.lists(for: key.artefact, component: component).joined().sorted(by: Rescoring.chronological)
    }

    /// The rescorings in force at `time`, oldest first (what an SLA report for that time applies).
    public func inForce(at time: Date) -> [Rescoring] { all.filter { $0.isInForce(at: time) } }
}

/// A finding's SLA state at a time: its category after rescorings, its due date, whether it is overdue.
public struct Effective: Hashable, Sendable {
    public var category: SLACategory
    /// When the SLA clock started: the discovery, or a fresh-clock rescoring's expiry.
    public var clockStart: Date
    /// nil: never due.
    public var dueDate: Date?
    /// The rescoring that set the category, if any.
    public var rescoring: Rescoring?
    /// Open and past its due date at the evaluation's time.
    public var overdue: Bool

    /// Whether the due date has passed at `now` (a finding due on discovery is overdue right after it).
    public func isOverdue(now: Date) -> Bool { dueDate.map { now > $0 } ?? false }
}

/// The SLA policy and the rescorings together: what a finding's effective category and due date are.
public struct SLAEvaluator: Sendable {
    public var policy: SLAPolicy
    public var rescorings: RescoringIndex

    public init(policy: SLAPolicy = .default, rescorings: RescoringIndex = RescoringIndex([])) {
        self.policy = policy
        self.rescorings = rescorings
    }

    /// The finding's state at `now`, with the rescorings in force then. The due date is the rescoring's own, or
    /// the clock start plus the rescoring's processing time, or plus its category's allowed time.
    public func effective(_ finding: Finding, component: ComponentRef?, now: Date) -> Effective {
        let match = rescorings.match(finding.key, component: component?.name, at: now)
        let start = max(finding.discoveredAt, match.clockRestart ?? finding.discoveredAt)
        let category: SLACategory
        let due: Date?
        if let r = match.rescoring {
            category = policy.category(id: r.categoryID, type: finding.key.type)
            due = r.dueDate ?? (r.processingTime ?? category.categorisation?.allowedProcessingTime).map { start + $0 }
        } else {
            category = policy.category(of: finding)
            due = category.categorisation?.allowedProcessingTime.map { start + $0 }
        }
        var e = Effective(category: category, clockStart: start, dueDate: due, rescoring: match.rescoring, overdue: false)
        e.overdue = finding.isOpen(at: now) && e.isOverdue(now: now)
        return e
    }
}
