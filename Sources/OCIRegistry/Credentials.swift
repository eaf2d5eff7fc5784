import Foundation
import OCI

/// Credentials for one registry.
public struct Credentials: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String
    /// An OAuth2 refresh token (docker's `identitytoken`), used instead of the password for token requests.
    public var identityToken: String?

    public init(username: String, password: String, identityToken: String? = nil) {
        self.username = username
        self.password = password
        self.identityToken = identityToken
    }

    /// Parses `USER:PASSWORD` (as in skopeo's `--creds`).
    public init(parsing pair: String) throws {
        guard let colon = pair.firstIndex(of: ":"), colon != pair.startIndex else {
            throw OCIError(.invalidArgument, "credentials must be USERNAME:PASSWORD")
        }
        self.init(username: String(pair[..<colon]), password: String(pair[pair.index(after: colon)...]))
    }

    /// Never prints the secret.
    public var description: String { "\(username):***" }
}

/// Where credentials come from, in order: explicit per-host credentials (flags), environment, docker/containers
/// auth files (`auths`, `credHelpers`, `credsStore` via `docker-credential-*` executables).
public struct CredentialResolver: Sendable {
    public var explicit: [String: Credentials]
    public var configFiles: [String]
    public var environment: [String: String]

    public init(
        explicit: [String: Credentials] = [:], configFiles: [String]? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.explicit = explicit
        self.environment = environment
        self.configFiles = configFiles ?? CredentialResolver.defaultConfigFiles(environment)
    }

    /// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    public static func defaultConfigFiles(_ env: [String: String]) -> [String] {
        var files: [String] = []
        if let f = env["REGISTRY_AUTH_FILE"] { files.append(f) }
        if let x = env["XDG_RUNTIME_DIR"] { files.append("\(x)/containers/auth.json") }
        if let d = env["DOCKER_CONFIG"] {
            files.append("\(d)/config.json")
        } else if let home = env["HOME"] {
            files.append("\(home)/.docker/config.json")
        }
        return files
    }

    /// Credentials for `host` (as written in references, e.g. `localhost:5000` or `docker.io`), or nil.
    public func credentials(for host: String) throws -> Credentials? {
        if let c = explicit[host] { return c }
        for file in configFiles where FileManager.default.fileExists(atPath: file) {
            if let c = try credentials(for: host, configFile: file) { return c }
        }
        return nil
    }

    struct ConfigFile: Decodable {
        struct Auth: Decodable {
            var auth: String?
            var username: String?
            var password: String?
            var identitytoken: String?
        }
        var auths: [String: Auth]?
        var credHelpers: [String: String]?
        var credsStore: String?
    }

    func credentials(for host: String, configFile: String) throws -> Credentials? {
        let config: ConfigFile
        do {
            config = try JSONDecoder().decode(ConfigFile.self, from: Data(contentsOf: URL(fileURLWithPath: configFile)))
        } catch {
            throw OCIError(.invalidArgument, "cannot read credentials file \(configFile): \(describe(error))")
        }
        let keys = CredentialResolver.configKeys(for: host)
        if let helpers = config.credHelpers {
            for key in keys { if let helper = helpers[key] { return try CredentialHelper(name: helper).get(serverURL: key) } }
        }
        if let auths = config.auths {
            for (key, auth) in auths where keys.contains(CredentialResolver.normaliseKey(key)) {
                if let encoded = auth.auth, !encoded.isEmpty {
                    guard let data = Data(base64Encoded: encoded), let s = String(data: data, encoding: .utf8), let colon = s.firstIndex(of: ":")
                    else {
                        throw OCIError(.invalidArgument, "credentials file \(configFile): auths[\"\(key)\"].auth is not base64 of USER:PASSWORD")
                    }
                    return Credentials(
                        username: String(s[..<colon]), password: String(s[s.index(after: colon)...]), identityToken: auth.identitytoken)
                }
                if let u = auth.username, let p = auth.password { return Credentials(username: u, password: p) }
                if let t = auth.identitytoken { return Credentials(username: "<token>", password: "", identityToken: t) }
            }
        }
        if let store = config.credsStore, !store.isEmpty {
            for key in keys { if let c = try CredentialHelper(name: store).get(serverURL: key) { return c } }
        }
        return nil
    }

    /// The keys a host may be stored under; Docker Hub has historical aliases.
    static func configKeys(for host: String) -> [String] {
        if host == Reference.dockerHub || host == "index.docker.io" || host == "registry-1.docker.io" {
            return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
        }
        return [host]
    }

    static func normaliseKey(_ key: String) -> String {
        if key == "https://index.docker.io/v1/" { return key }
        var k = key
        for prefix in ["https://", "http://"] where k.hasPrefix(prefix) { k = String(k.dropFirst(prefix.count)) }
        if let slash = k.firstIndex(of: "/") { k = String(k[..<slash]) }
        return k
    }
}

/// A docker credential helper executable (`docker-credential-NAME get`).
public struct CredentialHelper: Sendable {
    public let name: String

    public func get(serverURL: String) throws -> Credentials? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["docker-credential-\(name)", "get"]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw OCIError(.unauthorized, "cannot run credential helper docker-credential-\(name): \(error)")
        }
        input.fileHandleForWriting.write(Data(serverURL.utf8))
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: out + err, as: UTF8.self)
        if process.terminationStatus != 0 {
            if text.contains("credentials not found") { return nil }
            throw OCIError(
                .unauthorized,
                "credential helper docker-credential-\(name) failed for \(serverURL) (exit \(process.terminationStatus)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        struct Reply: Decodable {
            var Username: String
            var Secret: String
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: out) else {
            throw OCIError(.unauthorized, "credential helper docker-credential-\(name) returned no Username/Secret JSON for \(serverURL)")
        }
        if reply.Username == "<token>" {
            return Credentials(username: reply.Username, password: "", identityToken: reply.Secret)
        }
        return Credentials(username: reply.Username, password: reply.Secret)
    }
}
