/// A package found in an image.
public struct Package: Sendable, Codable, Equatable {
    /// The purl type: deb, apk, rpm, pypi, npm, golang, maven.
    public var type: String
    public var name: String
    public var version: String
    public var purl: String
    /// License identifiers or expressions as the package declares them.
    public var licenses: [String]
    /// Absolute paths of the files the package was read from.
    public var locations: [String]
    /// Digest of the layer that introduced the package (the earliest layer from which it stayed installed).
    public var layer: String?
    /// Format-specific facts: architecture, source package and version, epoch, release, origin, …
    public var metadata: [String: String]

    public init(
        type: String, name: String, version: String, purl: String, licenses: [String] = [], locations: [String], layer: String? = nil,
        metadata: [String: String] = [:]
    ) {
        self.type = type
        self.name = name
        self.version = version
        self.purl = purl
        self.licenses = licenses
        self.locations = locations
        self.layer = layer
        self.metadata = metadata
    }
}

/// The operating system an image says it is (os-release).
public struct Distro: Sendable, Codable, Equatable {
    public var id: String
    public var versionID: String?
    public var versionCodename: String?
    public var name: String?
    public var prettyName: String?
    public var idLike: [String]

    public init(id: String, versionID: String?, versionCodename: String?, name: String?, prettyName: String?, idLike: [String]) {
        self.id = id
        self.versionID = versionID
        self.versionCodename = versionCodename
        self.name = name
        self.prettyName = prettyName
        self.idLike = idLike
    }
}

/// Package URLs (github.com/package-url/purl-spec): `pkg:type/namespace/name@version?qualifiers#subpath`.
public enum PURL {
    /// Percent-encodes all but the unreserved characters (A–Z a–z 0–9 `-` `.` `_` `~`); `:` is left as is in names
    /// and versions, as the specification allows.
    static func encode(_ s: String, keepColon: Bool = true) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: ":") where keepColon:
                out += ":"
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// PEP 503: lowercase, runs of `-`, `_` and `.` become one `-` (how PyPI names are compared, and how pypi
    /// purls spell them).
    public static func pep503(_ name: String) -> String {
        var out = ""
        var lastWasSeparator = false
        for c in name.lowercased() {
            if c == "-" || c == "_" || c == "." {
                if !lastWasSeparator { out.append("-") }
                lastWasSeparator = true
            } else {
                out.append(c)
                lastWasSeparator = false
            }
        }
        return out
    }

    /// Builds a purl; empty qualifier values are dropped, the rest sorted by key.
    public static func make(
        type: String, namespace: String? = nil, name: String, version: String?, qualifiers: [String: String] = [:], subpath: String? = nil
    ) -> String {
        var s = "pkg:" + type + "/"
        if let namespace, !namespace.isEmpty {
            s += namespace.split(separator: "/").map { encode(String($0)) }.joined(separator: "/") + "/"
        }
        s += encode(name)
        if let version, !version.isEmpty { s += "@" + encode(version) }
        let q = qualifiers.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        if !q.isEmpty { s += "?" + q.map { $0.key + "=" + encode($0.value, keepColon: true) }.joined(separator: "&") }
        if let subpath, !subpath.isEmpty { s += "#" + subpath.split(separator: "/").map { encode(String($0)) }.joined(separator: "/") }
        return s
    }
}
