import ArgumentParser
import CommandSupport
import Findings
import Foundation
import SampleContent
import Storage
import WardenApp
import Workflow

/// `warden-dev bench-findings`: the compliance engine at scale, in one process on a fresh state directory (the
/// SQLite file `warden serve` keeps). Components of repositories of versions, each version scanned once through
/// the compliance plane (discovery dates carried over from the previous version), rescorings of every scope made
/// through the plane, then: (a) every finding's effective category and due date, the indexed way and, on a
/// sample, by comparing each finding with every rescoring (the answers must agree); (b) a component's compliance
/// summary; (c) filtered findings pages. Prints JSON; the store's size on disk is bench/findings.sh's to measure, once
/// the process has closed it.
struct BenchFindingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-findings", abstract: "Benchmark the compliance engine.")
    @Option(name: .long, help: "A state directory (created; must not hold a store yet).") var state: String
    @Option(name: .long) var components = 100
    @Option(name: .long, help: "Repositories per component.") var repositories = 10
    @Option(name: .long, help: "Versions (digests) per repository.") var versions = 10
    @Option(name: .long, help: "Findings per artefact version.") var findings = 100
    @Option(name: .long) var rescorings = 10_000
    @Option(name: .long, help: "Requests per latency measurement.") var iterations = 300
    @Option(name: .long, help: "Findings compared with every rescoring (the naive match).") var naiveSample = 5_000

    struct Output: Encodable {
        var artefacts, findings, openFindings, rescorings: Int
        var ingestSeconds, scansPerSecond, findingsPerSecond: Double
        var rescoreSeconds: Double
        var effectiveSeconds: Double
        var effectiveByCategory: [String: Int]
        var rescoredFindings: Int
        var naiveSample: Int
        var naiveSampleSeconds: Double
        var naiveExtrapolatedSeconds: Double
        var naiveAgrees: Bool
        var componentSummaryFindings: Int
        var componentSummaryMs: Percentiles
        var artefactSummaryMs: Percentiles
        var pageMs: Percentiles
        var pageByCategoryMs: Percentiles
        var pageByRepositoryMs: Percentiles
    }

    struct Percentiles: Encodable {
        var p50, p95, p99, max: Double
        init(_ samples: [Double]) {
            let s = samples.sorted()
            func at(_ q: Double) -> Double { s.isEmpty ? 0 : s[min(s.count - 1, Int((Double(s.count) * q).rounded(.up)) - 1)] }
            p50 = at(0.5)
            p95 = at(0.95)
            p99 = at(0.99)
            max = s.last ?? 0
        }
    }

    final class Clock: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Date
        init(_ d: Date) { value = d }
        var now: Date {
            get { lock.withLock { value } }
            set { lock.withLock { value = newValue } }
        }
    }

    func run() async throws {
        guard !FileManager.default.fileExists(atPath: StateLayout(state).workflowsDatabase) else {
            throw ValidationError("\(state) holds a store already: give a fresh directory")
        }
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let store = try SQLiteWorkflowStore(path: StateLayout(state).workflowsDatabase)
        let engine = WorkflowEngine(store: store, catalog: ActionCatalog([]), configuration: EngineConfiguration(stateDirectory: state))
        let start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01
        let clock = Clock(start)
        let plane = CompliancePlane(control: ControlPlane(store: store, engine: engine, now: { clock.now }))
        let caller = ControlPlane.Caller(Principal(name: "bench", method: "token"))
        var random = SeededGenerator(seed: 19)
        let timer = ContinuousClock()

        // The estate: each repository has a pool of vulnerabilities and licenses; version v reports the pool's
        // entries v*5 ..< v*5 + findings (a version bump keeps most findings and brings a few new ones).
        func digest(_ c: Int, _ r: Int, _ v: Int) -> String {
            let seed = String(format: "%03d%03d%03d", c, r, v)
            return "sha256:" + String(repeating: seed, count: 8).prefix(64)
        }
        func repository(_ c: Int, _ r: Int) -> String { String(format: "team/comp-%03d/svc-%02d", c, r) }
        func componentName(_ c: Int) -> String { String(format: "comp-%03d", c) }
        func entry(_ c: Int, _ r: Int, _ i: Int) -> Scan.Entry {
            // Packages and vulnerabilities repeat across repositories (shared base images), so global and
            // component rescorings cover many findings.
            let package = "pkg-\((c * 7 + r * 3 + i) % 400)"
            if i % 10 == 9 {
                let licenses = ["MIT", "Apache-2.0", "GPL-3.0-only", "LGPL-2.1-or-later", "BSD-3-Clause", "AGPL-3.0-only"]
                return Scan.Entry(DataKey(type: .license, subject: package, id: licenses[(c + i) % licenses.count]), summary: "\(package) license")
            }
            let vuln = "CVE-2026-\(10_000 + (c * 131 + r * 17 + i * 7) % 20_000)"
            let score = Double((c * 13 + r * 7 + i * 3) % 100 + 1) / 10
            return Scan.Entry(DataKey(type: .vulnerability, subject: package, id: vuln), score: score, summary: "\(vuln) in \(package)")
        }

        var ingest = Duration.zero
        var scans = 0
        for c in 0..<components {
            for r in 0..<repositories {
                for v in 0..<versions {
                    let id = ArtefactID(registry: "registry.example", repository: repository(c, r), digest: digest(c, r, v))
                    clock.now = start + Double(v) * 7 * 86_400
                    ingest += try await timer.measure {
                        _ = try await plane.track(
                            [
                                ArtefactSighting(
                                    ref: ArtefactRef(registry: id.registry, repository: id.repository, digest: id.digest),
                                    component: componentName(c), componentVersion: "1.\(v)")
                            ],
                            caller: caller)
                        let scan = Scan(
                            artefact: id, datasource: "osv", scannedAt: clock.now, entries: (0..<findings).map { entry(c, r, v * 5 + $0) })
                        _ = try await plane.recordScan(scan, caller: caller)
                    }
                    scans += 1
                }
            }
        }
        let total = try await store.findingCount(FindingQuery(limit: Int.max))
        let open = try await store.findingCount(FindingQuery(openOnly: true, limit: Int.max))

        // Rescorings of every scope, on data keys the estate has, a fifth of them expiring (half of those already).
        let now = start + Double(versions) * 7 * 86_400 + 86_400
        let categories = ["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
        var rescoreTime = Duration.zero
        for n in 0..<rescorings {
            let c = Int.random(in: 0..<components, using: &random)
            let r = Int.random(in: 0..<repositories, using: &random)
            let v = Int.random(in: 0..<versions, using: &random)
            let e = entry(c, r, v * 5 + Int.random(in: 0..<findings, using: &random))
            guard e.dataKey.type == .vulnerability || e.dataKey.type == .license else { continue }
            let scope: Rescoring.Scope =
                switch n % 4 {
                case 0: .global
                case 1: .component(componentName(c))
                case 2: .artefact(ArtefactName(registry: "registry.example", repository: repository(c, r)))
                default: .single(ArtefactID(registry: "registry.example", repository: repository(c, r), digest: digest(c, r, v)))
                }
            let category = e.dataKey.type == .license ? ["NONE", "HIGH"][n % 2] : categories[n % categories.count]
            clock.now = now - 86_400 - Double(rescorings - n) * 60
            let expires: Date? = n % 5 == 0 ? (n % 10 == 0 ? now - 3_600 : now + 30 * 86_400) : nil
            rescoreTime += try await timer.measure {
                _ = try await plane.rescore(
                    CompliancePlane.RescoreRequest(
                        dataKey: e.dataKey, scope: scope, category: category, comment: "bench \(n)", expiresAt: expires, freshClock: n % 20 == 0),
                    caller: caller)
            }
        }
        clock.now = now
        let rescoringCount = try await store.rescorings(type: nil, subject: nil, dataID: nil).count

        // (a) Every finding's effective category and due date: the store read in pages, one index of every rescoring.
        var byCategory: [String: Int] = [:]
        var rescored = 0
        var sample: [(Finding, ComponentRef?, String?)] = []
        let effectiveTime = try await timer.measure {
            let index = RescoringIndex(try await store.rescorings(type: nil, subject: nil, dataID: nil).map(CompliancePlane.rescoring))
            let evaluator = SLAEvaluator(policy: plane.policy, rescorings: index)
            var componentOf: [Int64: ComponentRef] = [:]
            for a in try await store.artefacts(registry: nil, repository: nil, component: nil, trackedOnly: false) {
                if let name = a.component { componentOf[a.number] = ComponentRef(name: name, version: a.componentVersion ?? "") }
            }
            var q = FindingQuery(limit: 20_000)
            while true {
                let page = try await store.findings(q)
                for record in page {
                    let f = CompliancePlane.finding(record)
                    let component = componentOf[record.artefactNumber]
                    let e = evaluator.effective(f, component: component, now: now)
                    byCategory[e.category.description, default: 0] += 1
                    if e.rescoring != nil { rescored += 1 }
                    if sample.count < naiveSample, record.artefactNumber % 7 == 0 { sample.append((f, component, e.rescoring?.id)) }
                }
                guard page.count == q.limit, let last = page.last else { break }
                q.after = last.cursor
            }
        }

        // The naive match on the sample: every finding against every rescoring (what a loop over both does).
        let all = try await store.rescorings(type: nil, subject: nil, dataID: nil).map(CompliancePlane.rescoring)
        var agrees = true
        let naiveTime = timer.measure {
            for (f, component, indexed) in sample {
                var best: Rescoring?
                for r in all where r.dataKey == f.key.dataKey && r.applies(to: f.key, component: component?.name) && r.isInForce(at: now) {
                    if best.map({ Rescoring.precedes(r, $0) }) ?? true { best = r }
                }
                if best?.id != indexed { agrees = false }
            }
        }

        // (b) Compliance summaries, (c) filtered pages: through the plane, as the API calls them.
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
        var componentSummary: [Double] = []
        var artefactSummary: [Double] = []
        var page: [Double] = []
        var pageByCategory: [Double] = []
        var pageByRepository: [Double] = []
        var summaryFindings = 0
        for _ in 0..<iterations {
            let c = Int.random(in: 0..<components, using: &random)
            let r = Int.random(in: 0..<repositories, using: &random)
            let v = Int.random(in: 0..<versions, using: &random)
            componentSummary.append(
                ms(
                    try await timer.measure {
                        let s = try await plane.summary(.component(componentName(c)), caller: caller)
                        summaryFindings = max(summaryFindings, s.open)
                    }))
            let id = ArtefactID(registry: "registry.example", repository: repository(c, r), digest: digest(c, r, v))
            artefactSummary.append(ms(try await timer.measure { _ = try await plane.summary(.artefact(id), caller: caller) }))
            page.append(
                ms(
                    try await timer.measure {
                        _ = try await plane.findings(.init(component: componentName(c), type: "vulnerability", limit: 100), caller: caller)
                    }))
            pageByCategory.append(
                ms(
                    try await timer.measure {
                        _ = try await plane.findings(.init(component: componentName(c), category: "HIGH", limit: 100), caller: caller)
                    }))
            pageByRepository.append(
                ms(
                    try await timer.measure {
                        _ = try await plane.findings(.init(registry: "registry.example", repository: repository(c, r), limit: 100), caller: caller)
                    }))
        }

        func seconds(_ d: Duration) -> Double { ms(d) / 1000 }
        try printJSON(
            Output(
                artefacts: scans, findings: total, openFindings: open, rescorings: rescoringCount, ingestSeconds: seconds(ingest),
                scansPerSecond: Double(scans) / seconds(ingest), findingsPerSecond: Double(scans * findings) / seconds(ingest),
                rescoreSeconds: seconds(rescoreTime), effectiveSeconds: seconds(effectiveTime), effectiveByCategory: byCategory,
                rescoredFindings: rescored, naiveSample: sample.count, naiveSampleSeconds: seconds(naiveTime),
                naiveExtrapolatedSeconds: sample.isEmpty ? 0 : seconds(naiveTime) * Double(total) / Double(sample.count), naiveAgrees: agrees,
                componentSummaryFindings: summaryFindings, componentSummaryMs: Percentiles(componentSummary),
                artefactSummaryMs: Percentiles(artefactSummary), pageMs: Percentiles(page), pageByCategoryMs: Percentiles(pageByCategory),
                pageByRepositoryMs: Percentiles(pageByRepository)))
        if !agrees { throw ValidationError("the indexed and the naive rescoring match disagree on the sample") }
    }
}
