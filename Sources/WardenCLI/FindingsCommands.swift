import ArgumentParser
import CommandSupport
import Documents
import Findings
import Foundation
import Storage
import Vulnerability
import WardenApp

/// The compliance engine on a state directory (docs/compliance.md): the findings `warden serve` keeps, read and
/// changed with or without the server running (local changes are audited as `local:USER`) — or, with `--server`
/// (`WARDEN_SERVER`), through that server's API as the token's principal. Both print the same.
struct ComplianceState: ParsableArguments {
    @Option(name: .long, help: "State directory (default .warden).") var state = StateLayout.defaultRoot
    @Option(name: .long, help: "A control plane (warden serve) to ask instead of the state directory; default $WARDEN_SERVER.")
    var server: String?

    static var caller: ControlPlane.Caller { ControlPlane.Caller(Principal(name: "local:\(ProcessInfo.processInfo.userName)", method: "local")) }

    func plane() throws -> CompliancePlane {
        do { return try CompliancePlane.open(control: try AdminStore.open(state), state: StateLayout(state)) } catch let e as ControlError {
            printError("error: \(e.reason)")
            throw ExitCode(65)
        }
    }

    /// The server's client when `--server` or `WARDEN_SERVER` names one.
    var client: ServerClient? {
        var options = ServerOptions()
        options.server = server
        return options.url.map(ServerClient.init(base:))
    }

    /// Runs a job on the state directory, or asks the server (`remote`) when one is named, then prints the result
    /// (JSON with `--output json`, else `text`). A local job's `ControlError` becomes a message and an exit status
    /// (3: not found, 65: bad input); a server's refusal its problem's detail and status (4: 401/403, 3: 404).
    func run<T: Codable>(
        _ global: GlobalOptions, local body: (CompliancePlane) async throws -> T, remote: (ServerClient) async throws -> T,
        text: (T) -> [String]
    ) async throws {
        let value: T
        if let client {
            value = try await remote(client)
        } else {
            let plane = try plane()
            do { value = try await body(plane) } catch let e as ControlError {
                printError("error: \(e.reason)")
                throw ExitCode(e.code == .notFound ? 3 : e.code == .invalid ? 65 : 1)
            }
        }
        Self.print(value, global, text: text)
    }

    /// Runs a job on the state directory (one the API has no counterpart of for a client: `--server` is refused).
    func runLocal<T: Encodable>(_ global: GlobalOptions, _ body: (CompliancePlane) async throws -> T, text: (T) -> [String]) async throws {
        if client != nil {
            printError("error: this command works on the state directory only: leave out --server (and WARDEN_SERVER)")
            throw ExitCode(64)
        }
        let plane = try plane()
        let value: T
        do { value = try await body(plane) } catch let e as ControlError {
            printError("error: \(e.reason)")
            throw ExitCode(e.code == .notFound ? 3 : e.code == .invalid ? 65 : 1)
        }
        Self.print(value, global, text: text)
    }

    static func print<T: Encodable>(_ value: T, _ global: GlobalOptions, text: (T) -> [String]) {
        if global.output == .json {
            Swift.print(String(decoding: (try? RFC3339.encoder(pretty: true).encode(value)) ?? Data(), as: UTF8.self))
        } else {
            for line in text(value) { Swift.print(line) }
        }
    }

    /// `path?name=value&…` with the values that are set, percent-encoded.
    static func path(_ path: String, _ parameters: [(String, String?)]) -> String {
        let q = parameters.compactMap { name, value in value.map { "\(name)=\(ServerClient.query($0))" } }
        return q.isEmpty ? path : path + "?" + q.joined(separator: "&")
    }

    static func date(_ text: String, _ what: String) throws -> Date {
        guard let d = RFC3339.date(text) ?? CompliancePlaneDay.parse(text) else {
            printError("error: \(what) \(text) is neither an RFC 3339 time nor a day (yyyy-mm-dd)")
            throw ExitCode(64)
        }
        return d
    }
}

/// Days as the CLI reads them (`2026-12-01` is its start, UTC).
enum CompliancePlaneDay {
    static func parse(_ text: String) -> Date? { RFC3339.date(text + "T00:00:00Z") }
}

func line(_ f: CompliancePlane.FindingView) -> String {
    let due = f.dueDate.map { RFC3339.string($0) } ?? "never"
    return "\(f.category)\t\(f.overdue ? "OVERDUE" : "due \(due)")\t\(f.id)\t\(f.subject)\t\(f.artefact)\(f.resolvedAt == nil ? "" : "\tresolved")"
}

struct FindingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "findings", abstract: "Findings tied to artefacts, with their SLA category and due date.",
        subcommands: [List.self, Show.self, Record.self, Track.self, Declare.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List findings in key order (open ones unless --all), with their effective category and due date.")
        @Option(name: .long, help: "An artefact version: registry/repository@sha256:….") var artefact: String?
        @Option(name: .long, help: "Every version of registry/repository.") var repository: String?
        @Option(name: .long, help: "The artefacts of a component.") var component: String?
        @Option(name: .long, help: "vulnerability, license, malware, os-eol, …") var type: String?
        @Option(name: .long, help: "A package (a purl without version for vulnerabilities).") var package: String?
        @Option(name: .long, help: "A vulnerability (or license, signature) id.") var id: String?
        @Option(name: .long, help: "Only this effective category (e.g. CRITICAL, NONE, uncategorised).") var category: String?
        @Flag(name: .long, help: "Only overdue findings.") var overdue = false
        @Flag(name: .long, help: "Resolved findings too.") var all = false
        @Option(name: .long, help: "Page size (1–1000).") var limit = 100
        @Option(name: .long, help: "The cursor printed after the previous page.") var cursor: String?
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var filter = CompliancePlane.FindingFilter(
                component: component, type: type, package: package, id: id, openOnly: !all, category: category, overdue: overdue ? true : nil,
                cursor: cursor, limit: limit)
            if let artefact {
                do {
                    guard case .artefact(let a) = try CompliancePlane.Subject(parsing: artefact) else {
                        printError("error: --artefact \(artefact) is not registry/repository@sha256:…")
                        throw ExitCode(64)
                    }
                    (filter.registry, filter.repository, filter.digest) = (a.registry, a.repository, a.digest)
                } catch let e as ControlError {
                    printError("error: --artefact: \(e.reason)")
                    throw ExitCode(64)
                }
            }
            if let repository {
                guard let slash = repository.firstIndex(of: "/") else {
                    printError("error: --repository \(repository) is not registry/repository")
                    throw ExitCode(64)
                }
                filter.registry = String(repository[..<slash])
                filter.repository = String(repository[repository.index(after: slash)...])
            }
            let path = ComplianceState.path(
                "/api/v1/findings",
                [
                    ("registry", filter.registry), ("repository", filter.repository), ("artefact", artefact), ("component", component),
                    ("type", type), ("package", package), ("id", id), ("category", category), ("overdue", overdue ? "true" : nil),
                    ("all", all ? "true" : nil), ("cursor", cursor), ("limit", String(limit)),
                ])
            try await local.run(
                global, local: { try await $0.findings(filter, caller: ComplianceState.caller) },
                remote: { try await $0.get(path, as: CompliancePlane.FindingsPage.self) }
            ) { page in page.items.map(line) + (page.next.map { ["next: \($0)"] } ?? []) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one finding (its key from `findings list --output json`) and its rescorings.")
        @Argument(help: "The finding's key: registry|repository|digest|datasource|type|subject|id.") var key: String
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await local.run(
                global, local: { try await $0.finding(key: key, caller: ComplianceState.caller) },
                remote: { try await $0.get(ComplianceState.path("/api/v1/finding", [("key", key)]), as: CompliancePlane.FindingDetail.self) }
            ) { d in
                [line(d.finding), "discovered \(RFC3339.string(d.finding.discoveredAt)), last seen \(RFC3339.string(d.finding.lastSeenAt))"]
                    + d.rescorings.map { "rescoring \($0.id)\t\($0.category)\t\($0.scope) \($0.scopeValue ?? "")\tby \($0.user): \($0.comment)" }
            }
        }
    }

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a vulnerability scan report (`warden scan --format json`) as the complete scan of an artefact version.",
            discussion: """
                Findings the report no longer lists are resolved; discovery dates carry over from earlier versions of the same \
                repository; VEX not_affected statements the scan applied become rescorings (NONE) of that version.
                """)
        @Argument(help: "The report (JSON), or - for standard input.") var report: String
        @Option(name: .long, help: "The artefact version scanned: registry/repository@sha256:… (default: the report's subject).") var artefact:
            String?
        @Option(name: .long, help: "A tag it was seen under (repeatable).") var tag: [String] = []
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let data: Data = report == "-" ? FileHandle.standardInput.readDataToEndOfFile() : Data(try readTextFile(report, status: 66).utf8)
            let parsed: ScanReport
            do { parsed = try ScanReport.read(json: Array(data), name: report) } catch let e as VulnerabilityError {
                printError("error: \(e)")
                throw ExitCode(65)
            }
            var name = artefact
            if name == nil, let digest = parsed.subject.manifestDigest ?? parsed.subject.digest {
                let base = parsed.subject.name.split(separator: "@")[0]
                let repo = base.lastIndex(of: ":").map { base[..<$0] }.flatMap { $0.contains("/") ? $0 : nil } ?? base
                name = "\(repo)@\(digest)"
            }
            guard let name else {
                printError("error: the report names no digest: give --artefact registry/repository@sha256:…")
                throw ExitCode(64)
            }
            try await local.runLocal(
                global,
                { plane in
                    guard case .artefact(let a) = try CompliancePlane.Subject(parsing: name) else {
                        throw ControlError(.invalid, "artefact \(name) is not registry/repository@sha256:…")
                    }
                    let (outcome, rescored) = try await plane.recordVulnerabilityReport(
                        parsed, artefact: a, tags: tag, caller: ComplianceState.caller)
                    return RecordView(scan: outcome, rescorings: rescored)
                }
            ) { v in
                [
                    "\(v.scan.artefact): \(v.scan.reported) reported (\(v.scan.new) new), \(v.scan.closed) resolved, \(v.rescorings.count) VEX rescorings"
                ]
            }
        }
        struct RecordView: Encodable {
            var scan: CompliancePlane.ScanOutcome
            var rescorings: [CompliancePlane.RescoringView]
        }
    }

    struct Track: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Track an artefact version, optionally as part of a component.")
        @Argument(help: "registry/repository@sha256:…") var artefact: String
        @Option(name: .long, help: "The component it belongs to.") var component: String?
        @Option(name: .long, help: "The component's version.") var componentVersion: String?
        @Option(name: .long, help: "A tag it was seen under (repeatable).") var tag: [String] = []
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await local.runLocal(
                global,
                { plane in
                    guard case .artefact(let a) = try CompliancePlane.Subject(parsing: artefact) else {
                        throw ControlError(.invalid, "artefact \(artefact) is not registry/repository@sha256:…")
                    }
                    let ref = ArtefactRef(registry: a.registry, repository: a.repository, digest: a.digest)
                    return try await plane.track(
                        [ArtefactSighting(ref: ref, component: component, componentVersion: componentVersion, tags: tag)],
                        caller: ComplianceState.caller)
                }
            ) { records in records.map { "\($0.artefact)\t\($0.component ?? "-")\t\($0.tags.joined(separator: ","))" } }
        }
    }
}

extension FindingsCommand {
    struct Declare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare a component (a kind: Component file): its tags are followed by the server's enumerator, its pinned versions tracked.")
        @Argument(help: "The component's YAML file.") var file: String
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let text = try readTextFile(file, status: 66)
            try await local.runLocal(global, { try await $0.declare(component: text, file: file, caller: ComplianceState.caller) }) { d in
                ["component \(d.component) \(d.version): \(d.tags.count) tags followed, \(d.artefacts.count) versions tracked"]
                    + d.tags.map { "follows \($0.reference)" } + d.artefacts.map { "tracks \($0.artefact)" }
            }
        }
    }
}

struct RescoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rescore", abstract: "Rescore findings: put them in another SLA category, with a reason, a scope and an optional expiry.",
        subcommands: [Create.self, List.self, Revoke.self, Export.self], defaultSubcommand: Create.self)

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The rescorings in force that say a vulnerability does not apply (NONE), as one OpenVEX document.")
        @Option(name: .shortAndLong, help: "Write to this file (default: standard output).") var output: String?
        @OptionGroup var local: ComplianceState
        func run() async throws {
            let bytes: [UInt8]
            if let client = local.client {
                bytes = Array(try await client.send("GET", "/api/v1/rescorings/openvex", body: nil))
            } else {
                bytes = try await local.plane().rescoringsOpenVEX().openVEXJSON()
            }
            if let output {
                try Data(bytes).write(to: URL(fileURLWithPath: output), options: .atomic)
            } else {
                print(String(decoding: bytes, as: UTF8.self), terminator: "")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Rescore the findings of one package and id within a scope.",
            discussion: """
                Scopes, narrowest first: single:REGISTRY/REPOSITORY@sha256:… (one version), artefact:REGISTRY/REPOSITORY (every \
                version), component:NAME, global. The narrowest rescoring in force wins, then the newest.
                """)
        @Option(name: .long, help: "The finding type.") var type = "vulnerability"
        @Option(name: .long, help: "The package (purl without version, as `findings list` shows it).") var package: String
        @Option(name: .long, help: "The vulnerability (license, signature) id.") var id: String
        @Option(name: .long, help: "single:REF, artefact:REGISTRY/REPOSITORY, component:NAME or global.") var scope: String
        @Option(name: .long, help: "The category (e.g. NONE: does not apply).") var category: String
        @Option(name: .long, help: "Why (required).") var comment: String
        @Option(name: .long, help: "A due date of its own (RFC 3339 or yyyy-mm-dd).") var due: String?
        @Option(name: .long, help: "A processing time of its own, in days from discovery.") var processingDays: Double?
        @Option(name: .long, help: "When it stops applying (RFC 3339 or yyyy-mm-dd).") var expires: String?
        @Flag(name: .long, help: "With --expires: restart the SLA clock at the expiry.") var freshClock = false
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let parts = scope.split(separator: ":", maxSplits: 1).map(String.init)
            let parsedScope: Rescoring.Scope
            do { parsedScope = try CompliancePlane.scope(kind: parts.first ?? "", value: parts.count > 1 ? parts[1] : nil) } catch let e
                as ControlError
            {
                printError("error: --scope \(scope): \(e.reason) (single:REF, artefact:REGISTRY/REPOSITORY, component:NAME or global)")
                throw ExitCode(64)
            }
            let request = CompliancePlane.RescoreRequest(
                dataKey: DataKey(type: FindingType(type), subject: package, id: id), scope: parsedScope, category: category, comment: comment,
                dueDate: try due.map { try ComplianceState.date($0, "--due") }, processingTime: processingDays.map { .seconds($0 * 86_400) },
                expiresAt: try expires.map { try ComplianceState.date($0, "--expires") }, freshClock: freshClock)
            var body: [String: Any] = [
                "type": type, "package": package, "id": id, "scope": parts.first ?? "", "category": category, "comment": comment,
                "freshClock": freshClock,
            ]
            if parts.count > 1 { body["scopeValue"] = parts[1] }
            if let d = request.dueDate { body["dueDate"] = RFC3339.string(d) }
            if let d = processingDays { body["processingDays"] = d }
            if let d = request.expiresAt { body["expiresAt"] = RFC3339.string(d) }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
            try await local.run(
                global, local: { try await $0.rescore(request, caller: ComplianceState.caller) },
                remote: { try await $0.post("/api/v1/rescorings", json: json, as: CompliancePlane.RescoringView.self) }
            ) { r in
                ["\(r.id)\t\(r.category)\t\(r.scope) \(r.scopeValue ?? "")\(r.expiresAt.map { "\texpires \(RFC3339.string($0))" } ?? "")"]
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List rescorings, oldest first (of one package and id with --package and --id).")
        @Option(name: .long) var type = "vulnerability"
        @Option(name: .long) var package: String?
        @Option(name: .long) var id: String?
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let key = package.flatMap { p in id.map { DataKey(type: FindingType(type), subject: p, id: $0) } }
            let path = ComplianceState.path("/api/v1/rescorings", [("type", key.map { _ in type }), ("package", key?.subject), ("id", key?.id)])
            try await local.run(
                global, local: { try await $0.rescorings(of: key, caller: ComplianceState.caller) },
                remote: { try await $0.get(path, as: CompliancePlane.RescoringList.self).rescorings }
            ) { list in
                list.map {
                    "\($0.id)\t\($0.category)\t\($0.findingID)\t\($0.subject)\t\($0.scope) \($0.scopeValue ?? "")\t\($0.expiresAt.map { "until \(RFC3339.string($0))" } ?? "")"
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a rescoring now (it stays in the findings' history).")
        @Argument var id: String
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await local.run(
                global, local: { try await $0.revoke(id, caller: ComplianceState.caller) },
                remote: {
                    try $0.decode(
                        try await $0.send("DELETE", "/api/v1/rescorings/" + ServerClient.query(id), body: nil), as: CompliancePlane.RescoringView.self
                    )
                }
            ) { r in
                ["\(r.id) ends \(r.expiresAt.map { RFC3339.string($0) } ?? "-")"]
            }
        }
    }
}

struct ComplianceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compliance", abstract: "Compliance of artefacts and components: summary, daily history, SLA report, snapshots.",
        subcommands: [Summary.self, History.self, SLAReport.self, Snapshot.self, Issues.self, Policy.self])

    static func subject(_ text: String) throws -> CompliancePlane.Subject {
        do { return try CompliancePlane.Subject(parsing: text) } catch let e as ControlError {
            printError("error: \(e.reason)")
            throw ExitCode(64)
        }
    }

    static func lines(_ s: CompliancePlane.SnapshotView) -> [String] {
        let categories = s.openByCategory.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return [
            "\(s.kind) \(s.subject): \(s.summary)",
            "open \(s.open)\(categories.isEmpty ? "" : " (\(categories))"), uncategorised \(s.uncategorised), overdue \(s.overdue), due within 7 days \(s.dueWithin7Days), within 30 days \(s.dueWithin30Days), resolved \(s.resolved)",
        ]
    }

    struct Summary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "CLEAN, the worst open category or UNKNOWN (never scanned), with the counts.")
        @Argument(help: "A component name or registry/repository@sha256:….") var subject: String
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let s = try ComplianceCommand.subject(subject)
            try await local.run(
                global, local: { try await $0.summary(s, caller: ComplianceState.caller) },
                remote: {
                    try await $0.get(
                        ComplianceState.path("/api/v1/compliance/summary", [("subject", subject)]), as: CompliancePlane.SnapshotView.self)
                }, text: ComplianceCommand.lines)
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The daily snapshots of a component or artefact.")
        @Argument var subject: String
        @Option(name: .long, help: "First day (yyyy-mm-dd).") var from: String?
        @Option(name: .long, help: "Last day (yyyy-mm-dd).") var to: String?
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let s = try ComplianceCommand.subject(subject)
            let path = ComplianceState.path("/api/v1/compliance/history", [("subject", subject), ("from", from), ("to", to)])
            try await local.run(
                global, local: { try await $0.history(s, from: from, to: to, caller: ComplianceState.caller) },
                remote: { try await $0.get(path, as: CompliancePlane.SnapshotList.self).snapshots }
            ) { list in
                list.map { "\(RFC3339.string($0.at).prefix(10))\t\($0.summary)\topen \($0.open)\toverdue \($0.overdue)\tresolved \($0.resolved)" }
            }
        }
    }

    struct SLAReport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sla-report", abstract: "Which findings were overdue at a release date, with the rescorings in force then.")
        @Argument var subject: String
        @Option(name: .long, help: "The release date (RFC 3339 or yyyy-mm-dd).") var releaseDate: String
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let s = try ComplianceCommand.subject(subject)
            let at = try ComplianceState.date(releaseDate, "--release-date")
            let path = ComplianceState.path("/api/v1/compliance/sla-report", [("subject", subject), ("releaseDate", RFC3339.string(at))])
            try await local.run(
                global, local: { try await $0.slaReport(s, releaseDate: at, caller: ComplianceState.caller) },
                remote: { try await $0.get(path, as: CompliancePlane.SLAReportView.self) }
            ) { r in
                ["\(r.overdue.count) findings overdue at \(RFC3339.string(r.releaseDate)); \(r.rescoringsApplied.count) rescorings applied"]
                    + r.overdue.map(line)
            }
        }
    }

    struct Snapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take today's snapshot of every tracked artefact and component now.")
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await local.run(
                global, local: { CompliancePlane.SnapshotCount(snapshots: try await $0.takeSnapshots()) },
                remote: { try await $0.post("/api/v1/compliance/snapshots", json: "{}", as: CompliancePlane.SnapshotCount.self) }
            ) { ["\($0.snapshots) snapshots taken"] }
        }
    }

    struct Issues: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export issues: open findings grouped by component (or artefact), type and due window; issues that no longer apply close.",
            discussion: "Each issue is written as <id>.md and <id>.json into --dir (atomically); without --dir only the list is printed.")
        @Option(name: .long, help: "Directory to write the issues into.") var dir: String?
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await local.runLocal(
                global, { try await $0.exportIssues(delivery: dir.map { .directory($0) } ?? .none, caller: ComplianceState.caller) }
            ) { o in
                o.open.map { "open\t\($0.id.prefix(12))\t\($0.title)\t\($0.findings) findings\t\($0.labels.joined(separator: ","))" }
                    + o.closed.map { "\($0.state)\t\($0.id.prefix(12))\t\($0.title)" }
            }
        }
    }
}

extension ComplianceCommand {
    struct Policy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The SLA policy of the state directory: its categories per finding type and the discovery-date rule.",
            discussion: """
                Without an argument, shows the policy in force (the defaults until one is set). --check FILE reads a policy \
                and reports its first mistake with file:line:col; --set FILE checks it and makes it the state directory's \
                (audited as sla-policy.set). A running server reads the policy when it starts: restart it after --set.
                """)
        @Option(name: .long, help: "Check a policy file without setting it.") var check: String?
        @Option(name: .long, help: "Check a policy file and make it the state directory's.") var set: String?
        @OptionGroup var local: ComplianceState
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            if local.client != nil {
                printError("error: the SLA policy is the state directory's: leave out --server (and WARDEN_SERVER)")
                throw ExitCode(64)
            }
            let layout = StateLayout(local.state)
            // The store opened without the policy in force, so a broken one can be replaced.
            let control = try AdminStore.open(local.state)
            let view: CompliancePlane.PolicyView
            do {
                if let file = check ?? set {
                    let text = try readTextFile(file, status: 66)
                    if set != nil {
                        _ = try await CompliancePlane.setPolicy(text, file: file, state: layout, control: control, caller: ComplianceState.caller)
                    }
                    let (policy, discovery) = try CompliancePlane.readPolicy(text, file: file)
                    view = CompliancePlane(control: control, policy: policy, discovery: discovery).policyView(
                        source: set == nil ? file : layout.slaPolicy)
                } else {
                    let exists = FileManager.default.fileExists(atPath: layout.slaPolicy)
                    view = try CompliancePlane.open(control: control, state: layout).policyView(source: exists ? layout.slaPolicy : "defaults")
                }
            } catch let e as ControlError {
                printError("error: \(e.reason)")
                throw ExitCode(65)
            }
            ComplianceState.print(view, global, text: Self.lines)
        }

        static func lines(_ v: CompliancePlane.PolicyView) -> [String] {
            var out = ["policy: \(v.source)", "discovery dates reused: \(v.maximumReuseDays.map { "up to \(Int($0)) days" } ?? "without limit")"]
            for (type, categories) in v.types.sorted(by: { $0.key < $1.key }) {
                for c in categories {
                    let due = c.allowedProcessingDays.map { $0 == 0 ? "due on discovery" : "due in \(Int($0.rounded())) days" } ?? "never due"
                    let selector =
                        c.cvss.map { "cvss \($0[0])–\($0[1])" } ?? c.pattern.map { "pattern \($0)" } ?? "by rescoring only"
                    out.append("\(type)\t\(c.id)\tvalue \(c.value)\t\(due)\t\(selector)")
                }
            }
            return out
        }
    }
}
