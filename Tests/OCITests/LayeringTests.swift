import Foundation
import Testing

/// Dependencies point downward only (docs/architecture.md): a module never imports one of a higher layer.
@Suite struct LayeringTests {
    /// Layer of each project module: 0 foundation, 1 persistence, 2 domain, 3 engines, 4 surfaces. Test tools sit
    /// beside the foundation and may be used only by surfaces and tests.
    static let layers: [String: Int] = [
        "OCI": 0, "OCIRegistry": 0, "OCITesting": 0, "Storage": 1, "CZlib": 0, "CEL": 2, "Trust": 2, "Policy": 2, "Inventory": 2, "Replicate": 3,
        "Workflow": 3,
        "WardenCLI": 4, "WardenFuzz": 4,
    ]
    static let testTools: Set<String> = ["OCITesting"]

    static var sources: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
    }

    @Test func everyModuleHasALayer() throws {
        let modules = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).filter { !$0.hasPrefix(".") }
        for m in modules { #expect(Self.layers[m] != nil, "module \(m) has no layer in LayeringTests.layers") }
    }

    @Test func importsPointDownward() throws {
        var violations: [String] = []
        for (module, layer) in Self.layers {
            let dir = Self.sources.appendingPathComponent(module)
            guard let files = FileManager.default.enumerator(atPath: dir.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    let imported = String(line.split(separator: " ").last ?? "")
                    guard let importedLayer = Self.layers[imported], imported != module else { continue }
                    if importedLayer > layer { violations.append("\(module)/\(file) imports \(imported) (a higher layer)") }
                    if Self.testTools.contains(imported), layer < 4 {
                        violations.append("\(module)/\(file) imports the test tools \(imported)")
                    }
                    if layer == 0, imported == "OCIRegistry", module == "OCI" {
                        violations.append("OCI/\(file) imports OCIRegistry: the model and stores must not depend on HTTP")
                    }
                }
            }
        }
        #expect(violations.isEmpty, "\(violations)")
    }
}
