import CEL
import Documents
import Foundation
import Inventory
import OCI
import Policy
import Replicate
import Trust
import Vulnerability
import Workflow

/// The vulnerability domain's readers: OSV records (JSON, YAML), VEX documents, ignore rules, CVSS vectors, and the
/// version orders (two versions separated by a NUL: every order must answer, antisymmetrically).
let vulnerabilityTargets: [String: @Sendable ([UInt8]) -> Void] = [
    "osv": { bytes in _ = try? Advisory.read(bytes, name: "fuzz.json") },
    "osv-yaml": { bytes in _ = try? Advisory.read(bytes, name: "fuzz.yaml") },
    "vex": { bytes in _ = try? VEXDocument.read(bytes, name: "fuzz.json") },
    "ignore": { bytes in _ = try? IgnoreRules.read(bytes, file: "fuzz.yaml") },
    "cvss": { bytes in _ = try? CVSS(vector: String(decoding: bytes, as: UTF8.self)) },
    "versions": { bytes in
        let parts = bytes.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let a = String(decoding: parts[0], as: UTF8.self)
        let b = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : ""
        for scheme in VersionScheme.allCases where scheme.compare(a, b).signum() != -scheme.compare(b, a).signum() {
            fatalError("\(scheme) order is not antisymmetric for \(a.debugDescription) and \(b.debugDescription)")
        }
    },
]

/// One fuzzing harness for every parser of untrusted input; `WARDEN_FUZZ_TARGET` picks the parser. Built by
/// `scripts/fuzz.sh` with libFuzzer and AddressSanitizer; an ordinary build only prints how to use it.
let targets: [String: @Sendable ([UInt8]) -> Void] = InventoryFuzzing.targets.merging(
    [
        "cel": { bytes in
            guard let program = try? Program(String(decoding: bytes, as: UTF8.self)) else { return }
            _ = try? program.evaluate(
                ["x": .int(1), "s": .string("abc"), "l": .list([.int(1), .int(2)])], costLimit: 10_000, timeLimit: .seconds(1))
        },
        "json": { bytes in _ = try? Value.parseJSON(bytes) },
        "yaml": { bytes in _ = try? YAMLValue.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") },
        "manifest": { bytes in
            guard let raw = try? RawManifest(bytes: Data(bytes), mediaType: nil) else { return }
            _ = try? raw.parsed()
            _ = try? raw.children()
        },
        "reference": { bytes in _ = try? Reference(parsing: String(decoding: bytes, as: UTF8.self)) },
        "dsse": { bytes in _ = try? DSSEEnvelope(json: Data(bytes), source: "fuzz") },
        "intoto": { bytes in _ = try? InTotoStatement(json: Data(bytes), source: "fuzz") },
        "bundle": { bytes in _ = try? SigstoreBundle(json: Data(bytes), source: "fuzz") },
        "pem": { bytes in _ = try? PEMBlock(parsing: String(decoding: bytes, as: UTF8.self), source: "fuzz") },
        "trustpolicy": { bytes in _ = try? TrustPolicy.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml", baseDirectory: "/nonexistent")
        },
        "replication": { bytes in
            _ = try? ReplicationFile.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml", baseDirectory: "/nonexistent")
        },
        "policy": { bytes in _ = try? PolicyDocument.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") },
        "workflow": { bytes in _ = try? WorkflowDefinition.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") },
        "template": { bytes in _ = try? WorkflowTemplate.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") },
    ], uniquingKeysWith: { a, _ in a }
).merging(vulnerabilityTargets, uniquingKeysWith: { a, _ in a })

let name = ProcessInfo.processInfo.environment["WARDEN_FUZZ_TARGET"] ?? ""
guard let target = targets[name] else {
    FileHandle.standardError.write(
        Data("set WARDEN_FUZZ_TARGET to one of: \(targets.keys.sorted().joined(separator: " "))\n".utf8))
    exit(64)
}

#if WARDEN_FUZZ
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    nonisolated(unsafe) var selected: (@Sendable ([UInt8]) -> Void)? = target
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(
        LLVMFuzzerRunDriver(&argc, &argv) { data, count in
            selected?(count == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: count)))
            return 0
        })
#else
    // Without libFuzzer: run the target once over each file named on the command line (a corpus replay).
    for path in CommandLine.arguments.dropFirst() {
        guard let data = FileManager.default.contents(atPath: path) else { continue }
        target([UInt8](data))
    }
    print("\(name): \(CommandLine.arguments.count - 1) inputs replayed; build with scripts/fuzz.sh to fuzz")
#endif
