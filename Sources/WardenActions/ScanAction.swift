import CEL
import Foundation
import Inventory
import OCI
import OCIRegistry
import Vulnerability
import WardenApp
import Workflow

/// `vuln/scan@v1`: the scan of `warden scan` over the state directory's database; outputs the policy input's
/// `vulnerabilities` list (so `policy/eval@v1` can gate on it), counts by severity, and the JSON report and SARIF
/// as the artifacts `scan.json` and `scan.sarif`. `failOn` fails the step (permanently) when an open finding is at
/// or above it.
public struct ScanAction: WorkflowAction {
    let registries: Registries
    let stateDirectory: String?
    public init(registries: Registries, stateDirectory: String? = nil) {
        self.registries = registries
        self.stateDirectory = stateDirectory
    }
    public let manifest = ActionManifest(
        name: "vuln/scan", version: "1.0.0",
        description: "Matches an image's packages against the offline OSV database, with VEX and ignore rules; the vulnerabilities fact.",
        inputSchema: schema(
            ["image"],
            [
                ("image", "string"), ("platform", "string"), ("vex", "array"), ("ignore", "string"), ("failOn", "string"), ("failOnStale", "boolean"),
                ("osOwnedLanguagePackages", "string"),
            ]),
        outputSchema: schema(
            ["digest", "findings", "open", "vulnerabilities"],
            [("digest", "string"), ("findings", "integer"), ("open", "integer"), ("counts", "object"), ("vulnerabilities", "array")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let image = try inputs.string("image")
            let source: InventoryJob.Source
            do { source = try InventoryJob.Source(parsing: image) } catch let e as OCIError { throw ActionFailure(.permanent, e.reason) }
            var vex: [String] = []
            if case .list(let items)? = inputs["vex"] {
                for item in items {
                    guard let path = item.stringValue else { throw ActionFailure(.permanent, "vex: a list of file paths") }
                    vex.append(context.resolve(path))
                }
            }
            let failOn = try inputs["failOn"]?.stringValue.map { try ScanJob.failOnSeverity($0, what: "failOn") }
            let mode = try inputs["osOwnedLanguagePackages"]?.stringValue.map { text in
                guard let m = OSOwnedLanguagePackages(rawValue: text) else {
                    throw ActionFailure(.permanent, "osOwnedLanguagePackages \"\(text)\": os or match")
                }
                return m
            }
            var failOnStale = false
            if case .bool(true)? = inputs["failOnStale"] { failOnStale = true }
            let request = ScanJob.Request(
                source: source, name: image, platform: try inputs["platform"]?.stringValue.map { try Platform(parsing: $0) }, vexFiles: vex,
                ignoreFile: inputs["ignore"]?.stringValue.map(context.resolve), osOwnedLanguagePackages: mode ?? .os, failOnStale: failOnStale)
            let store = try DatabaseJob.open(state: StateLayout(stateDirectory ?? StateLayout.defaultRoot))
            let outcome = try await ScanJob.run(request, store: store, registries: registries)
            let report = outcome.report
            for w in report.warnings { context.log("warning: \(w)") }
            let json = context.workDirectory + "/scan.json"
            let sarif = context.workDirectory + "/scan.sarif"
            try Data(try ScanFormat.json.render(report)).write(to: URL(fileURLWithPath: json))
            try Data(try ScanFormat.sarif.render(report)).write(to: URL(fileURLWithPath: sarif))
            let open = report.open
            var counts: [(String, Value)] = []
            for s in Severity.allCases.reversed() { counts.append((s.rawValue, .int(Int64(open.filter { $0.severity == s }.count)))) }
            if ScanJob.exitCode(report, failOn: failOn) != 0, let failOn {
                let over = open.filter { $0.severity >= failOn }
                throw ActionFailure(
                    .permanent,
                    "\(over.count) open finding\(over.count == 1 ? "" : "s") at or above \(failOn.rawValue): \(over.prefix(5).map(\.id).joined(separator: ", "))"
                )
            }
            return ActionResult(
                outputs: .object([
                    ("digest", .string(outcome.inventory.subject?.digest.description ?? report.subject.digest ?? "")),
                    ("findings", .int(Int64(report.findings.count))), ("open", .int(Int64(open.count))), ("counts", .object(counts)),
                    ("vulnerabilities", report.policyVulnerabilities),
                ]),
                artifacts: [OutputArtifact(name: "scan.json", path: json), OutputArtifact(name: "scan.sarif", path: sarif)])
        } catch { throw classify(error) }
    }
}
