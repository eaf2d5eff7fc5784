import Foundation
import Testing
import WardenApp

@testable import WardenServer

/// The OpenAPI document against the router: the served text is the committed `docs/openapi.json`, every route of
/// `Routes.declare` is an operation and every operation a route, and each operation names the permission its route
/// declares.
@Suite struct OpenAPITests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    /// `docs/openapi.json`, parsed.
    static func committed() throws -> [String: Any] {
        let data = try Data(contentsOf: packageRoot.appendingPathComponent("docs/openapi.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The document the server serves, parsed.
    static func served() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
    }

    /// JSON text with sorted keys: equal for equal documents, whatever their layout.
    static func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Every operation: "METHOD /path" to the operation object.
    static func operations(_ document: [String: Any]) throws -> [String: [String: Any]] {
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var out: [String: [String: Any]] = [:]
        for (path, item) in paths {
            for (method, value) in item where methods.contains(method) {
                out["\(method.uppercased()) \(path)"] = try #require(value as? [String: Any], "\(method) \(path)")
            }
        }
        return out
    }

    static func permission(_ access: RouteAccess) -> String {
        switch access {
        case .anyone: "anyone"
        case .authenticated: "authenticated"
        case .permission(let p): p.rawValue
        }
    }

    @Test func servedDocumentIsTheCommittedOne() throws {
        let served = try Self.served()
        #expect(
            try Self.canonical(served) == Self.canonical(try Self.committed()),
            "Sources/WardenServer/OpenAPIDocument.swift is not docs/openapi.json: run scripts/openapi-embed.sh")
        #expect(served["openapi"] as? String == "3.1.0")
    }

    @Test func everyRouteIsAnOperationAndEveryOperationARoute() throws {
        let documented = Set(try Self.operations(try Self.committed()).keys)
        let routed = Routes.table.map { "\($0.method) \($0.path)" }
        #expect(Set(routed).count == routed.count, "a route is declared twice")
        let undocumented = Set(routed).subtracting(documented).sorted()
        let unrouted = documented.subtracting(routed).sorted()
        #expect(undocumented.isEmpty, "routes missing from docs/openapi.json: \(undocumented)")
        #expect(unrouted.isEmpty, "operations of docs/openapi.json no route serves: \(unrouted)")
    }

    @Test func everyOperationNamesItsRoutesPermission() throws {
        let document = try Self.committed()
        let operations = try Self.operations(document)
        let schemes = (document["components"] as? [String: Any])?["securitySchemes"] as? [String: Any]
        let bearer = try #require(schemes?["bearer"] as? [String: Any])
        #expect(bearer["type"] as? String == "http")
        #expect(bearer["scheme"] as? String == "bearer")
        for route in Routes.table {
            let name = "\(route.method) \(route.path)"
            guard let operation = operations[name] else { continue }
            #expect(operation["x-warden-permission"] as? String == Self.permission(route.access), "\(name)")
            let security = try #require(operation["security"] as? [[String: [String]]], "\(name) has no security")
            if route.access == .anyone {
                #expect(security.isEmpty, "\(name) is public")
            } else {
                #expect(security == [["bearer": []]], "\(name) needs the bearer token")
            }
        }
        // Health, readiness, metrics, the document, and the webhook receivers (which check their own secret or signature).
        #expect(Routes.table.filter { $0.access == .anyone }.count == 5)
    }

    /// The errors every route can give are documented where it can give them.
    @Test func operationsDocumentTheProblemsTheirRouteCanGive() throws {
        let document = try Self.committed()
        let operations = try Self.operations(document)
        let responses = try #require((document["components"] as? [String: Any])?["responses"] as? [String: [String: Any]])
        for (name, response) in responses {
            let content = response["content"] as? [String: Any]
            #expect(content?.keys.sorted() == ["application/problem+json"], "\(name) is a problem document")
        }
        for route in Routes.table {
            let name = "\(route.method) \(route.path)"
            guard let operation = operations[name] else { continue }
            let statuses = Set((operation["responses"] as? [String: Any] ?? [:]).keys)
            let parameters = (operation["parameters"] as? [[String: Any]] ?? []).compactMap { $0["$ref"] as? String }
            var expected: Set<String> = []
            if route.access != .anyone { expected.insert("401") }
            if case .permission(let p) = route.access {
                expected.insert("403")
                if p.scope == .workspace { expected.formUnion(["400", "404"]) }
            }
            let write = route.method != "GET"
            if write {
                expected.formUnion(["400", "409", "413", "422", "429"])
                #expect(parameters.contains("#/components/parameters/idempotencyKey"), "\(name) takes an Idempotency-Key")
            }
            #expect(expected.isSubset(of: statuses), "\(name) documents \(statuses.sorted()), not \(expected.subtracting(statuses).sorted())")
            if route.path.contains("{") { #expect(statuses.contains("404"), "\(name) has a path parameter: 404") }
        }
    }
}
