import ArgumentParser
import AsyncHTTPClient
import Documents
import Foundation
import NIOCore
import NIOFoundationCompat
import WardenApp

/// Where the CLI's client commands send their requests: `--server URL` or `WARDEN_SERVER`; the token from
/// `WARDEN_TOKEN`, else the credentials file `warden login` wrote for that server.
public struct ServerOptions: ParsableArguments {
    @Option(name: .long, help: "A control plane (warden serve) to ask instead of the local state directory; default $WARDEN_SERVER.")
    public var server: String?
    @Option(name: .long, help: "The server's workspace.") public var workspace = "default"
    public init() {}

    /// The server URL, when one is set.
    public var url: String? {
        let u = server ?? ProcessInfo.processInfo.environment["WARDEN_SERVER"]
        return u.flatMap { $0.isEmpty ? nil : ($0.hasSuffix("/") ? String($0.dropLast()) : $0) }
    }
}

/// The credentials `warden login` keeps: one token per server, in a private file.
public enum ServerCredentials {
    public static var file: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CONFIG_HOME"] ?? ((env["HOME"] ?? NSTemporaryDirectory()) + "/.config")
        return base + "/warden/credentials.json"
    }

    public static func all() -> [String: String] {
        guard let data = FileManager.default.contents(atPath: file),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: String]
        else { return [:] }
        return object
    }

    public static func save(server: String, token: String) throws {
        var all = all()
        all[server] = token
        try PrivateFiles.createDirectory((file as NSString).deletingLastPathComponent)
        try PrivateFiles.writeAtomically(try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]), to: file, mode: 0o600)
    }

    /// `WARDEN_TOKEN`, else the saved token of `server`.
    public static func token(for server: String) -> String? {
        if let t = ProcessInfo.processInfo.environment["WARDEN_TOKEN"], !t.isEmpty { return t }
        return all()[server]
    }
}

/// A small client of the control plane's API for the CLI: JSON in, the application layer's views out, problem
/// documents turned into the documented exit codes (401/403 → 4, 404 → 3, other → 1).
public struct ServerClient {
    public let base: String
    let token: String?

    public init(base: String) {
        self.base = base
        token = ServerCredentials.token(for: base)
    }

    public func get<T: Decodable>(_ path: String, as: T.Type) async throws -> T { try decode(try await send("GET", path, body: nil)) }

    public func post<T: Decodable>(_ path: String, json: String, headers: [(String, String)] = [], as: T.Type) async throws -> T {
        try decode(try await send("POST", path, body: Data(json.utf8), headers: headers))
    }

    /// `text` as one query parameter value.
    public static func query(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// Raw bytes of an answer (2xx), or the failure the problem document describes.
    public func send(
        _ method: String, _ path: String, body: Data?, contentType: String = "application/json", headers: [(String, String)] = []
    ) async throws -> Data {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response: HTTPClientResponse
        let data: Data
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        } catch {
            printError("error: \(base): \(error)")
            throw ExitCode(1)
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            let detail = object?["detail"] as? String ?? String(decoding: data.prefix(500), as: UTF8.self)
            let code = object?["code"] as? String ?? "http-\(status)"
            printError("error: \(detail) (\(status) \(code))")
            if status == 401 && token == nil { printError("hint: set WARDEN_TOKEN or run warden login \(base)") }
            throw ExitCode(status == 401 || status == 403 ? 4 : status == 404 ? 3 : 1)
        }
        return data
    }

    public func decode<T: Decodable>(_ data: Data, as: T.Type) throws -> T { try decode(data) }

    func decode<T: Decodable>(_ data: Data) throws -> T {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RFC3339.date(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time: \(text)"))
            }
            return date
        }
        do { return try d.decode(T.self, from: data) } catch {
            printError("error: \(base) answered something this warden does not read: \(error)")
            throw ExitCode(1)
        }
    }
}

/// A page of a run's journal as the API answers it.
public struct JournalPageView: Decodable {
    public var entries: [JournalView]
    public var next: Int64?
}

/// A published catalogue entry as the API answers it (what the client commands read of it).
public struct CatalogEntryView: Decodable {
    public var kind, name, digest: String
    public var version: Int
}

/// A page of runs as the API answers it.
public struct RunPageView: Decodable {
    public var runs: [RunView]
    public var next: String?
}
