import Foundation

/// An inventory: what was scanned, its operating system and its packages.
public struct Inventory: Sendable, Codable {
    public struct Subject: Sendable, Codable {
        /// As given: a reference, `oci-layout:PATH`, `docker-archive:PATH` or `dir:PATH`.
        public var name: String
        public var digest: String?
        public var manifestDigest: String?
        public var platform: String?
        public init(name: String, digest: String?, manifestDigest: String?, platform: String?) {
            self.name = name
            self.digest = digest
            self.manifestDigest = manifestDigest
            self.platform = platform
        }
    }
    public var subject: Subject
    public var distro: Distro?
    public var layers: [LayerInfo]
    public var packages: [Package]
    public init(subject: Subject, distro: Distro?, layers: [LayerInfo], packages: [Package]) {
        self.subject = subject
        self.distro = distro
        self.layers = layers
        self.packages = packages
    }
}

/// SBOM documents written from an inventory: CycloneDX 1.6 JSON, SPDX 2.3 JSON, Warden's own JSON, a table.
public enum SBOMFormat: String, Sendable, CaseIterable {
    case cyclonedxJSON = "cyclonedx-json"
    case spdxJSON = "spdx-json"
    case wardenJSON = "warden-json"
    case table

    public static let toolName = "warden"
    public static let toolVersion = "0.1.0"

    /// The document for `inventory`. `created` and `serial` make the output reproducible in tests.
    public func render(_ inventory: Inventory, created: Date = Date(), serial: UUID = UUID()) throws -> Data {
        switch self {
        case .cyclonedxJSON: return try encode(CycloneDX.document(inventory, created: created, serial: serial))
        case .spdxJSON: return try encode(SPDX.document(inventory, created: created, serial: serial))
        case .wardenJSON: return try encode(inventory)
        case .table: return Data(Self.table(inventory).utf8)
        }
    }

    func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value) + Data("\n".utf8)
    }

    static func table(_ inventory: Inventory) -> String {
        var rows = [["NAME", "VERSION", "TYPE", "LAYER"]]
        for p in inventory.packages {
            var layer = ""
            if let digest = p.layer, let info = inventory.layers.first(where: { $0.digest == digest }) { layer = String(info.index) }
            rows.append([p.name, p.version, p.type, layer])
        }
        var widths = [0, 0, 0, 0]
        for r in rows { for c in 0..<4 { widths[c] = max(widths[c], r[c].count) } }
        var out = ""
        for r in rows {
            var line = ""
            for c in 0..<4 { line += c == 3 ? r[c] : r[c] + String(repeating: " ", count: widths[c] - r[c].count + 2) }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    static func timestamp(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
}

/// SPDX license identifiers Warden writes as identifiers; anything else is written as a name (CycloneDX) or a
/// LicenseRef (SPDX), so documents always validate.
enum SPDXLicenses {
    static let known: Set<String> = [
        "0BSD", "AFL-2.1", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0", "APSL-2.0", "Artistic-1.0", "Artistic-2.0",
        "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause", "BSL-1.0", "bzip2-1.0.6", "CC-BY-3.0", "CC-BY-4.0",
        "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0", "CDDL-1.0", "CDDL-1.1", "curl", "EPL-1.0", "EPL-2.0", "EUPL-1.2", "FTL", "GFDL-1.2-only",
        "GFDL-1.2-or-later", "GFDL-1.3-only", "GFDL-1.3-or-later", "GPL-1.0-only", "GPL-1.0-or-later", "GPL-2.0-only", "GPL-2.0-or-later",
        "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "ICU", "IJG", "Info-ZIP", "ISC", "LGPL-2.0-only", "LGPL-2.0-or-later",
        "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "Libpng", "libtiff", "MIT", "MIT-0", "MPL-1.1",
        "MPL-2.0", "NCSA", "OFL-1.1", "OpenSSL", "PHP-3.01", "PostgreSQL", "PSF-2.0", "Python-2.0", "Ruby", "Sleepycat", "TCL",
        "Unicode-DFS-2016", "Unicode-3.0", "Unlicense", "UPL-1.0", "Vim", "W3C", "WTFPL", "X11", "Zlib", "ZPL-2.1",
    ]

    /// `LicenseRef-` + the name with characters outside `[A-Za-z0-9.-]` replaced by `-`.
    static func ref(_ name: String) -> String { "LicenseRef-" + SPDX.id(name) }
}

// MARK: CycloneDX 1.6

enum CycloneDX {
    struct Document: Encodable {
        let schema = "http://cyclonedx.org/schema/bom-1.6.schema.json"
        let bomFormat = "CycloneDX"
        let specVersion = "1.6"
        var serialNumber: String
        let version = 1
        var metadata: Metadata
        var components: [Component]
        var dependencies: [Dependency]
        enum CodingKeys: String, CodingKey {
            case schema = "$schema"
            case bomFormat, specVersion, serialNumber, version, metadata, components, dependencies
        }
    }
    struct Metadata: Encodable {
        var timestamp: String
        var tools: Tools
        var component: Component
    }
    struct Tools: Encodable { var components: [Component] }
    struct Component: Encodable {
        var bomRef: String?
        var type: String
        var name: String
        var version: String?
        var purl: String?
        var licenses: [License]?
        var properties: [Property]?
        enum CodingKeys: String, CodingKey {
            case bomRef = "bom-ref"
            case type, name, version, purl, licenses, properties
        }
    }
    struct License: Encodable {
        struct Inner: Encodable {
            var id: String?
            var name: String?
        }
        var license: Inner?
        /// An SPDX expression ("MIT AND Apache-2.0"); CycloneDX then allows only this one entry.
        var expression: String?
    }

    /// One expression when any declared license is an expression, else one entry per license.
    static func licenses(_ declared: [String]) -> [License]? {
        guard !declared.isEmpty else { return nil }
        let operators = [" AND ", " OR ", " WITH ", "(", ")"]
        if declared.contains(where: { l in operators.contains { l.contains($0) } }) {
            return [License(expression: declared.count == 1 ? declared[0] : declared.map { "(\($0))" }.joined(separator: " AND "))]
        }
        return declared.map { SPDXLicenses.known.contains($0) ? License(license: .init(id: $0)) : License(license: .init(name: $0)) }
    }
    struct Property: Encodable {
        var name: String
        var value: String
    }
    struct Dependency: Encodable {
        var ref: String
        var dependsOn: [String]
    }

    static func document(_ inventory: Inventory, created: Date, serial: UUID) -> Document {
        let root = Component(
            bomRef: "subject", type: "container", name: inventory.subject.name, version: inventory.subject.manifestDigest ?? inventory.subject.digest,
            purl: nil, licenses: nil,
            properties: inventory.subject.platform.map { [Property(name: "warden:image:platform", value: $0)] })
        var refs: [String] = []
        var seen: [String: Int] = [:]
        var components: [Component] = []
        if let d = inventory.distro {
            components.append(
                Component(bomRef: "os:\(d.id)", type: "operating-system", name: d.id, version: d.versionID, purl: nil, licenses: nil, properties: nil)
            )
            refs.append("os:\(d.id)")
        }
        for p in inventory.packages {
            let n = seen[p.purl, default: 0]
            seen[p.purl] = n + 1
            let ref = n == 0 ? p.purl : "\(p.purl)#\(n)"
            refs.append(ref)
            var properties = p.locations.map { Property(name: "warden:location", value: $0) }
            if let l = p.layer { properties.append(Property(name: "warden:layer", value: l)) }
            for (k, v) in p.metadata.sorted(by: { $0.key < $1.key }) { properties.append(Property(name: "warden:\(p.type):\(k)", value: v)) }
            components.append(
                Component(
                    bomRef: ref, type: "library", name: p.name, version: p.version, purl: p.purl,
                    licenses: licenses(p.licenses),
                    properties: properties))
        }
        return Document(
            serialNumber: "urn:uuid:" + serial.uuidString.lowercased(),
            metadata: Metadata(
                timestamp: SBOMFormat.timestamp(created),
                tools: Tools(components: [
                    Component(
                        bomRef: nil, type: "application", name: SBOMFormat.toolName, version: SBOMFormat.toolVersion, purl: nil, licenses: nil,
                        properties: nil)
                ]), component: root),
            components: components,
            dependencies: [Dependency(ref: "subject", dependsOn: refs)] + refs.map { Dependency(ref: $0, dependsOn: []) })
    }
}

// MARK: SPDX 2.3

enum SPDX {
    struct Document: Encodable {
        let spdxVersion = "SPDX-2.3"
        let dataLicense = "CC0-1.0"
        let SPDXID = "SPDXRef-DOCUMENT"
        var name: String
        var documentNamespace: String
        var creationInfo: CreationInfo
        var packages: [Package]
        var relationships: [Relationship]
        var hasExtractedLicensingInfos: [ExtractedLicense]?
    }
    struct CreationInfo: Encodable {
        var created: String
        var creators: [String]
    }
    struct Package: Encodable {
        var SPDXID: String
        var name: String
        var versionInfo: String?
        let downloadLocation = "NOASSERTION"
        let filesAnalyzed = false
        var licenseConcluded = "NOASSERTION"
        var licenseDeclared: String
        let copyrightText = "NOASSERTION"
        var externalRefs: [ExternalRef]?
        var primaryPackagePurpose: String?
        var sourceInfo: String?
    }
    struct ExternalRef: Encodable {
        var referenceCategory: String
        var referenceType: String
        var referenceLocator: String
    }
    struct Relationship: Encodable {
        var spdxElementId: String
        var relationshipType: String
        var relatedSpdxElement: String
    }
    struct ExtractedLicense: Encodable {
        var licenseId: String
        var extractedText: String
        var name: String
    }

    static func id(_ s: String) -> String {
        String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "-" })
    }

    static func document(_ inventory: Inventory, created: Date, serial: UUID) -> Document {
        var extracted: [String: ExtractedLicense] = [:]
        func declared(_ licenses: [String]) -> String {
            guard !licenses.isEmpty else { return "NOASSERTION" }
            let parts = licenses.map { l -> String in
                if SPDXLicenses.known.contains(l) { return l }
                let tokens = l.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" }).filter { !["AND", "OR", "WITH"].contains($0) }
                if tokens.count > 1, tokens.allSatisfy({ SPDXLicenses.known.contains(String($0)) }) { return "(" + l + ")" }
                let ref = SPDXLicenses.ref(l)
                extracted[ref] = ExtractedLicense(licenseId: ref, extractedText: l, name: l)
                return ref
            }
            return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")"
        }
        var packages = [
            Package(
                SPDXID: "SPDXRef-Subject", name: inventory.subject.name, versionInfo: inventory.subject.manifestDigest ?? inventory.subject.digest,
                licenseDeclared: "NOASSERTION", externalRefs: nil, primaryPackagePurpose: "CONTAINER", sourceInfo: nil)
        ]
        var relationships = [Relationship(spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: "SPDXRef-Subject")]
        if let d = inventory.distro {
            packages.append(
                Package(
                    SPDXID: "SPDXRef-OperatingSystem-\(id(d.id))", name: d.id, versionInfo: d.versionID, licenseDeclared: "NOASSERTION",
                    externalRefs: nil, primaryPackagePurpose: "OPERATING-SYSTEM", sourceInfo: nil))
            relationships.append(
                Relationship(
                    spdxElementId: "SPDXRef-Subject", relationshipType: "CONTAINS", relatedSpdxElement: "SPDXRef-OperatingSystem-\(id(d.id))"))
        }
        for (i, p) in inventory.packages.enumerated() {
            let spdxID = "SPDXRef-Package-\(id(p.type))-\(id(p.name))-\(i)"
            packages.append(
                Package(
                    SPDXID: spdxID, name: p.name, versionInfo: p.version, licenseDeclared: declared(p.licenses),
                    externalRefs: [ExternalRef(referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: p.purl)],
                    primaryPackagePurpose: "LIBRARY",
                    sourceInfo: "found in " + p.locations.joined(separator: ", ") + (p.layer.map { " (layer \($0))" } ?? "")))
            relationships.append(Relationship(spdxElementId: "SPDXRef-Subject", relationshipType: "CONTAINS", relatedSpdxElement: spdxID))
        }
        return Document(
            name: inventory.subject.name,
            documentNamespace: "https://warden.dev/spdx/\(id(inventory.subject.name))-\(serial.uuidString.lowercased())",
            creationInfo: CreationInfo(
                created: SBOMFormat.timestamp(created), creators: ["Tool: \(SBOMFormat.toolName)-\(SBOMFormat.toolVersion)"]),
            packages: packages, relationships: relationships,
            hasExtractedLicensingInfos: extracted.isEmpty ? nil : extracted.values.sorted { $0.licenseId < $1.licenseId })
    }
}
