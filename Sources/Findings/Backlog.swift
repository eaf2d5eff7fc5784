import Foundation

/// A backlog item's priority: higher is claimed first. The default SLA categories' values are their priorities.
public struct BacklogPriority: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = max(0, rawValue) }

    public static let none = BacklogPriority(rawValue: 0)
    public static let low = BacklogPriority(rawValue: 1)
    public static let medium = BacklogPriority(rawValue: 2)
    public static let high = BacklogPriority(rawValue: 4)
    public static let critical = BacklogPriority(rawValue: 8)

    /// The priority of work for a finding in `category`: its value (uncategorised: ``medium``).
    public init(_ category: SLACategory) { self.init(rawValue: category.categorisation?.value ?? 2) }

    public var description: String { String(rawValue) }
    public static func < (a: BacklogPriority, b: BacklogPriority) -> Bool { a.rawValue < b.rawValue }
}

/// Queued scan work: one item per scanner and artefact version.
public struct BacklogItem: Hashable, Sendable {
    public struct Key: Hashable, Sendable {
        public var scanner: String
        public var artefact: ArtefactID
        public init(scanner: String, artefact: ArtefactID) {
            self.scanner = scanner
            self.artefact = artefact
        }
    }

    public var key: Key
    public var priority: BacklogPriority
    /// When the work was first queued: its place among items of the same priority.
    public var createdAt: Date

    public init(scanner: String, artefact: ArtefactID, priority: BacklogPriority, createdAt: Date) {
        key = Key(scanner: scanner, artefact: artefact)
        self.priority = priority
        self.createdAt = createdAt
    }

    /// The item after the same work is queued again (`other` has the same key): the priority is raised, never
    /// lowered, and the item keeps its earliest place.
    public func merged(with other: BacklogItem) -> BacklogItem {
        var m = self
        m.priority = max(priority, other.priority)
        m.createdAt = min(createdAt, other.createdAt)
        return m
    }

    /// The claim order: highest priority first, then oldest, then by scanner and artefact (a total order, so
    /// workers agree).
    public static func claimsBefore(_ a: BacklogItem, _ b: BacklogItem) -> Bool {
        if a.priority != b.priority { return a.priority > b.priority }
        if a.createdAt != b.createdAt { return a.createdAt < b.createdAt }
        return (a.key.scanner, a.key.artefact) < (b.key.scanner, b.key.artefact)
    }

    /// `items` with `new` queued: merged into the item of the same key, or added.
    public static func enqueue(_ new: BacklogItem, into items: inout [Key: BacklogItem]) {
        items[new.key] = items[new.key].map { $0.merged(with: new) } ?? new
    }

    /// The item a worker claims next.
    public static func next(in items: some Sequence<BacklogItem>) -> BacklogItem? { items.min(by: claimsBefore) }
}
