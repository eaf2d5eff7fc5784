import Documents
import Foundation
import Triggers
import WardenApp

/// `warden serve`'s settings: flags over the configuration file (`--config`, strict YAML: an unknown key or a wrong
/// type is an error naming file:line:col) over the defaults.
///
/// ```yaml
/// listen: 127.0.0.1:8080
/// tls: { certificate: server.crt, key: server.key, http2: true }
/// limits: { bodyBytes: 1048576, writesPerMinute: 120, idleTimeout: 60s, shutdownTimeout: 30s }
/// concurrency: 8
/// audit: { checkpointInterval: 5m }
/// oidc:
///   - name: corp
///     issuer: https://login.example.com
///     audiences: [warden]
///     jwks: https://login.example.com/keys     # optional: discovery otherwise
///     subjectClaim: sub
///     groupsClaim: groups
/// workspaces:
///   - name: payments
///     members: { alice: admin, "group:release": operator }
/// ```
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var tls: TLS?
    public var limits = Limits()
    public var concurrency = 4
    public var checkpointInterval: Double = 300
    public var oidc: [OIDCIssuerSettings] = []
    public var workspaces: [WorkspaceSettings] = []
    /// Webhook receivers (`POST /api/v1/hooks/{name}`), each with its format and secret.
    public var receivers: [ReceiverConfig] = []
    /// The scanning loop (docs/compliance.md).
    public var compliance = ComplianceSettings()

    public struct ComplianceSettings: Sendable, Equatable {
        /// How often tracked tags are resolved and due scans queued.
        public var enumerateEvery: Double = 300
        /// How long a scan stays fresh: older ones are queued again.
        public var scanInterval: Double = 86_400
        /// How long an artefact no longer tracked is kept before it is deleted with its findings.
        public var gracePeriod: Double = 86_400
        /// A claim not renewed for this long is released to another worker.
        public var lease: Double = 1800
        /// Backlog workers in this server (0: none; another server does the scanning).
        public var workers = 2
        /// The scanners the enumerator queues work for (of vuln, license, os-eol, malware).
        public var scanners = ["vuln", "license", "os-eol"]
        /// clamd's socket (`unix:PATH` or `tcp:HOST:PORT`) for the malware scanner.
        public var clamd: String?
        /// Where exported issues are written (`<id>.md`, `<id>.json`) after each enumeration; nil: not exported.
        public var issuesDirectory: String?
        /// Where exported issues are POSTed (GitHub-issues-shaped JSON, signed with `issuesWebhookSecret`).
        public var issuesWebhook: String?
        public var issuesWebhookSecret: String?
        /// Follow the tags pushed to the registries the triggers' receivers hear from: nil: not; empty: every
        /// receiver's pushes; else the pushes of the receivers named.
        public var followPushes: [String]?
        public init() {}
    }

    public struct TLS: Sendable, Equatable {
        public var certificate: String
        public var key: String
        /// Offer HTTP/2 through ALPN (HTTP/1.1 stays available).
        public var http2 = true
        public init(certificate: String, key: String, http2: Bool = true) {
            self.certificate = certificate
            self.key = key
            self.http2 = http2
        }
    }

    public struct Limits: Sendable, Equatable {
        /// Request bodies larger than this are refused with 413.
        public var bodyBytes = 1 << 20
        /// Writes (POST, PUT, PATCH, DELETE) per principal per minute before 429.
        public var writesPerMinute = 120
        /// Seconds a connection may stay idle (also bounds how long a client may take to send its headers).
        public var idleTimeout: Double = 60
        /// Seconds a graceful shutdown waits for in-flight requests and attempts.
        public var shutdownTimeout: Double = 30
        public init() {}
    }

    public struct OIDCIssuerSettings: Sendable, Equatable {
        /// Prefix of the principals it authenticates (`NAME:subject`).
        public var name: String
        public var issuer: String
        public var audiences: [String]
        public var jwksURL: String?
        public var subjectClaim = "sub"
        public var groupsClaim = "groups"
    }

    public struct WorkspaceSettings: Sendable, Equatable {
        public var name: String
        public var members: [(principal: String, role: Role)]
        public static func == (a: WorkspaceSettings, b: WorkspaceSettings) -> Bool {
            a.name == b.name && a.members.map(\.principal) == b.members.map(\.principal) && a.members.map(\.role) == b.members.map(\.role)
        }
    }

    public init() {}

    /// `host:port` (`[::1]:8080` for IPv6), or an `invalid` error naming the flag or key.
    public mutating func setListen(_ text: String, what: String) throws {
        var t = Substring(text)
        var host: String
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { throw ControlError(.invalid, "\(what): \"\(text)\" has an unclosed [") }
            host = String(t[t.index(after: t.startIndex)..<close])
            t = t[t.index(after: close)...]
            guard t.hasPrefix(":") else { throw ControlError(.invalid, "\(what): \"\(text)\" needs :PORT after the address") }
            t = t.dropFirst()
        } else {
            guard let colon = t.lastIndex(of: ":") else { throw ControlError(.invalid, "\(what): \"\(text)\" must be HOST:PORT") }
            host = String(t[..<colon])
            t = t[t.index(after: colon)...]
        }
        guard let port = Int(t), (0...65535).contains(port) else { throw ControlError(.invalid, "\(what): port \"\(t)\" must be 0 to 65535") }
        if host.isEmpty { host = "0.0.0.0" }
        self.host = host
        self.port = port
    }

    /// Reads a configuration file; relative certificate paths are resolved against its directory.
    public static func load(file: String) throws -> ServerSettings {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw YAMLError(position: file, message: "cannot read the configuration file", code: .unreadable)
        }
        return try parse(String(decoding: data, as: UTF8.self), file: file)
    }

    public static func parse(_ text: String, file: String) throws -> ServerSettings {
        var s = ServerSettings()
        let base = (file as NSString).deletingLastPathComponent
        func path(_ p: String) -> String { p.hasPrefix("/") || base.isEmpty ? p : base + "/" + p }
        let root = try YAMLValue.parse(text, file: file)
        if case .scalar(let sc) = root.node, sc.string.isEmpty { return s }
        let f = try root.fields(allowed: ["listen", "tls", "limits", "concurrency", "audit", "oidc", "workspaces", "receivers", "compliance"])
        if let v = f["listen"] {
            do { try s.setListen(try v.string(), what: "listen") } catch let e as ControlError { throw v.error(e.reason) }
        }
        if let v = f["tls"] {
            let t = try v.fields(allowed: ["certificate", "key", "http2"])
            guard let cert = t["certificate"], let key = t["key"] else { throw v.error("tls needs certificate and key (PEM files)") }
            s.tls = TLS(certificate: path(try cert.string()), key: path(try key.string()), http2: try t["http2"]?.bool() ?? true)
        }
        if let v = f["limits"] {
            let l = try v.fields(allowed: ["bodyBytes", "writesPerMinute", "idleTimeout", "shutdownTimeout"])
            if let b = l["bodyBytes"] {
                s.limits.bodyBytes = try b.int()
                guard s.limits.bodyBytes >= 1024 else { throw b.error("bodyBytes must be at least 1024") }
            }
            if let w = l["writesPerMinute"] {
                s.limits.writesPerMinute = try w.int()
                guard s.limits.writesPerMinute >= 1 else { throw w.error("writesPerMinute must be at least 1") }
            }
            if let d = l["idleTimeout"] { s.limits.idleTimeout = try duration(d) }
            if let d = l["shutdownTimeout"] { s.limits.shutdownTimeout = try duration(d) }
        }
        if let v = f["concurrency"] {
            s.concurrency = try v.int()
            guard (1...1024).contains(s.concurrency) else { throw v.error("concurrency must be 1 to 1024") }
        }
        if let v = f["audit"] {
            let a = try v.fields(allowed: ["checkpointInterval"])
            if let d = a["checkpointInterval"] { s.checkpointInterval = try duration(d) }
        }
        if let v = f["oidc"] {
            for item in try v.list() {
                let o = try item.fields(allowed: ["name", "issuer", "audiences", "jwks", "subjectClaim", "groupsClaim"])
                guard let name = o["name"], let issuer = o["issuer"], let aud = o["audiences"] else {
                    throw item.error("an OIDC issuer needs name, issuer and audiences")
                }
                var i = OIDCIssuerSettings(
                    name: try name.string(), issuer: try issuer.string(), audiences: try aud.stringList(), jwksURL: try o["jwks"]?.string())
                guard !i.audiences.isEmpty else { throw aud.error("audiences must name at least one audience") }
                guard i.issuer.hasPrefix("https://") || i.issuer.hasPrefix("http://127.0.0.1") || i.issuer.hasPrefix("http://localhost") else {
                    throw issuer.error("issuer must be an https:// URL (plain http only on loopback)")
                }
                if let c = o["subjectClaim"] { i.subjectClaim = try c.string() }
                if let c = o["groupsClaim"] { i.groupsClaim = try c.string() }
                s.oidc.append(i)
            }
        }
        if let v = f["workspaces"] {
            for item in try v.list() {
                let w = try item.fields(allowed: ["name", "members"])
                guard let n = w["name"] else { throw item.error("a workspace needs a name") }
                let name = try n.string()
                do { try Access.checkWorkspaceName(name) } catch let e as ControlError { throw n.error(e.reason) }
                var members: [(String, Role)] = []
                for (principal, role) in try w["members"]?.mapping(allowed: nil) ?? [] {
                    do { members.append((principal, try Role.named(try role.string()))) } catch let e as ControlError { throw role.error(e.reason) }
                }
                s.workspaces.append(WorkspaceSettings(name: name, members: members))
            }
        }
        if let v = f["receivers"] {
            for item in try v.list() {
                let r = try item.fields(allowed: [
                    "name", "format", "registry", "secretFile", "secretEnv", "header", "includeBlobs", "includePulls", "replayWindow",
                ])
                guard let n = r["name"], let fmt = r["format"] else { throw item.error("a receiver needs a name and a format") }
                let name = try n.string()
                guard s.receivers.allSatisfy({ $0.name != name }) else { throw n.error("receiver \(name) is declared twice") }
                guard let format = ReceiverFormat(rawValue: try fmt.string()) else {
                    throw fmt.error("format must be one of \(ReceiverFormat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                // The secret is read from a file or the environment, never written in the configuration.
                var secret: String?
                if let file = r["secretFile"] {
                    guard let data = FileManager.default.contents(atPath: path(try file.string())) else {
                        throw file.error("cannot read the secret file \(try file.string())")
                    }
                    secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                } else if let env = r["secretEnv"] {
                    guard let value = ProcessInfo.processInfo.environment[try env.string()], !value.isEmpty else {
                        throw env.error("the environment variable \(try env.string()) is not set")
                    }
                    secret = value
                }
                var config = ReceiverConfig(
                    name: name, format: format, registry: try r["registry"]?.string(), secret: secret, header: try r["header"]?.string(),
                    includeBlobs: try r["includeBlobs"]?.bool() ?? false, includePulls: try r["includePulls"]?.bool() ?? false)
                if let w = r["replayWindow"] { config.replayWindow = .seconds(try duration(w)) }
                if let problem = config.problems.first { throw item.error("receiver \(name): \(problem)") }
                s.receivers.append(config)
            }
        }
        if let v = f["compliance"] {
            let c = try v.fields(allowed: [
                "enumerateEvery", "scanInterval", "gracePeriod", "lease", "workers", "scanners", "clamd", "issuesDirectory", "issuesWebhook",
                "followPushes",
            ])
            if let d = c["enumerateEvery"] { s.compliance.enumerateEvery = try duration(d) }
            if let d = c["scanInterval"] { s.compliance.scanInterval = try duration(d) }
            if let d = c["gracePeriod"] { s.compliance.gracePeriod = try duration(d) }
            if let d = c["lease"] { s.compliance.lease = try duration(d) }
            for (key, value) in [("enumerateEvery", s.compliance.enumerateEvery), ("lease", s.compliance.lease)] where value < 1 {
                throw c[key]!.error("\(key) must be at least 1s")
            }
            if let w = c["workers"] {
                s.compliance.workers = try w.int()
                guard (0...64).contains(s.compliance.workers) else { throw w.error("workers must be 0 to 64") }
            }
            if let list = c["scanners"] {
                s.compliance.scanners = try list.stringList()
                for name in s.compliance.scanners where !["vuln", "license", "os-eol", "malware"].contains(name) {
                    throw list.error("scanner \(name) is not one of vuln, license, os-eol, malware")
                }
            }
            if let a = c["clamd"] {
                s.compliance.clamd = try a.string()
                do { _ = try ClamdAddress(parsing: s.compliance.clamd!) } catch { throw a.error("clamd: \(error)") }
            }
            if s.compliance.scanners.contains("malware") && s.compliance.clamd == nil {
                throw v.error("the malware scanner needs clamd (unix:PATH or tcp:HOST:PORT)")
            }
            if let p = c["followPushes"] {
                // true: the pushes every receiver records; a list: those of the receivers it names.
                if let all = try? p.bool() {
                    s.compliance.followPushes = all ? [] : nil
                } else {
                    let names = try p.stringList()
                    for name in names where !s.receivers.contains(where: { $0.name == name }) {
                        throw p.error("followPushes names receiver \(name), which is not one of the configuration's receivers")
                    }
                    guard !names.isEmpty else { throw p.error("followPushes is true, false or a list of receivers") }
                    s.compliance.followPushes = names
                }
            }
            if let d = c["issuesDirectory"] { s.compliance.issuesDirectory = path(try d.string()) }
            if let w = c["issuesWebhook"] {
                let h = try w.fields(allowed: ["url", "secretFile"])
                guard let url = h["url"] else { throw w.error("issuesWebhook needs url (and secretFile)") }
                let text = try url.string()
                guard text.hasPrefix("https://") || text.hasPrefix("http://127.0.0.1") || text.hasPrefix("http://localhost") else {
                    throw url.error("the issues webhook must be an https:// URL (plain http only on loopback)")
                }
                s.compliance.issuesWebhook = text
                // The secret is read from a file, never written in the configuration.
                if let file = h["secretFile"] {
                    guard let data = FileManager.default.contents(atPath: path(try file.string())) else {
                        throw file.error("cannot read the secret file \(try file.string())")
                    }
                    s.compliance.issuesWebhookSecret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
        }
        return s
    }

    static func duration(_ v: YAMLValue) throws -> Double {
        let text = try v.string()
        guard let d = Duration.parse(text) else { throw v.error("\"\(text)\" is not a duration (like 30s, 5m, 1h)") }
        return d.seconds
    }
}
