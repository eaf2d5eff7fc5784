import Foundation
import Yams

/// A YAML node read strictly: unknown keys, duplicate keys and wrong types are errors that name the file, line
/// and column. Shared by every Warden document format (trust policies, replication files, workflows).
public struct YAMLValue {
    public let node: Node
    public let file: String

    /// Parses `text`; an empty document is an error, and so are anchors and aliases: an alias is expanded
    /// wherever it is used, so a document of a few hundred bytes can stand for billions of nodes.
    public static func parse(_ text: String, file: String) throws -> YAMLValue {
        do {
            // The parser holds the anchors it met (a node's `anchor` is weak): keep it until the check is done.
            let parser = try Yams.Parser(yaml: text)
            guard let node = try parser.singleRoot() else {
                throw YAMLError(position: "\(file):1:1", message: "the document is empty", code: .syntax)
            }
            try withExtendedLifetime(parser) {
                if let anchored = firstAnchored(node) {
                    let where_ = anchored.mark.map { "\(file):\($0.line):\($0.column)" } ?? file
                    throw YAMLError(
                        position: where_,
                        message: "YAML anchors and aliases (&name, *name) are not accepted; write the value out where it is used", code: .syntax)
                }
            }
            return YAMLValue(node: node, file: file)
        } catch let e as YamlError {
            // The parser's message quotes the offending line: a hostile document's line can be megabytes long.
            var message = "\(e)"
            if message.count > 500 { message = String(message.prefix(500)) + "… (message cut at 500 characters)" }
            throw YAMLError(position: file, message: "not valid YAML: " + message, code: .syntax)
        }
    }

    /// The first node, in document order, that carries an anchor. Any alias repeats an anchored node met before it,
    /// so the walk stops before it could follow one.
    static func firstAnchored(_ node: Node) -> Node? {
        switch node {
        case .scalar(let s): return s.anchor == nil ? nil : node
        case .alias: return node
        case .mapping(let m):
            if m.anchor != nil { return node }
            for (k, v) in m {
                if let hit = firstAnchored(k) ?? firstAnchored(v) { return hit }
            }
            return nil
        case .sequence(let q):
            if q.anchor != nil { return node }
            for v in q { if let hit = firstAnchored(v) { return hit } }
            return nil
        }
    }

    public var position: String {
        guard let mark = node.mark else { return file }
        return "\(file):\(mark.line):\(mark.column)"
    }

    public func error(_ message: String) -> YAMLError { YAMLError(position: position, message: message) }

    var kindName: String {
        switch node {
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// The entries of a mapping; any key outside `allowed` is an error (pass nil to accept any key).
    public func mapping(allowed: [String]?) throws -> [(key: String, value: YAMLValue)] {
        guard case .mapping(let m) = node else { throw error("expected a mapping, found \(kindName)") }
        var seen = Set<String>()
        var out: [(key: String, value: YAMLValue)] = []
        for (k, v) in m {
            let key = YAMLValue(node: k, file: file)
            guard let name = k.string else { throw key.error("mapping keys must be strings") }
            if let allowed, !allowed.contains(name) {
                throw key.error("unknown key \"\(name)\"; expected one of: \(allowed.joined(separator: ", "))")
            }
            guard seen.insert(name).inserted else { throw key.error("duplicate key \"\(name)\"") }
            out.append((name, YAMLValue(node: v, file: file)))
        }
        return out
    }

    /// A mapping as a dictionary (after the same checks as `mapping(allowed:)`).
    public func fields(allowed: [String]) throws -> [String: YAMLValue] {
        Dictionary(uniqueKeysWithValues: try mapping(allowed: allowed).map { ($0.key, $0.value) })
    }

    public func string() throws -> String {
        guard case .scalar(let s) = node else { throw error("expected a string, found \(kindName)") }
        return s.string
    }

    public func int() throws -> Int {
        guard case .scalar = node, let i = node.int else { throw error("expected an integer, found \(describeScalar)") }
        return i
    }

    public func bool() throws -> Bool {
        guard case .scalar = node, let b = node.bool else { throw error("expected true or false, found \(describeScalar)") }
        return b
    }

    public func list() throws -> [YAMLValue] {
        guard case .sequence(let s) = node else { throw error("expected a list, found \(kindName)") }
        return s.map { YAMLValue(node: $0, file: file) }
    }

    public func stringList() throws -> [String] { try list().map { try $0.string() } }

    var describeScalar: String {
        if case .scalar(let s) = node { return "\"\(s.string)\"" }
        return kindName
    }
}

/// A document error with its position (`file:line:column`).
public struct YAMLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The error's code: extensible (a new code is a new static member); errors compare equal when their
    /// codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// Not YAML, an empty document, or YAML Warden refuses (anchors and aliases).
        public static let syntax = Code(rawValue: "syntax")
        /// A document that is YAML but breaks its kind's rules (an unknown key, a wrong type, a missing field).
        public static let invalid = Code(rawValue: "invalid")
        /// A CEL condition that does not compile or could not be evaluated.
        public static let condition = Code(rawValue: "condition")
        /// A file that cannot be read, or is not UTF-8.
        public static let unreadable = Code(rawValue: "unreadable")
    }

    public var code: Code
    public var position: String
    public var message: String
    public var description: String { "\(position): \(message)" }

    public init(position: String, message: String, code: Code = .invalid) {
        self.code = code
        self.position = position
        self.message = message
    }

    public static func == (a: YAMLError, b: YAMLError) -> Bool { a.code == b.code }
}

extension YAMLValue {
    /// The document's meaning as one canonical text: a JSON rendering with mapping keys sorted, every scalar written
    /// with the tag YAML resolves it to (so `1` and `"1"` differ), comments, key order, quoting style and layout
    /// dropped. Two documents that say the same have the same canonical form (what a catalogue hashes).
    public var canonicalJSON: String {
        func quote(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        func render(_ node: Node) -> String {
            switch node {
            case .scalar(let s): return quote(node.tag.description + ":" + s.string)
            case .alias: return "null"
            case .sequence(let q): return "[" + q.map(render).joined(separator: ",") + "]"
            case .mapping(let m):
                let pairs = m.map { (render($0.key), render($0.value)) }.sorted { $0.0 < $1.0 }
                return "{" + pairs.map { "\($0.0):\($0.1)" }.joined(separator: ",") + "}"
            }
        }
        return render(node)
    }
}
