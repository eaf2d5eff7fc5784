import Documents
import Foundation

/// A compliance summary of an artefact or component: what a dashboard shows first.
public enum ComplianceSummary: Hashable, Sendable, CustomStringConvertible {
    /// Never scanned: nothing is known.
    case unknown
    /// Scanned, and no open finding counts (only never-due categories of value 0, if any).
    case clean
    /// The worst category among the open findings that count.
    case worst(SLACategory)

    /// `UNKNOWN`, `CLEAN`, the category id or `UNCATEGORISED`.
    public var description: String {
        switch self {
        case .unknown: "UNKNOWN"
        case .clean: "CLEAN"
        case .worst(let c): c.categorisation?.id ?? "UNCATEGORISED"
        }
    }
}

/// The compliance of a set of findings (one artefact's, or one component's) at a time, with the rescorings in force
/// then: what a daily snapshot records.
public struct ComplianceSnapshot: Hashable, Sendable {
    /// The snapshot's time.
    public var at: Date
    /// The start of the period ``resolved`` counts.
    public var from: Date
    /// Open findings by effective category id.
    public var openByCategory: [String: Int] = [:]
    /// Open findings in no category.
    public var uncategorised = 0
    /// Open findings past their due date.
    public var overdue = 0
    /// Open findings not overdue and due within 7 days (also counted in ``dueWithin30Days``).
    public var dueWithin7Days = 0
    /// Open findings not overdue and due within 30 days.
    public var dueWithin30Days = 0
    /// Findings resolved in `from...at`.
    public var resolved = 0
    /// The worst open category that counts (value above 0, or uncategorised); nil: none.
    public var worst: SLACategory?

    /// Every finding open at `at`.
    public var open: Int { openByCategory.values.reduce(uncategorised, +) }

    /// The snapshot of `findings` (all of the component named in `component`, or of an artefact outside one).
    public init(findings: [Finding], evaluator: SLAEvaluator, component: ComponentRef?, from: Date, at: Date) {
        self.at = at
        self.from = from
        let (week, month) = (at + .days(7), at + .days(30))
        for f in findings {
            if let r = f.resolvedAt, r >= from, r <= at { resolved += 1 }
            guard f.isOpen(at: at) else { continue }
            let e = evaluator.effective(f, component: component, now: at)
            switch e.category {
            case .category(let c): openByCategory[c.id, default: 0] += 1
            case .uncategorised: uncategorised += 1
            }
            if e.category.rank > 0, worst.map({ e.category.rank > $0.rank }) ?? true { worst = e.category }
            if e.overdue {
                overdue += 1
            } else if let due = e.dueDate {
                if due <= week { dueWithin7Days += 1 }
                if due <= month { dueWithin30Days += 1 }
            }
        }
    }

    /// The summary: UNKNOWN when not `scanned`, else CLEAN or the worst open category.
    public func summary(scanned: Bool) -> ComplianceSummary {
        guard scanned else { return .unknown }
        return worst.map(ComplianceSummary.worst) ?? .clean
    }
}

/// Which findings were overdue at a release date, with the rescorings in force at that date: the evidence an
/// audit asks for.
public struct SLAReport: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var finding: Finding
        public var effective: Effective
    }

    public var releaseDate: Date
    /// The findings open and overdue at ``releaseDate``, earliest due first.
    public var overdue: [Entry]
    /// The rescorings that applied to some finding at ``releaseDate``.
    public var rescoringsApplied: [Rescoring]

    public init(findings: [Finding], evaluator: SLAEvaluator, component: ComponentRef?, releaseDate: Date) {
        self.releaseDate = releaseDate
        var applied: [String: Rescoring] = [:]
        overdue = findings.compactMap { f in
            let e = evaluator.effective(f, component: component, now: releaseDate)
            if f.isOpen(at: releaseDate), let r = e.rescoring { applied[r.id] = r }
            return e.overdue ? Entry(finding: f, effective: e) : nil
        }
        .sorted {
            ($0.effective.dueDate ?? .distantPast, $0.finding.key.stableString) < ($1.effective.dueDate ?? .distantPast, $1.finding.key.stableString)
        }
        rescoringsApplied = applied.values.sorted(by: Rescoring.chronological)
    }
}
