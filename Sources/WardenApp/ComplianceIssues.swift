import CEL
import Documents
import Findings
import Foundation
import Storage

extension CompliancePlane {
    /// An exported issue as the API and the CLI show it.
    public struct IssueView: Sendable, Encodable, Equatable {
        public var id, title, state: String
        public var labels: [String]
        public var findings: Int
        init(_ d: IssueDocument) {
            id = d.id
            title = d.title
            state = Self.state(d.state)
            labels = d.labels
            findings = d.entries.count
        }
        static func state(_ s: IssueDocument.State) -> String {
            switch s {
            case .open: "open"
            case .closed(let r): "closed:\(r.rawValue)"
            }
        }
    }

    public struct IssueExportOutcome: Sendable, Encodable {
        public var open: [IssueView]
        /// Issues open at the last export that close now, with why.
        public var closed: [IssueView]
    }

    /// Where exported issues go: each open or closing issue as `<id>.md` and `<id>.json` in a directory (written
    /// atomically), or handed to `deliver` (a webhook).
    public enum IssueDelivery: Sendable {
        case directory(String)
        case handler(@Sendable (IssueDocument) async throws -> Void)
        case none
    }

    /// Groups the open findings into issue documents (Findings' `IssueExport`), closes the ones open at the last
    /// export that no longer exist (the subject no longer tracked, or no open findings left), delivers both, and
    /// records the export (audited as `issues.export`). An issue is recorded only after its delivery succeeded, so
    /// a failed delivery is retried at the next export.
    public func exportIssues(delivery: IssueDelivery, export: IssueExport = IssueExport(), caller: ControlPlane.Caller) async throws
        -> IssueExportOutcome
    {
        let now = control.now()
        let records = try await store.findings(FindingQuery(openOnly: true, limit: Int.max))
        let evaluator = try await evaluator(for: records)
        let tracked = try await store.artefacts(registry: nil, repository: nil, component: nil, trackedOnly: true)
        let all = try await store.artefacts(registry: nil, repository: nil, component: nil, trackedOnly: false)
        let components = Dictionary(
            all.map { (Self.id($0.ref), $0.component.map { c in ComponentRef(name: c, version: "") }) }, uniquingKeysWith: { a, _ in a })
        let pending = Set(try await store.backlog(limit: Int.max).map { Self.id($0.artefact) })
        let current = export.issues(
            for: records.map(Self.finding), evaluator: evaluator, now: now, component: { components[$0] ?? nil },
            scanPending: { pending.contains($0) })
        let trackedComponents = Set(tracked.compactMap(\.component))
        let trackedNames = Set(tracked.map { Self.id($0.ref).name })
        let isTracked: (IssueDocument.Subject) -> Bool = { s in
            switch s {
            case .component(let c): trackedComponents.contains(c)
            case .artefact(let n): trackedNames.contains(n)
            }
        }
        let previous = try await store.exportedIssues().filter { $0.state == "open" }.compactMap { Self.document($0) }
        let (open, closed) = IssueExport.reconcile(previous: previous, current: current, isTracked: isTracked)
        for doc in open + closed {
            switch delivery {
            case .directory(let dir): try Self.write(doc, to: dir)
            case .handler(let deliver): try await deliver(doc)
            case .none: break
            }
        }
        let saved = (open + closed).map { IssueRecord(id: $0.id, state: IssueView.state($0.state), data: Self.stored($0), updatedAt: now) }
        let event = control.event(
            caller, "issues.export", "issues", workspace: nil, details: [("open", .int(Int64(open.count))), ("closed", .int(Int64(closed.count)))])
        try await store.saveIssues(saved, audit: control.audit(caller, event))
        caller.decision?.committed()
        return IssueExportOutcome(open: open.map(IssueView.init), closed: closed.map(IssueView.init))
    }

    /// What is kept of an exported issue to close it later: its group and window.
    static func stored(_ d: IssueDocument) -> String {
        let subject: Value =
            switch d.subject {
            case .component(let c): .object([("component", .string(c))])
            case .artefact(let n): .object([("registry", .string(n.registry)), ("repository", .string(n.repository))])
            }
        let window: Value =
            switch d.window {
            case .due(let start, let end): .object([("start", .string(RFC3339.string(start))), ("end", .string(RFC3339.string(end)))])
            case .undated: .string("undated")
            }
        return Value.object([("subject", subject), ("type", .string(d.type.rawValue)), ("window", window)]).jsonText(sortedKeys: true)
    }

    /// The issue a record keeps (without its entries), or nil when the record is not one `stored` wrote.
    static func document(_ r: IssueRecord) -> IssueDocument? {
        guard let v = try? Value.parseJSON(r.data), case .string(let type)? = v["type"] else { return nil }
        let subject: IssueDocument.Subject
        if case .string(let c)? = v["subject"]?["component"] {
            subject = .component(c)
        } else if case .string(let reg)? = v["subject"]?["registry"], case .string(let repo)? = v["subject"]?["repository"] {
            subject = .artefact(ArtefactName(registry: reg, repository: repo))
        } else {
            return nil
        }
        let window: IssueDocument.Window
        if case .string(let s)? = v["window"]?["start"], case .string(let e)? = v["window"]?["end"], let start = RFC3339.date(s),
            let end = RFC3339.date(e)
        {
            window = .due(start: start, end: end)
        } else {
            window = .undated
        }
        let doc = IssueDocument(subject: subject, type: FindingType(type), window: window, entries: [], labels: [])
        return doc.id == r.id ? doc : nil
    }

    /// Writes `<id>.json` and `<id>.md` into `dir`, each through a temporary file renamed into place.
    public static func write(_ doc: IssueDocument, to dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (ext, data) in [("json", doc.json()), ("md", Data(doc.markdown().utf8))] {
                let path = dir + "/" + doc.id + "." + ext
                let tmp = dir + "/." + doc.id + "." + ext + ".tmp"
                try data.write(to: URL(fileURLWithPath: tmp))
                // rename(2) replaces the old file in one step: a reader sees the old issue or the new one.
                guard rename(tmp, path) == 0 else {
                    let why = String(cString: strerror(errno))
                    try? FileManager.default.removeItem(atPath: tmp)
                    throw ControlError(.invalid, "issue export: cannot write \(path): \(why)")
                }
            }
        } catch let e as ControlError {
            throw e
        } catch {
            throw ControlError(.invalid, "issue export to \(dir): \(error.localizedDescription)")
        }
    }
}
