import Foundation

/// A reference to content in a registry: `[host[:port]/]path[:tag][@digest]`, following the distribution
/// reference grammar, with Docker Hub normalisation (`docker.io`, `library/`, `index.docker.io`).
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    /// Registry host with optional port, normalised (`docker.io` for Docker Hub).
    public var registry: String
    /// Repository path, e.g. `library/alpine`.
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public static let dockerHub = "docker.io"
    static let maxNameLength = 255
    static let maxTagLength = 128

    public init(registry: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses a reference; errors name the bad part.
    public init(parsing input: String) throws {
        func fail(_ why: String) -> OCIError {
            OCIError(.invalidReference, "invalid reference \"\(input)\": \(why)")
        }
        guard !input.isEmpty else { throw fail("it is empty") }
        var rest = Substring(input)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            do { digest = try Digest(parsing: d) } catch let e as OCIError {
                throw fail("bad digest: \(e.reason)")
            }
            rest = rest[..<at]
        }
        // A tag follows the last ':' that comes after the last '/'.
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        let tagSearchStart = lastSlash.map { rest.index(after: $0) } ?? rest.startIndex
        if let colon = rest[tagSearchStart...].lastIndex(of: ":") {
            let t = String(rest[rest.index(after: colon)...])
            try Reference.validateTag(t, input: input)
            tag = t
            rest = rest[..<colon]
        }
        let name = String(rest)
        guard !name.isEmpty else { throw fail("the repository name is missing") }
        guard name.utf8.count <= Reference.maxNameLength else {
            throw fail("the name is \(name.utf8.count) characters long; at most \(Reference.maxNameLength) are allowed")
        }
        var registry = Reference.dockerHub
        var path = name
        if let slash = name.firstIndex(of: "/") {
            let first = String(name[..<slash])
            if first.contains(".") || first.contains(":") || first == "localhost" || first.hasPrefix("[")
                || first.contains(where: { $0.isUppercase })
            {
                try Reference.validateHost(first, input: input)
                registry = first
                path = String(name[name.index(after: slash)...])
            }
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Reference.dockerHub }
        try Reference.validatePath(path, input: input)
        if registry == Reference.dockerHub, !path.contains("/") { path = "library/" + path }
        self.init(registry: registry, repository: path, tag: tag, digest: digest)
    }

    /// Whether `tag` is a tag by the distribution grammar (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
    public static func isValidTag(_ tag: String) -> Bool { (try? validateTag(tag, input: tag)) != nil }

    /// Whether `path` is a repository name by the distribution grammar (lowercase components and separators).
    public static func isValidRepository(_ path: String) -> Bool { path.utf8.count <= 255 && (try? validatePath(path, input: path)) != nil }

    /// Checks what goes into a `/manifests/<reference>` URL: a tag or a digest, nothing else (a name received from
    /// a registry — a tag list, a catalog — is content the registry controls, and `/`, `..` or `?` in it would
    /// address another path).
    public static func validateManifestIdentifier(_ reference: String, context: String) throws {
        if reference.hasPrefix("sha256:") || reference.hasPrefix("sha512:") {
            do { _ = try Digest(parsing: reference) } catch { throw OCIError(.invalidReference, "\(context): \(reference) is not a valid digest") }
            return
        }
        guard isValidTag(reference) else {
            throw OCIError(
                .invalidReference,
                "\(context): \"\(reference.prefix(200))\" is not a valid tag (allowed: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}) nor a digest")
        }
    }

    static func validateTag(_ tag: String, input: String) throws {
        let u = Array(tag.utf8)
        guard !u.isEmpty else { throw OCIError(.invalidReference, "invalid reference \"\(input)\": the tag after ':' is empty") }
        guard u.count <= maxTagLength else {
            throw OCIError(.invalidReference, "invalid reference \"\(input)\": tag \"\(tag)\" is \(u.count) characters; at most 128 are allowed")
        }
        func word(_ c: UInt8) -> Bool { isAlnum(c) || c == UInt8(ascii: "_") }
        guard word(u[0]) else {
            throw OCIError(.invalidReference, "invalid reference \"\(input)\": tag \"\(tag)\" must start with a letter, digit or '_'")
        }
        for (i, c) in u.enumerated() where !(word(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")) {
            throw OCIError(
                .invalidReference,
                "invalid reference \"\(input)\": tag \"\(tag)\" has an invalid character at position \(i + 1); allowed are [A-Za-z0-9_.-]")
        }
    }

    static func validateHost(_ host: String, input: String) throws {
        func fail(_ why: String) -> OCIError {
            OCIError(.invalidReference, "invalid reference \"\(input)\": registry host \"\(host)\" \(why)")
        }
        var hostPart = Substring(host)
        var port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw fail("has an unterminated IPv6 address") }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), inner.contains(":") else {
                throw fail("has an invalid IPv6 address")
            }
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw fail("has characters after the IPv6 address") }
                port = after.dropFirst()
            }
            hostPart = ""
        } else if let colon = host.firstIndex(of: ":") {
            port = host[host.index(after: colon)...]
            hostPart = host[..<colon]
        }
        if let port {
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(port), n <= 65535 else {
                throw fail("has an invalid port \"\(port)\"")
            }
        }
        if !host.hasPrefix("[") {
            guard !hostPart.isEmpty else { throw fail("is empty") }
            for component in hostPart.split(separator: ".", omittingEmptySubsequences: false) {
                let u = Array(component.utf8)
                guard !u.isEmpty else { throw fail("has an empty label") }
                guard u.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") }), u.first != UInt8(ascii: "-"),
                    u.last != UInt8(ascii: "-")
                else { throw fail("has an invalid label \"\(component)\"") }
            }
        }
    }

    static func validatePath(_ path: String, input: String) throws {
        func fail(_ why: String) -> OCIError {
            OCIError(.invalidReference, "invalid reference \"\(input)\": repository \"\(path)\" \(why)")
        }
        if path.contains(where: { $0.isUppercase }) {
            throw fail("must be lowercase")
        }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            let u = Array(component.utf8)
            guard !u.isEmpty else { throw fail("has an empty path component") }
            guard isLowerAlnum(u.first!), isLowerAlnum(u.last!) else {
                throw fail("has component \"\(component)\" that must start and end with [a-z0-9]")
            }
            // separator := [_.] | __ | [-]+  between alphanumeric runs
            var i = 0
            while i < u.count {
                if isLowerAlnum(u[i]) { i += 1; continue }
                var j = i
                while j < u.count, !isLowerAlnum(u[j]) { j += 1 }
                let sep = String(decoding: u[i..<j], as: UTF8.self)
                let ok = sep == "." || sep == "_" || sep == "__" || sep.allSatisfy({ $0 == "-" })
                guard ok else { throw fail("has an invalid separator \"\(sep)\" in component \"\(component)\"") }
                i = j
            }
        }
    }

    /// `registry/repository[:tag][@digest]`.
    public var description: String {
        var s = "\(registry)/\(repository)"
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// Short form for display, as Docker prints it (no `docker.io/library/`).
    public var familiar: String {
        var name = "\(registry)/\(repository)"
        if registry == Reference.dockerHub {
            name = repository.hasPrefix("library/") ? String(repository.dropFirst(8)) : repository
        }
        if let tag { name += ":\(tag)" }
        if let digest { name += "@\(digest)" }
        return name
    }

    /// The identifier used in the manifests endpoint: the digest when present, else the tag, else `latest`.
    public var manifestIdentifier: String { digest?.description ?? tag ?? "latest" }

    /// Host to talk to for this registry (Docker Hub's API lives on registry-1.docker.io).
    public var apiHost: String { registry == Reference.dockerHub ? "registry-1.docker.io" : registry }

    public func with(tag: String?, digest: Digest? = nil) -> Reference {
        Reference(registry: registry, repository: repository, tag: tag, digest: digest)
    }
}

@inline(__always) func isLowerAlnum(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a)
}
@inline(__always) func isAlnum(_ c: UInt8) -> Bool {
    isLowerAlnum(c) || (c >= 0x41 && c <= 0x5a)
}

/// Where content lives: a registry repository or a local OCI image-layout directory.
public enum Location: Sendable, Hashable, CustomStringConvertible {
    case registry(Reference)
    /// `oci-layout:PATH[:TAG|@DIGEST]`
    case layout(path: String, tag: String?, digest: Digest?)

    public static let layoutScheme = "oci-layout:"

    public init(parsing input: String) throws {
        if input.hasPrefix(Location.layoutScheme) {
            var rest = String(input.dropFirst(Location.layoutScheme.count))
            var tag: String?
            var digest: Digest?
            if let at = rest.lastIndex(of: "@") {
                do { digest = try Digest(parsing: String(rest[rest.index(after: at)...])) } catch let e as OCIError {
                    throw OCIError(.invalidReference, "invalid layout reference \"\(input)\": bad digest: \(e.reason)")
                }
                rest = String(rest[..<at])
            } else if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
                let t = String(rest[rest.index(after: colon)...])
                try Reference.validateTag(t, input: input)
                tag = t
                rest = String(rest[..<colon])
            }
            guard !rest.isEmpty else {
                throw OCIError(
                    .invalidReference, "invalid layout reference \"\(input)\": the directory path is missing (oci-layout:PATH[:TAG|@DIGEST])")
            }
            self = .layout(path: rest, tag: tag, digest: digest)
        } else {
            self = .registry(try Reference(parsing: input))
        }
    }

    public var description: String {
        switch self {
        case .registry(let r): return r.description
        case .layout(let path, let tag, let digest):
            return Location.layoutScheme + path + (tag.map { ":\($0)" } ?? "") + (digest.map { "@\($0)" } ?? "")
        }
    }

    public var tag: String? {
        switch self {
        case .registry(let r): r.tag
        case .layout(_, let tag, _): tag
        }
    }
    public var digest: Digest? {
        switch self {
        case .registry(let r): r.digest
        case .layout(_, _, let digest): digest
        }
    }
}
