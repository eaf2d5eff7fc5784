import Documents
import Foundation
import OCI
import Trust

/// A replication file (YAML, `kind: Replication`): registries, defaults and the artifacts to mirror. Read strictly:
/// unknown keys and wrong types are errors with file, line and column, before any network call.
public struct ReplicationFile: Sendable {
    /// Digest of the file's text: a refusal is reused by a later run only while the file that decided it is the same.
    public var fingerprint = ""
    public struct RegistrySettings: Sendable {
        public var host: String
        /// Environment variables holding the username and password (else docker's config.json is consulted).
        public var usernameEnv: String?
        public var passwordEnv: String?
        public var caFile: String?
        public var plainHTTP = false
        /// Images copied to or from this registry at once.
        public var concurrency: Int?
        /// Requests per second to this registry.
        public var requestsPerSecond: Double?
    }

    public enum Referrers: Sendable, Equatable {
        case all
        case none
        /// `signatures`, `attestations`, `sboms`, or artifact types.
        case only(Set<String>)
    }

    public enum Platforms: Sendable, Equatable {
        case all
        case list([Platform])
    }

    /// The trust policy an artifact must pass before anything of it is pushed; the rule matching the source
    /// repository applies.
    public struct Verification: Sendable {
        public var policy: TrustPolicy
        public var source: String
    }

    public struct Artifact: Sendable {
        /// `registry/repository` (or a prefix of repositories when `prefix`).
        public var source: String
        public var target: String
        public var prefix: Bool
        public var tags: TagSelection
        public var platforms: Platforms
        public var referrers: Referrers
        public var verify: Verification?
        /// Target tag template: `{tag}` is the source tag.
        public var targetTag: String
        /// Where the entry is in the file (for reports).
        public var position: String
    }

    public var registries: [String: RegistrySettings]
    public var concurrency: Int
    public var artifacts: [Artifact]

    static let topKeys = ["apiVersion", "kind", "registries", "defaults", "artifacts"]
    static let registryKeys = ["usernameEnv", "passwordEnv", "caFile", "plainHTTP", "concurrency", "requestsPerSecond"]
    static let defaultKeys = ["concurrency", "platforms", "referrers", "verify", "targetTag"]
    static let artifactKeys = ["source", "target", "prefix", "tags", "platforms", "referrers", "verify", "targetTag"]
    static let tagKeys = ["exact", "digests", "allow", "deny", "semver", "newest"]
    static let verifyKeys = ["policy", "authorities", "threshold", "attestations"]
    static let referrerKinds = ["signatures", "attestations", "sboms"]

    public static func load(path: String) throws -> ReplicationFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrustError(.io, "cannot read replication file \(path)")
        }
        return try parse(text, file: path, baseDirectory: URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    /// Parses a replication file; errors are `TrustError(.malformed)` whose reason starts with `file:line:column`.
    public static func parse(_ text: String, file: String, baseDirectory: String) throws -> ReplicationFile {
        do {
            return try parseDocument(text, file: file, baseDirectory: baseDirectory)
        } catch let e as YAMLError {
            throw TrustError(.malformed, e.description)
        }
    }

    static func parseDocument(_ text: String, file: String, baseDirectory: String) throws -> ReplicationFile {
        let root = try YAMLValue.parse(text, file: file)
        let top = try root.fields(allowed: topKeys)
        guard let api = top["apiVersion"], try api.string() == "warden.dev/v1" else {
            throw (top["apiVersion"] ?? root).error("apiVersion must be warden.dev/v1")
        }
        guard let kind = top["kind"], try kind.string() == "Replication" else { throw (top["kind"] ?? root).error("kind must be Replication") }

        var registries: [String: RegistrySettings] = [:]
        for (host, value) in try top["registries"]?.mapping(allowed: nil) ?? [] {
            let f = try value.fields(allowed: registryKeys)
            var r = RegistrySettings(host: host)
            r.usernameEnv = try f["usernameEnv"]?.string()
            r.passwordEnv = try f["passwordEnv"]?.string()
            if (r.usernameEnv == nil) != (r.passwordEnv == nil) { throw value.error("give both usernameEnv and passwordEnv, or neither") }
            if let ca = f["caFile"] {
                let p = try ca.string()
                let full = p.hasPrefix("/") ? p : baseDirectory + "/" + p
                guard FileManager.default.isReadableFile(atPath: full) else { throw ca.error("cannot read \(full)") }
                r.caFile = full
            }
            r.plainHTTP = try f["plainHTTP"]?.bool() ?? false
            r.concurrency = try positive(f["concurrency"])
            if let rps = f["requestsPerSecond"] {
                guard case .scalar = rps.node, let v = rps.node.float, v > 0 else { throw rps.error("expected a positive number") }
                r.requestsPerSecond = v
            }
            registries[host] = r
        }

        let defaults = try top["defaults"]?.fields(allowed: defaultKeys) ?? [:]
        let concurrency = try positive(defaults["concurrency"]) ?? 4
        let defaultPlatforms = try defaults["platforms"].map(platforms) ?? .all
        let defaultReferrers = try defaults["referrers"].map(referrers) ?? .all
        let defaultVerify = try defaults["verify"].map { try verification($0, baseDirectory: baseDirectory) } ?? nil
        let defaultTargetTag = try defaults["targetTag"].map(targetTag) ?? "{tag}"

        var artifacts: [Artifact] = []
        guard let list = top["artifacts"] else { throw root.error("no artifacts: list the source → target entries to replicate") }
        for value in try list.list() {
            let f = try value.fields(allowed: artifactKeys)
            guard let s = f["source"] else { throw value.error("artifact needs source") }
            guard let t = f["target"] else { throw value.error("artifact needs target") }
            let prefix = try f["prefix"]?.bool() ?? false
            let source = try repository(s, prefix: prefix)
            let target = try repository(t, prefix: prefix)
            var tags = TagSelection()
            if let tv = f["tags"] {
                let tf = try tv.fields(allowed: tagKeys)
                tags.exact = try tf["exact"]?.stringList() ?? []
                for d in try tf["digests"]?.list() ?? [] {
                    do { tags.digests.append(try OCI.Digest(parsing: d.string())) } catch let e as OCIError { throw d.error(e.reason) }
                }
                for (key, keyPath) in [("allow", \TagSelection.allow), ("deny", \TagSelection.deny)] {
                    for re in try tf[key]?.list() ?? [] {
                        let pattern = try re.string()
                        guard (try? NSRegularExpression(pattern: pattern)) != nil else {
                            throw re.error("\"\(pattern)\" is not a valid regular expression")
                        }
                        tags[keyPath: keyPath].append(pattern)
                    }
                }
                if let sv = tf["semver"] {
                    do { tags.semver = try SemVerRange(sv.string()) } catch let e as SemVerRange.RangeError { throw sv.error(e.description) }
                }
                tags.newest = try positive(tf["newest"])
            }
            if prefix && (!tags.exact.isEmpty || !tags.digests.isEmpty) {
                throw value.error("a prefix entry selects tags by allow/deny/semver/newest, not by exact tags or digests")
            }
            artifacts.append(
                Artifact(
                    source: source, target: target, prefix: prefix, tags: tags, platforms: try f["platforms"].map(platforms) ?? defaultPlatforms,
                    referrers: try f["referrers"].map(referrers) ?? defaultReferrers,
                    verify: try f["verify"].map { try verification($0, baseDirectory: baseDirectory) } ?? defaultVerify,
                    targetTag: try f["targetTag"].map(targetTag) ?? defaultTargetTag, position: value.position))
        }
        guard !artifacts.isEmpty else { throw list.error("no artifacts: list the source → target entries to replicate") }
        var parsed = ReplicationFile(registries: registries, concurrency: concurrency, artifacts: artifacts)
        parsed.fingerprint = Digest.compute(Data(text.utf8)).description
        return parsed
    }

    static func positive(_ v: YAMLValue?) throws -> Int? {
        guard let v else { return nil }
        let n = try v.int()
        guard n > 0 else { throw v.error("expected a positive integer, found \(n)") }
        return n
    }

    static func repository(_ v: YAMLValue, prefix: Bool) throws -> String {
        var s = try v.string()
        if prefix { while s.hasSuffix("/") { s.removeLast() } }
        do {
            let r = try Reference(parsing: s)
            guard r.tag == nil, r.digest == nil else {
                throw v.error("\"\(s)\" names a tag or digest; give the repository and select tags under tags")
            }
            return "\(r.registry)/\(r.repository)"
        } catch let e as OCIError {
            throw v.error(e.reason)
        }
    }

    static func platforms(_ v: YAMLValue) throws -> Platforms {
        if case .scalar = v.node {
            guard try v.string() == "all" else { throw v.error("platforms is \"all\" or a list like [linux/amd64, linux/arm64]") }
            return .all
        }
        var list: [Platform] = []
        for p in try v.list() {
            do { list.append(try Platform(parsing: p.string())) } catch let e as OCIError { throw p.error(e.reason) }
        }
        guard !list.isEmpty else { throw v.error("an empty platform list selects nothing; use all") }
        return .list(list)
    }

    static func referrers(_ v: YAMLValue) throws -> Referrers {
        if case .scalar = v.node {
            switch try v.string() {
            case "all": return .all
            case "none": return .none
            default: throw v.error("referrers is all, none, or a list of signatures, attestations, sboms and artifact types")
            }
        }
        var kinds = Set<String>()
        for k in try v.list() {
            let s = try k.string()
            guard referrerKinds.contains(s) || s.contains("/") else {
                throw k.error("\"\(s)\" is neither one of \(referrerKinds.joined(separator: ", ")) nor a media type")
            }
            kinds.insert(s)
        }
        return .only(kinds)
    }

    static func targetTag(_ v: YAMLValue) throws -> String {
        let s = try v.string()
        let sample = s.replacingOccurrences(of: "{tag}", with: "1.0")
        guard !sample.isEmpty, sample.count <= 128, sample.first.map({ $0.isLetter || $0.isNumber || $0 == "_" }) == true,
            sample.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
        else { throw v.error("targetTag \"\(s)\" does not make a valid tag ({tag} is replaced by the source tag)") }
        return s
    }

    static func verification(_ v: YAMLValue, baseDirectory: String) throws -> Verification? {
        if case .scalar = v.node {
            guard try v.bool() == false else { throw v.error("verify is false, {policy: FILE}, or inline authorities") }
            return nil
        }
        let f = try v.fields(allowed: verifyKeys)
        if let p = f["policy"] {
            guard f.count == 1 else { throw v.error("give either policy or inline authorities, not both") }
            let path = try p.string()
            let full = path.hasPrefix("/") ? path : baseDirectory + "/" + path
            do {
                return Verification(policy: try TrustPolicy.load(path: full), source: full)
            } catch let e as TrustError {
                throw p.error(e.reason)
            }
        }
        guard let a = f["authorities"] else { throw v.error("verify needs policy or authorities") }
        let authorities = try TrustPolicy.parseAuthorities(a, baseDirectory: baseDirectory)
        guard !authorities.isEmpty else { throw a.error("no authorities") }
        let names = authorities.keys.sorted()
        let threshold = try positive(f["threshold"]) ?? 1
        if threshold > names.count, let t = f["threshold"] { throw t.error("threshold \(threshold) exceeds the \(names.count) authorities") }
        let attestations = try TrustPolicy.parseAttestations(f["attestations"], ruleAuthorities: names, authorities: authorities)
        let rule = TrustPolicy.Rule(
            name: "inline (\(v.position))", images: ["**"], authorities: names, threshold: threshold, attestations: attestations, reject: false,
            allowUnsigned: false)
        return Verification(policy: TrustPolicy(authorities: authorities, rules: [rule]), source: v.position)
    }
}
