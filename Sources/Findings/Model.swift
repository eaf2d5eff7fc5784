import Documents
import Foundation

/// All versions of an OCI artefact: a registry and a repository. What discovery dates carry over and what
/// artefact-wide rescorings and issues are about.
public struct ArtefactName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var registry: String
    public var repository: String

    public init(registry: String, repository: String) {
        self.registry = registry
        self.repository = repository
    }

    /// `registry/repository`.
    public var description: String { "\(registry)/\(repository)" }

    public static func < (a: ArtefactName, b: ArtefactName) -> Bool { (a.registry, a.repository) < (b.registry, b.repository) }
}

/// One version of an OCI artefact, by digest: the identity every finding is tied to.
public struct ArtefactID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var registry: String
    public var repository: String
    /// `sha256:…`.
    public var digest: String

    public init(registry: String, repository: String, digest: String) {
        self.registry = registry
        self.repository = repository
        self.digest = digest
    }

    public var name: ArtefactName { ArtefactName(registry: registry, repository: repository) }

    /// `registry/repository@digest`, the artefact's OCI reference.
    public var description: String { "\(registry)/\(repository)@\(digest)" }

    public static func < (a: ArtefactID, b: ArtefactID) -> Bool {
        (a.registry, a.repository, a.digest) < (b.registry, b.repository, b.digest)
    }
}

/// A component (a product made of artefacts) in one version. Component-wide rescorings and issues are about every
/// version of a component, so they match on ``name``.
public struct ComponentRef: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var version: String

    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }

    /// `name:version`.
    public var description: String { "\(name):\(version)" }
}

/// The kind of a finding. Extensible: a scanner may report a type of its own (`FindingType("secret")`).
public struct FindingType: RawRepresentable, Hashable, Sendable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }

    /// A known vulnerability in a package (data key: package, vulnerability id).
    public static let vulnerability = FindingType("vulnerability")
    /// A package's license (data key: package, license id).
    public static let license = FindingType("license")
    /// A malware signature found in a file (data key: file digest, signature name).
    public static let malware = FindingType("malware")
    /// An operating system past its end of life (data key: OS id, OS version).
    public static let osEndOfLife = FindingType("os-eol")

    public var description: String { rawValue }

    /// The type's name for headings ("Vulnerabilities", "OS end of life").
    public var displayName: String {
        switch self {
        case .vulnerability: "Vulnerabilities"
        case .license: "Licenses"
        case .malware: "Malware"
        case .osEndOfLife: "OS end of life"
        default: rawValue
        }
    }

    /// What the two parts of the type's data key are (``DataKey/subject``, ``DataKey/id``), for column headings.
    public var dataKeyLabels: (subject: String, id: String) {
        switch self {
        case .vulnerability: ("Package", "Vulnerability")
        case .license: ("Package", "License")
        case .malware: ("File", "Signature")
        case .osEndOfLife: ("OS", "Version")
        default: ("Subject", "Id")
        }
    }

    public static func < (a: FindingType, b: FindingType) -> Bool { a.rawValue < b.rawValue }
}

/// What a finding is about within its artefact, independent of the artefact's version: its type and the type's two
/// key parts. A vulnerability's subject is the package without its version (a version bump of the package is the
/// same finding), its id the vulnerability id; a license's the package and the license id; malware's the file
/// digest and the signature name; an OS end of life's the OS id and the OS version.
public struct DataKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var type: FindingType
    public var subject: String
    public var id: String

    public init(type: FindingType, subject: String, id: String) {
        self.type = type
        self.subject = subject
        self.id = id
    }

    public static func vulnerability(package: String, id: String) -> DataKey { DataKey(type: .vulnerability, subject: package, id: id) }
    public static func license(package: String, id: String) -> DataKey { DataKey(type: .license, subject: package, id: id) }
    public static func malware(file digest: String, signature: String) -> DataKey { DataKey(type: .malware, subject: digest, id: signature) }
    public static func osEndOfLife(os: String, version: String) -> DataKey { DataKey(type: .osEndOfLife, subject: os, id: version) }

    /// `type subject id`.
    public var description: String { "\(type) \(subject) \(id)" }

    public static func < (a: DataKey, b: DataKey) -> Bool { (a.type.rawValue, a.subject, a.id) < (b.type.rawValue, b.subject, b.id) }
}

/// A finding's identity: the artefact version, the datasource (the scanner) that reported it and its data key.
/// Reporting the same key again updates the finding in place.
public struct FindingKey: Hashable, Sendable, CustomStringConvertible {
    public var artefact: ArtefactID
    public var datasource: String
    public var dataKey: DataKey

    public init(artefact: ArtefactID, datasource: String, dataKey: DataKey) {
        self.artefact = artefact
        self.datasource = datasource
        self.dataKey = dataKey
    }

    public var type: FindingType { dataKey.type }

    /// The same finding on every version of the artefact: the key without the digest.
    public var lineage: FindingLineage { FindingLineage(artefact: artefact.name, datasource: datasource, dataKey: dataKey) }

    /// The key as one stable string (what a store indexes): the seven parts joined by `|`, each with `%` and `|`
    /// percent-encoded. ``init(stableString:)`` reads it back.
    public var stableString: String {
        [artefact.registry, artefact.repository, artefact.digest, datasource, dataKey.type.rawValue, dataKey.subject, dataKey.id]
            .map(Self.escape).joined(separator: "|")
    }

    public var description: String { stableString }

    /// The key a ``stableString`` names, or nil when `text` is not one.
    public init?(stableString text: String) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        let p = parts.compactMap { String($0).removingPercentEncoding }
        guard parts.count == 7, p.count == 7 else { return nil }
        self.init(
            artefact: ArtefactID(registry: p[0], repository: p[1], digest: p[2]), datasource: p[3],
            dataKey: DataKey(type: FindingType(p[4]), subject: p[5], id: p[6]))
    }

    static func escape(_ part: String) -> String {
        part.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "|", with: "%7C")
    }
}

/// A finding's key without the artefact's digest: what a finding on one version shares with the same finding on
/// the others.
public struct FindingLineage: Hashable, Sendable {
    public var artefact: ArtefactName
    public var datasource: String
    public var dataKey: DataKey
}

/// A finding as recorded: open until a newer complete scan of its artefact no longer reports it, then resolved
/// (kept for metrics, never deleted).
public struct Finding: Hashable, Sendable {
    public var key: FindingKey
    /// The severity score: the CVSS base score for vulnerabilities; nil when the type has none or it is unknown.
    public var score: Double?
    /// One line for people ("openssl: buffer overflow in X.509 parsing").
    public var summary: String
    /// When the finding was first seen, on this version or (carried over) on an earlier one: the SLA clock's start.
    public var discoveredAt: Date
    /// The latest scan that reported it.
    public var lastSeenAt: Date
    /// When a complete scan first no longer reported it; nil while open.
    public var resolvedAt: Date?

    public init(key: FindingKey, score: Double? = nil, summary: String = "", discoveredAt: Date, lastSeenAt: Date? = nil, resolvedAt: Date? = nil) {
        self.key = key
        self.score = score
        self.summary = summary
        self.discoveredAt = discoveredAt
        self.lastSeenAt = lastSeenAt ?? discoveredAt
        self.resolvedAt = resolvedAt
    }

    public var isOpen: Bool { resolvedAt == nil }

    /// Whether the finding was open at `time`: discovered by then and not yet resolved.
    public func isOpen(at time: Date) -> Bool { discoveredAt <= time && (resolvedAt.map { $0 > time } ?? true) }
}

extension Date {
    static func + (date: Date, duration: Duration) -> Date { date.addingTimeInterval(duration.seconds) }
}

extension Duration {
    /// `n` days of 24 hours.
    public static func days(_ n: Int) -> Duration { .seconds(n * 86_400) }
}
