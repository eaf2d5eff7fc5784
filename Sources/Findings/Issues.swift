import Documents
import Foundation

/// An issue for people to work on: the open findings of one group (a component, or an artefact outside one) and
/// type that fall due in one window. The same group and window always have the same id, so an exporter updates
/// the issue it created before instead of opening another.
public struct IssueDocument: Hashable, Sendable, Identifiable {
    /// Whose findings an issue holds.
    public enum Subject: Hashable, Sendable, CustomStringConvertible {
        /// Every artefact of the component with this name.
        case component(String)
        /// Every version of an artefact that is part of no component.
        case artefact(ArtefactName)

        public var description: String {
            switch self {
            case .component(let name): "component \(name)"
            case .artefact(let name): "artefact \(name)"
            }
        }
    }

    /// When an issue's findings fall due.
    public enum Window: Hashable, Sendable {
        /// Due at or after `start` and before `end`.
        case due(start: Date, end: Date)
        /// Uncategorised findings: they have no due date.
        case undated
    }

    public enum CloseReason: String, Hashable, Sendable {
        /// The subject is no longer tracked.
        case notTracked = "not-tracked"
        /// None of its findings is open any more.
        case noOpenFindings = "no-open-findings"
    }

    public enum State: Hashable, Sendable {
        case open
        case closed(CloseReason)
    }

    public struct Entry: Hashable, Sendable {
        public var finding: Finding
        public var effective: Effective
    }

    /// The label of an issue with an overdue finding.
    public static let overdueLabel = "overdue"
    /// The label of an issue with an artefact waiting to be scanned (its findings may be out of date).
    public static let scanPendingLabel = "scan-pending"

    public let id: String
    public var subject: Subject
    public var type: FindingType
    public var window: Window
    /// Earliest due first.
    public var entries: [Entry]
    /// Sorted.
    public var labels: [String]
    public var state: State

    public init(subject: Subject, type: FindingType, window: Window, entries: [Entry], labels: [String], state: State = .open) {
        id = Self.id(subject: subject, type: type, window: window)
        self.subject = subject
        self.type = type
        self.window = window
        self.entries = entries
        self.labels = labels
        self.state = state
    }

    /// The SHA-256 (hex) of the group and the window.
    public static func id(subject: Subject, type: FindingType, window: Window) -> String {
        let group =
            switch subject {
            case .component(let name): ["component", name]
            case .artefact(let name): ["artefact", name.registry, name.repository]
            }
        let when =
            switch window {
            case .due(let start, let end): [RFC3339.string(start), RFC3339.string(end)]
            case .undated: ["undated"]
            }
        return StableHash.hex(StableHash.sha256(group + [type.rawValue] + when))
    }

    public var title: String {
        let when =
            switch window {
            case .due(let start, let end): "due \(Self.day(start)) to \(Self.day(end.addingTimeInterval(-1)))"
            case .undated: "uncategorised"
            }
        return "\(type.displayName) in \(subject), \(when)"
    }

    static func day(_ date: Date) -> String { String(RFC3339.string(date).prefix(10)) }

    /// The issue as Markdown: title, labels, state and a table of its findings.
    public func markdown() -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        let names = type.dataKeyLabels
        var out = "# \(cell(title))\n\n"
        if !labels.isEmpty { out += "Labels: \(labels.joined(separator: ", "))\n\n" }
        switch state {
        case .open: break
        case .closed(.notTracked): out += "Closed: the \(subject) is no longer tracked.\n\n"
        case .closed(.noOpenFindings): out += "Closed: no open findings remain.\n\n"
        }
        out += "| Artefact | \(names.subject) | \(names.id) | Category | Score | Discovered | Due | Rescoring |\n"
        out += "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for e in entries {
            let k = e.finding.key
            let due = e.effective.dueDate.map { Self.day($0) + (e.effective.overdue ? " (overdue)" : "") } ?? "–"
            let rescoring = e.effective.rescoring.map { "\($0.categoryID) by \($0.user): \($0.comment)" } ?? ""
            let row = [
                k.artefact.description, k.dataKey.subject, k.dataKey.id, e.effective.category.description, e.finding.score.map { String($0) } ?? "–",
                Self.day(e.finding.discoveredAt), due, rescoring,
            ]
            out += "| " + row.map(cell).joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// The issue as JSON (keys sorted, RFC 3339 dates).
    public func json() -> Data {
        struct Window: Encodable { var start: Date, end: Date }
        struct Rescored: Encodable { var id, category, user, comment: String }
        struct Item: Encodable {
            var key, artefact, datasource, subject, id, category: String
            var score: Double?
            var discoveredAt: Date
            var dueDate: Date?
            var overdue: Bool
            var rescoring: Rescored?
        }
        struct View: Encodable {
            var id, title, state, type, subject: String
            var closeReason: String?
            var window: Window?
            var labels: [String]
            var findings: [Item]
        }
        var view = View(id: id, title: title, state: "open", type: type.rawValue, subject: subject.description, labels: labels, findings: [])
        if case .closed(let reason) = state { (view.state, view.closeReason) = ("closed", reason.rawValue) }
        if case .due(let start, let end) = window { view.window = Window(start: start, end: end) }
        view.findings = entries.map { e in
            let k = e.finding.key
            return Item(
                key: k.stableString, artefact: k.artefact.description, datasource: k.datasource, subject: k.dataKey.subject, id: k.dataKey.id,
                category: e.effective.category.description, score: e.finding.score, discoveredAt: e.finding.discoveredAt,
                dueDate: e.effective.dueDate,
                overdue: e.effective.overdue,
                rescoring: e.effective.rescoring.map { Rescored(id: $0.id, category: $0.categoryID, user: $0.user, comment: $0.comment) })
        }
        return try! RFC3339.encoder().encode(view)
    }
}

/// Groups open findings into issue documents and decides which earlier issues close.
public struct IssueExport: Sendable, Hashable {
    /// The length of a due-date window (a sprint).
    public var windowLength: Duration
    /// The start of one window (the others follow and precede it).
    public var origin: Date

    /// Two-week windows starting on Mondays (1970-01-05 was one).
    public init(windowLength: Duration = .days(14), origin: Date = Date(timeIntervalSince1970: 4 * 86_400)) {
        self.windowLength = windowLength
        self.origin = origin
    }

    /// The window a due date falls in.
    public func window(for due: Date?) -> IssueDocument.Window {
        guard let due else { return .undated }
        let length = windowLength.seconds
        let start = origin.addingTimeInterval((due.timeIntervalSince(origin) / length).rounded(.down) * length)
        return .due(start: start, end: start.addingTimeInterval(length))
    }

    /// The issues for the findings open at `now`: one per subject (the artefact's component from `component`, or
    /// the artefact's name), type and due window, in id order. Findings in a category that is never due are left
    /// out; uncategorised ones go to an undated issue. `scanPending` says which artefacts wait for a scan.
    public func issues(
        for findings: [Finding], evaluator: SLAEvaluator, now: Date, component: (ArtefactID) -> ComponentRef?, scanPending: (ArtefactID) -> Bool
    ) -> [IssueDocument] {
        struct Group: Hashable {
            var subject: IssueDocument.Subject
            var type: FindingType
            var window: IssueDocument.Window
        }
        var groups: [Group: (entries: [IssueDocument.Entry], labels: Set<String>)] = [:]
        for f in findings where f.isOpen(at: now) {
            let c = component(f.key.artefact)
            let e = evaluator.effective(f, component: c, now: now)
            guard e.dueDate != nil || e.category == .uncategorised else { continue }
            let g = Group(subject: c.map { .component($0.name) } ?? .artefact(f.key.artefact.name), type: f.key.type, window: window(for: e.dueDate))
            groups[g, default: ([], [])].entries.append(IssueDocument.Entry(finding: f, effective: e))
            if e.overdue { groups[g]!.labels.insert(IssueDocument.overdueLabel) }
            if scanPending(f.key.artefact) { groups[g]!.labels.insert(IssueDocument.scanPendingLabel) }
        }
        return groups.map { g, v in
            let entries = v.entries.sorted {
                ($0.effective.dueDate ?? .distantFuture, $0.finding.key.stableString) < (
                    $1.effective.dueDate ?? .distantFuture, $1.finding.key.stableString
                )
            }
            return IssueDocument(subject: g.subject, type: g.type, window: g.window, entries: entries, labels: v.labels.sorted())
        }
        .sorted { $0.id < $1.id }
    }

    /// Today's issues against the ones open before: `open` are the current issues of tracked subjects; `closed`
    /// are the previously open issues not among them, closed because their subject is no longer tracked or
    /// because no open findings remain.
    public static func reconcile(
        previous: [IssueDocument], current: [IssueDocument], isTracked: (IssueDocument.Subject) -> Bool
    ) -> (open: [IssueDocument], closed: [IssueDocument]) {
        let open = current.filter { isTracked($0.subject) }
        let ids = Set(open.map(\.id))
        let closed = previous.filter { $0.state == .open && !ids.contains($0.id) }.map { issue in
            var issue = issue
            issue.state = .closed(isTracked(issue.subject) ? .noOpenFindings : .notTracked)
            return issue
        }
        return (open, closed)
    }
}
