import CEL
import Documents
import Foundation

/// A CloudEvent (v1.0) from the HTTP binding, in binary mode (attributes in `ce-*` headers, the body is the data),
/// structured mode (`application/cloudevents+json`) or batched mode (`application/cloudevents-batch+json`).
struct CloudEvent {
    var id: String
    var type: String
    var source: String
    var time: String?
    /// The event's data (JSON), nil when it has none.
    var data: JSONNode?
    /// Extension attributes with string values (`operator`, `requestid`, `channel` …).
    var extensions: [String: String]
    /// Where the event's attributes were read: `header ce-` or a JSON path prefix.
    var at: String

    static let structuredType = "application/cloudevents+json"
    static let batchType = "application/cloudevents-batch+json"
    static let attributes: Set<String> = [
        "specversion", "id", "type", "source", "time", "subject", "datacontenttype", "dataschema", "data", "data_base64",
    ]

    /// The delivery's CloudEvents, or nil when it is not one: binary mode is told by `ce-specversion`, the other
    /// modes by their media type or, for a JSON body, by a `specversion` member.
    static func read(_ d: Delivery) throws(ReceiverRejection) -> [CloudEvent]? {
        if d.headers["ce-specversion"] != nil { return [try binary(d)] }
        switch d.headers.mediaType {
        case structuredType?: return [try structured(d.json())]
        case batchType?: return try d.json().list().map { n throws(ReceiverRejection) in try structured(n) }
        case nil, "application/json"?:
            let root = try d.json()
            if case .map = root.value, try root.child("specversion") != nil { return [try structured(root)] }
            return nil
        case let other?:
            throw ReceiverRejection(
                status: 415, code: .contentTypeUnsupported,
                reason: "Content-Type \(Names.quoted(other)) is neither application/json nor a CloudEvents JSON mode")
        }
    }

    static func isJSON(_ type: String) -> Bool { type == "application/json" || type.hasSuffix("+json") || type == "text/json" }

    static func binary(_ d: Delivery) throws(ReceiverRejection) -> CloudEvent {
        func header(_ name: String) throws(ReceiverRejection) -> String {
            guard let v = d.headers[name], !v.isEmpty else { throw .malformed("header \(name): missing (a binary-mode CloudEvent needs it)") }
            return v
        }
        let version = try header("ce-specversion")
        guard version == "1.0" else { throw .unsupported("header ce-specversion: \(Names.quoted(version)); only CloudEvents 1.0 is read") }
        var time: String?
        if let t = d.headers["ce-time"] {
            guard let date = RFC3339.date(t) else { throw .malformed("header ce-time: \(Names.quoted(t)) is not an RFC 3339 time") }
            time = RFC3339.string(date)
        }
        if let type = d.headers.mediaType, !isJSON(type) {
            throw ReceiverRejection(
                status: 415, code: .contentTypeUnsupported, reason: "Content-Type \(Names.quoted(type)): the event's data must be JSON")
        }
        var extensions: [String: String] = [:]
        for f in d.headers.fields {
            let name = f.name.lowercased()
            guard name.hasPrefix("ce-") else { continue }
            let attribute = String(name.dropFirst(3))
            if !attributes.contains(attribute) { extensions[attribute] = f.value }
        }
        let data = d.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) ? nil : try d.json()
        return CloudEvent(
            id: try header("ce-id"), type: try header("ce-type"), source: try header("ce-source"), time: time, data: data, extensions: extensions,
            at: "header ce-")
    }

    static func structured(_ node: JSONNode) throws(ReceiverRejection) -> CloudEvent {
        let e = try node.object()
        let version = try e.requireString("specversion")
        guard version == "1.0" else { throw .unsupported("\(e.at("specversion")): \(Names.quoted(version)); only CloudEvents 1.0 is read") }
        if let type = try e.string("datacontenttype"), !isJSON(type.split(separator: ";").first.map(String.init) ?? type) {
            throw .unsupported("\(e.at("datacontenttype")): \(Names.quoted(type)); the event's data must be JSON")
        }
        var data = try e.child("data")
        if data == nil, let encoded = try e.string("data_base64") {
            guard let bytes = Data(base64Encoded: encoded) else { throw .malformed("\(e.at("data_base64")): not base64") }
            let inner = try JSONNode.parse([UInt8](bytes), what: e.at("data_base64"))
            data = JSONNode(value: inner.value, path: e.at("data"))
        }
        var extensions: [String: String] = [:]
        if case .map(let entries) = e.value {
            for (k, v) in entries {
                if case .string(let name) = k, !attributes.contains(name), case .string(let s) = v { extensions[name] = s }
            }
        }
        return CloudEvent(
            id: try e.requireString("id"), type: try e.requireString("type"), source: try e.requireString("source"), time: try e.time("time"),
            data: data, extensions: extensions, at: e.path.isEmpty ? "" : e.path + ".")
    }

    /// The data, which must be an object.
    func requireData() throws(ReceiverRejection) -> JSONNode {
        guard let data else { throw .malformed("\(at.hasPrefix("header") ? "the body" : at + "data"): missing (the event carries no data)") }
        return try data.object()
    }
}
