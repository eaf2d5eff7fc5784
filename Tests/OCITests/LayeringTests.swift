import Foundation
import OCITesting
import Testing

/// The modules' dependencies, checked against an exact allow-list per module (docs/architecture.md), in both places
/// they can be declared: the package graph (`swift package dump-package`) and every import in the sources, in any
/// form (`import M`, `@preconcurrency import M`, `@_spi(S) import M`, `public import M`, `import struct M.T`).
enum DependencyCheck {
    /// What each module may depend on among the project's modules: nothing else, and only modules of a lower layer.
    static let allowed: [String: Set<String>] = [
        // Foundation
        "CEL": [], "SystemZlib": [], "CProcess": [], "Storage": [],
        "Documents": ["CEL"],
        "OCI": ["Documents"],
        "OCIRegistry": ["Documents", "OCI"],
        "SampleContent": ["OCI"],
        "OCITesting": ["OCI", "SampleContent"],
        // Domain
        "Trust": ["CEL", "Documents", "OCI"],
        "Policy": ["CEL", "Documents", "OCI", "Trust"],
        "Vulnerability": ["CEL", "Documents", "Inventory", "Storage"],
        "Inventory": ["CEL", "SystemZlib", "OCI"],
        "Triggers": ["CEL", "Documents"],
        "Findings": ["Documents"],
        // Engines
        "Replicate": ["Documents", "OCI", "OCIRegistry", "Storage", "Trust"],
        "Workflow": ["CEL", "CProcess", "Documents", "Storage"],
        // Application layer
        "WardenApp": [
            "CEL", "Documents", "Findings", "Inventory", "OCI", "OCIRegistry", "Policy", "Replicate", "Storage", "Trust", "Triggers", "Vulnerability",
            "Workflow",
        ],
        // Surfaces
        "WardenActions": [
            "CEL", "Documents", "Findings", "Inventory", "OCI", "OCIRegistry", "Policy", "Replicate", "Storage", "Trust", "Vulnerability",
            "WardenApp", "Workflow",
        ],
        "CommandSupport": ["Documents", "OCI", "OCIRegistry", "WardenApp"],
        "WardenServer": ["CEL", "Documents", "Findings", "Storage", "Triggers", "WardenApp", "Workflow"],
        // The shipped binary links no test tools (OCITesting): those are `warden-dev`'s.
        "WardenCLI": [
            "CEL", "CommandSupport", "Documents", "Findings", "Inventory", "OCI", "OCIRegistry", "Policy", "Replicate", "SampleContent", "Storage",
            "Trust", "Vulnerability", "WardenActions", "WardenApp", "WardenServer", "Workflow",
        ],
        "WardenDev": [
            "CEL", "CommandSupport", "Documents", "Findings", "OCI", "OCIRegistry", "OCITesting", "Policy", "SampleContent", "Storage", "WardenApp",
            "Workflow",
        ],
        "WardenFuzz": ["CEL", "Documents", "Inventory", "OCI", "Policy", "Replicate", "Trust", "Vulnerability", "Workflow"],
    ]

    /// Layers, lowest first: an allowed dependency must sit in a lower layer.
    static let layers: [[String]] = [
        ["CEL", "SystemZlib", "CProcess", "Storage"], ["Documents"], ["OCI"], ["OCIRegistry", "SampleContent"], ["OCITesting", "Trust", "Inventory"],
        ["Policy", "Vulnerability", "Triggers", "Findings"], ["Replicate", "Workflow"], ["WardenApp"],
        ["WardenActions", "CommandSupport", "WardenServer"], ["WardenCLI", "WardenDev", "WardenFuzz"],
    ]

    /// The modules a Swift file imports, whatever the import's attributes, access level or kind.
    static func imports(in text: String) -> [String] {
        let pattern =
            #/^\s*(?:@[A-Za-z_]+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|typealias|func|var|let|actor)\s+)?([A-Za-z_][A-Za-z0-9_]*)/#
        return text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line in
            line.firstMatch(of: pattern).map { String($0.1) }
        }
    }

    /// Every dependency outside the allow-list, and every module or allow-list entry that breaks the layering.
    /// `graph`: each non-test target's project-module dependencies, as the package declares them.
    static func violations(sources: URL, graph: [String: [String]], allowed: [String: Set<String>], layers: [[String]]) throws -> [String] {
        var found: [String] = []
        let layerOf = Dictionary(uniqueKeysWithValues: layers.enumerated().flatMap { i, ms in ms.map { ($0, i) } })
        for (module, deps) in allowed.sorted(by: { $0.key < $1.key }) {
            guard let l = layerOf[module] else {
                found.append("\(module) has no layer")
                continue
            }
            for d in deps.sorted() where (layerOf[d] ?? Int.max) >= l { found.append("\(module) may import \(d), which is not in a lower layer") }
        }
        let modules = Set(graph.keys)
        for (module, deps) in graph.sorted(by: { $0.key < $1.key }) {
            guard let ok = allowed[module] else {
                found.append("\(module) has no allow-list entry")
                continue
            }
            for d in deps where modules.contains(d) && !ok.contains(d) {
                found.append("Package.swift: \(module) depends on \(d), not in its allow-list")
            }
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { !$0.hasPrefix(".") }.sorted()
        for module in names {
            guard let ok = allowed[module] else {
                found.append("Sources/\(module) has no allow-list entry")
                continue
            }
            let dir = sources.appendingPathComponent(module)
            guard let files = FileManager.default.enumerator(atPath: dir.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                for imported in imports(in: text) where imported != module && (modules.contains(imported) || allowed[imported] != nil) {
                    if !ok.contains(imported) { found.append("\(module)/\(file) imports \(imported), not in its allow-list") }
                }
            }
        }
        return found
    }

    /// The package's non-test targets and their dependencies, from `swift package dump-package` (run with a
    /// scratch path of its own, so it does not wait for the build directory's lock held by `swift test`).
    static func packageGraph(root: URL) async throws -> [String: [String]] {
        let dump = try await runProgram(
            "/usr/bin/env",
            ["swift", "package", "--package-path", root.path, "--scratch-path", NSTemporaryDirectory() + "warden-dump-package", "dump-package"])
        guard dump.status == 0, let json = try JSONSerialization.jsonObject(with: dump.standardOutput) as? [String: Any],
            let targets = json["targets"] as? [[String: Any]]
        else { throw CheckError("swift package dump-package failed (status \(dump.status))") }
        var graph: [String: [String]] = [:]
        for t in targets where (t["type"] as? String) != "test" {
            guard let name = t["name"] as? String else { continue }
            var deps: [String] = []
            for d in t["dependencies"] as? [[String: Any]] ?? [] {
                for key in ["byName", "target"] { if let v = d[key] as? [Any], let n = v.first as? String { deps.append(n) } }
            }
            graph[name] = deps
        }
        return graph
    }

    struct CheckError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}

@Suite struct LayeringTests {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The package itself: its graph and its sources stay within the allow-list.
    @Test func dependenciesStayWithinTheAllowList() async throws {
        let graph = try await DependencyCheck.packageGraph(root: Self.root)
        #expect(graph["WardenCLI"]?.contains("WardenApp") == true, "the package graph was not read: \(graph)")
        let found = try DependencyCheck.violations(
            sources: Self.root.appendingPathComponent("Sources"), graph: graph, allowed: DependencyCheck.allowed, layers: DependencyCheck.layers)
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }

    /// The checker finds an upward or unlisted dependency in every form it can be written.
    @Test func theCheckerFindsEachFormOfAForbiddenDependency() throws {
        let dir = URL(fileURLWithPath: try makeTemporaryDirectory())
        let sources = dir.appendingPathComponent("Sources")
        for m in ["Low", "High", "Loose"] {
            try FileManager.default.createDirectory(at: sources.appendingPathComponent(m), withIntermediateDirectories: true)
        }
        let imports = [
            "import Foundation", "@preconcurrency import High", "@_spi(Internal) import High", "public import High", "import struct High.Thing",
            "@testable import High", "  import Loose",
        ]
        for (i, line) in imports.enumerated() {
            try "\(line)\n".write(to: sources.appendingPathComponent("Low/f\(i).swift"), atomically: true, encoding: .utf8)
        }
        try "import Low\n".write(to: sources.appendingPathComponent("High/h.swift"), atomically: true, encoding: .utf8)
        let allowed: [String: Set<String>] = ["Low": [], "High": ["Low"], "Loose": ["High"]]
        let layers = [["Low"], ["High", "Loose"]]
        let found = try DependencyCheck.violations(
            sources: sources, graph: ["Low": ["High"], "High": ["Low"], "Loose": ["High"], "Unlisted": []], allowed: allowed, layers: layers)
        #expect(found.contains("Package.swift: Low depends on High, not in its allow-list"))
        #expect(found.contains("Unlisted has no allow-list entry"))
        #expect(found.contains("Loose may import High, which is not in a lower layer"))
        for i in 1...5 { #expect(found.contains("Low/f\(i).swift imports High, not in its allow-list"), "\(found)") }
        #expect(found.contains("Low/f6.swift imports Loose, not in its allow-list"))
        #expect(!found.contains { $0.hasPrefix("Low/f0.swift") })
        #expect(!found.contains { $0.hasPrefix("High/") })
    }
}
