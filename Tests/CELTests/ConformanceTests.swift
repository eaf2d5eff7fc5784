import CEL
import Foundation
import Testing

/// A text-format protobuf node: a scalar token, a string (bytes), or a message (ordered fields).
indirect enum TextProto {
    case scalar(String)
    case string([UInt8])
    case message([(String, TextProto)])

    subscript(_ name: String) -> TextProto? {
        guard case .message(let fields) = self else { return nil }
        return fields.first { $0.0 == name }?.1
    }

    func all(_ name: String) -> [TextProto] {
        guard case .message(let fields) = self else { return [] }
        return fields.filter { $0.0 == name }.map(\.1)
    }

    var text: String? {
        switch self {
        case .string(let b): String(decoding: b, as: UTF8.self)
        case .scalar(let s): s
        default: nil
        }
    }

    /// Parses text format (comments, nested messages with or without ':', adjacent strings concatenated).
    static func parse(_ text: String) -> TextProto {
        var p = TextProtoParser(s: Array(text.unicodeScalars))
        return .message(p.fields(until: nil))
    }
}

struct TextProtoParser {
    let s: [Unicode.Scalar]
    var i = 0

    mutating func skip() {
        while i < s.count {
            if s[i] == "#" {
                while i < s.count, s[i] != "\n" { i += 1 }
            } else if s[i] == " " || s[i] == "\n" || s[i] == "\t" || s[i] == "\r" || s[i] == "," || s[i] == ";" {
                i += 1
            } else {
                return
            }
        }
    }

    mutating func word() -> String {
        var w = ""
        while i < s.count, s[i].properties.isAlphabetic || ("0"..."9").contains(s[i]) || "_.-+[]/".unicodeScalars.contains(s[i]) {
            w.unicodeScalars.append(s[i])
            i += 1
        }
        return w
    }

    mutating func fields(until close: Unicode.Scalar?) -> [(String, TextProto)] {
        var out: [(String, TextProto)] = []
        while true {
            skip()
            guard i < s.count else { return out }
            if let close, s[i] == close {
                i += 1
                return out
            }
            let name = word()
            if name.isEmpty {
                i += 1
                continue
            }
            skip()
            if i < s.count, s[i] == ":" {
                i += 1
                skip()
            }
            guard i < s.count else { return out }
            if s[i] == "{" || s[i] == "<" {
                let closing: Unicode.Scalar = s[i] == "{" ? "}" : ">"
                i += 1
                out.append((name, .message(fields(until: closing))))
            } else if s[i] == "\"" || s[i] == "'" {
                var bytes: [UInt8] = []
                while i < s.count, s[i] == "\"" || s[i] == "'" {
                    bytes += string()
                    skip()
                }
                out.append((name, .string(bytes)))
            } else {
                out.append((name, .scalar(word())))
            }
        }
    }

    mutating func string() -> [UInt8] {
        let q = s[i]
        i += 1
        var bytes: [UInt8] = []
        while i < s.count, s[i] != q {
            if s[i] == "\\" {
                i += 1
                let e = s[i]
                i += 1
                switch e {
                case "n": bytes.append(10)
                case "t": bytes.append(9)
                case "r": bytes.append(13)
                case "a": bytes.append(7)
                case "b": bytes.append(8)
                case "f": bytes.append(12)
                case "v": bytes.append(11)
                case "x":
                    var v = 0
                    var n = 0
                    while n < 2, i < s.count, let d = Int(String(s[i]), radix: 16) {
                        v = v * 16 + d
                        i += 1
                        n += 1
                    }
                    bytes.append(UInt8(v))
                case "0"..."7":
                    var v = Int(e.value - 48)
                    var n = 1
                    while n < 3, i < s.count, ("0"..."7").contains(s[i]) {
                        v = v * 8 + Int(s[i].value - 48)
                        i += 1
                        n += 1
                    }
                    bytes.append(UInt8(v & 0xFF))
                case "u", "U":
                    var v: UInt32 = 0
                    for _ in 0..<(e == "u" ? 4 : 8) {
                        v = v * 16 + UInt32(Int(String(s[i]), radix: 16) ?? 0)
                        i += 1
                    }
                    bytes += Array(String(Unicode.Scalar(v) ?? "?").utf8)
                default: bytes += Array(String(e).utf8)
                }
            } else {
                bytes += Array(String(s[i]).utf8)
                i += 1
            }
        }
        i += 1
        return bytes
    }
}

/// The CEL conformance data (cel-spec's `tests/simple/testdata`, Apache-2.0): the copy committed in
/// `Tests/Conformance/cel-spec` (pinned, see its README), or a cel-spec checkout `WARDEN_CEL_SPEC` names. Without it
/// the conformance tests are skipped on a developer's machine, and fail in CI (where the environment variable `CI`
/// is set), which must not pass them by not running them.
enum ConformanceData {
    /// The package root: the nearest directory above this file that holds `Package.swift`.
    static let packageRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    /// A cel-spec checkout: `WARDEN_CEL_SPEC` when set, else the committed copy `Tests/Conformance/cel-spec`.
    static let checkout: URL =
        ProcessInfo.processInfo.environment["WARDEN_CEL_SPEC"].map { URL(fileURLWithPath: $0) }
        ?? packageRoot.appendingPathComponent("Tests/Conformance/cel-spec")

    static let directory = checkout.appendingPathComponent("testdata").standardizedFileURL

    static var available: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Set (to anything) by CI systems.
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    /// The tests run when the data is there, and in CI, where its absence is a failure.
    static var runs: Bool { available || inCI }

    static let skipped: Comment =
        "the CEL conformance data (Tests/Conformance/cel-spec or WARDEN_CEL_SPEC) is missing (set CI to make that a failure)"

    /// Records an issue (and stops the test) when the data is missing.
    static func require(sourceLocation: SourceLocation = #_sourceLocation) throws {
        try #require(
            available,
            "the CEL conformance data is missing: restore Tests/Conformance/cel-spec (or point WARDEN_CEL_SPEC at a cel-spec clone); \(directory.path) does not exist",
            sourceLocation: sourceLocation
        )
    }
}

/// Runs the conformance subset (Tests/Conformance/cel-spec) and reports per-file counts.
@Suite struct ConformanceTests {
    struct Unsupported: Error {}

    static func value(_ node: TextProto) throws -> Value {
        guard case .message(let fields) = node, let (kind, v) = fields.first else { throw Unsupported() }
        switch kind {
        case "null_value": return .null
        case "bool_value": return .bool(v.text == "true")
        case "int64_value": return .int(Int64(v.text ?? "") ?? 0)
        case "uint64_value": return .uint(UInt64(v.text ?? "") ?? 0)
        case "double_value":
            let t = (v.text ?? "").lowercased()
            if t == "nan" { return .double(.nan) }
            if t == "inf" || t == "infinity" { return .double(.infinity) }
            if t == "-inf" || t == "-infinity" { return .double(-.infinity) }
            return .double(Double(t) ?? 0)
        case "string_value": return .string(v.text ?? "")
        case "bytes_value":
            if case .string(let b) = v { return .bytes(b) }
            return .bytes([])
        case "list_value": return .list(try v.all("values").map(value))
        case "map_value":
            return .map(
                try v.all("entries").map { e in
                    guard let k = e["key"], let val = e["value"] else { throw Unsupported() }
                    return (try value(k), try value(val))
                })
        case "type_value": return .type(v.text ?? "")
        default: throw Unsupported()
        }
    }

    /// Same kind and value (1 and 1u differ here; NaN equals NaN).
    static func identical(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x == y
        case (.uint(let x), .uint(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.list(let x), .list(let y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
        case (.map(let x), .map(let y)):
            return x.count == y.count && x.allSatisfy { e in y.contains { identical($0.key, e.key) && identical($0.value, e.value) } }
        case (.int, _), (.uint, _), (.double, _), (.list, _), (.map, _): return false
        default: return a.celEquals(b)
        }
    }

    @Test(.enabled(if: ConformanceData.runs, ConformanceData.skipped))
    func subsetEvaluates() throws {
        try ConformanceData.require()
        let dir = ConformanceParseTests.directory
        var summary: [String] = []
        var failures: [String] = []
        var totalPass = 0
        var totalRun = 0
        for file in ConformanceParseTests.files {
            let root = TextProto.parse(try String(contentsOf: dir.appendingPathComponent(file + ".textproto"), encoding: .utf8))
            var pass = 0
            var run = 0
            var skipped = 0
            for section in root.all("section") {
                for test in section.all("test") {
                    let name = "\(file)/\(section["name"]?.text ?? "")/\(test["name"]?.text ?? "")"
                    guard let expr = test["expr"]?.text else { continue }
                    // Protobuf messages, containers and typed environments are outside the JSON-relevant subset.
                    if test["container"]?.text?.contains("conformance") == true || test["disable_macros"] != nil
                        || expr.contains("{") && expr.range(of: "[A-Z][A-Za-z.]*\\{", options: .regularExpression) != nil
                        || expr.contains("google.protobuf") || expr.contains("proto2") || expr.contains("proto3") || expr.contains("TestAllTypes")
                    {
                        skipped += 1
                        continue
                    }
                    var bindings: [String: Value] = [:]
                    var expected: Value? = .bool(true)
                    do {
                        for b in test.all("bindings") {
                            guard let key = b["key"]?.text, let v = b["value"]?["value"] else { throw Unsupported() }
                            bindings[key] = try Self.value(v)
                        }
                        if let v = test["value"] { expected = try Self.value(v) }
                        if test["eval_error"] != nil { expected = nil }
                        if test["typed_result"] != nil || test["any_eval_errors"] != nil || test["unknown"] != nil { throw Unsupported() }
                    } catch {
                        skipped += 1
                        continue
                    }
                    run += 1
                    do {
                        let result = try Program(expr).evaluate(
                            bindings, container: test["container"]?.text ?? "", timeZones: foundationTimeZones)
                        if let expected, Self.identical(result, expected) {
                            pass += 1
                        } else {
                            failures.append("\(name): \(expr) = \(result), expected \(expected.map(\.description) ?? "an error")")
                        }
                    } catch {
                        if expected == nil {
                            pass += 1
                        } else {
                            failures.append("\(name): \(expr) raised \(error), expected \(expected!)")
                        }
                    }
                }
            }
            totalPass += pass
            totalRun += run
            summary.append("\(file) \(pass)/\(run)" + (skipped > 0 ? " (\(skipped) proto tests skipped)" : ""))
        }
        print("CEL conformance: \(totalPass)/\(totalRun) passed; " + summary.joined(separator: ", "))
        for f in failures.prefix(400) { print("  FAIL \(f)") }
        #expect(failures.isEmpty, "unexpected failures: \(failures)")
        #expect(totalRun >= 1091)
    }
}

/// IANA zones from Foundation's database, as the CLI provides them.
let foundationTimeZones: TimeZoneResolver = { name, seconds in
    TimeZone(identifier: name).map { Int64($0.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))) }
}
