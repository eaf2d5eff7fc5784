import CEL

/// Reads SBOMs written by any tool — CycloneDX JSON (1.2 and later) and SPDX 2.x JSON — into an inventory, so
/// that scanning and policies can start from a file.
public enum SBOMReader {
    public static func read(_ bytes: [UInt8], name: String) throws -> Inventory {
        let doc: Value
        do { doc = try Value.parseJSON(bytes) } catch let e as JSONError {
            throw InventoryError(.malformed, "\(name):\(e)")
        }
        if case .string("CycloneDX")? = doc["bomFormat"] { return cycloneDX(doc, name: name) }
        if case .string(let v)? = doc["spdxVersion"], v.hasPrefix("SPDX-2.") { return spdx(doc, name: name) }
        throw InventoryError(.unsupported, "\(name): neither CycloneDX JSON (bomFormat) nor SPDX 2 JSON (spdxVersion)")
    }

    static func cycloneDX(_ doc: Value, name: String) -> Inventory {
        var packages: [Package] = []
        var distro: Distro?
        func walk(_ components: Value?) {
            guard case .list(let items)? = components else { return }
            for c in items {
                let type: String = if case .string(let t)? = c["type"] { t } else { "" }
                let cname: String = if case .string(let n)? = c["name"] { n } else { "" }
                let version: String = if case .string(let v)? = c["version"] { v } else { "" }
                if type == "operating-system", distro == nil {
                    distro = Distro(
                        id: cname, versionID: version.isEmpty ? nil : version, versionCodename: nil, name: nil, prettyName: nil, idLike: [])
                }
                if case .string(let purl)? = c["purl"], let parsed = PURL.parse(purl) {
                    var licenses: [String] = []
                    if case .list(let ls)? = c["licenses"] {
                        for l in ls {
                            if case .string(let e)? = l["expression"] { licenses.append(e) }
                            if case .string(let id)? = l["license"]?["id"] { licenses.append(id) }
                            if case .string(let n)? = l["license"]?["name"] { licenses.append(n) }
                        }
                    }
                    packages.append(
                        Package(
                            type: parsed.type, name: cname.isEmpty ? parsed.name : cname, version: version.isEmpty ? parsed.version : version,
                            purl: purl, licenses: licenses, locations: []))
                }
                walk(c["components"])
            }
        }
        walk(doc["components"])
        return Inventory(subject: .init(name: name, digest: nil, manifestDigest: nil, platform: nil), distro: distro, layers: [], packages: packages)
    }

    static func spdx(_ doc: Value, name: String) -> Inventory {
        var packages: [Package] = []
        guard case .list(let items)? = doc["packages"] else {
            return Inventory(subject: .init(name: name, digest: nil, manifestDigest: nil, platform: nil), distro: nil, layers: [], packages: [])
        }
        // The package the document describes is the subject (the image), not one of its packages.
        var described: Set<String> = []
        if case .list(let ids)? = doc["documentDescribes"] { for case .string(let id) in ids { described.insert(id) } }
        if case .list(let rels)? = doc["relationships"] {
            for r in rels {
                if case .string("DESCRIBES")? = r["relationshipType"], case .string("SPDXRef-DOCUMENT")? = r["spdxElementId"],
                    case .string(let id)? = r["relatedSpdxElement"]
                {
                    described.insert(id)
                }
            }
        }
        for p in items {
            if case .string(let id)? = p["SPDXID"], described.contains(id) { continue }
            guard case .list(let refs)? = p["externalRefs"] else { continue }
            let purl = refs.lazy.compactMap { r -> String? in
                guard case .string("purl")? = r["referenceType"], case .string(let l)? = r["referenceLocator"] else { return nil }
                return l
            }.first
            guard let purl, let parsed = PURL.parse(purl) else { continue }
            let pname: String = if case .string(let n)? = p["name"] { n } else { parsed.name }
            let version: String = if case .string(let v)? = p["versionInfo"] { v } else { parsed.version }
            var licenses: [String] = []
            for key in ["licenseDeclared", "licenseConcluded"] {
                if licenses.isEmpty, case .string(let l)? = p[key], l != "NOASSERTION", l != "NONE" { licenses = [l] }
            }
            packages.append(Package(type: parsed.type, name: pname, version: version, purl: purl, licenses: licenses, locations: []))
        }
        return Inventory(subject: .init(name: name, digest: nil, manifestDigest: nil, platform: nil), distro: nil, layers: [], packages: packages)
    }
}

extension PURL {
    /// Type, namespace, name and version of a purl (percent-decoded), or nil if it is not one.
    public static func parse(_ s: String) -> (type: String, namespace: String, name: String, version: String)? {
        guard s.hasPrefix("pkg:") else { return nil }
        var rest = Substring(s.dropFirst(4))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        if let q = rest.firstIndex(of: "?") { rest = rest[..<q] }
        var version = ""
        if let at = rest.lastIndex(of: "@"), rest[..<at].contains("/") {
            version = decode(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2 else { return nil }
        return (String(parts[0]).lowercased(), parts[1..<(parts.count - 1)].map(decode).joined(separator: "/"), decode(parts.last!), version)
    }

    /// The qualifiers of a purl (`?arch=amd64&distro=debian-12`), percent-decoded; empty when there are none.
    public static func qualifiers(_ s: String) -> [String: String] {
        var rest = Substring(s)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        guard let q = rest.firstIndex(of: "?") else { return [:] }
        var out: [String: String] = [:]
        for pair in rest[rest.index(after: q)...].split(separator: "&") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[decode(pair[..<eq]).lowercased()] = decode(pair[pair.index(after: eq)...])
        }
        return out
    }

    static func decode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var i = s.utf8.startIndex
        let u = s.utf8
        while i < u.endIndex {
            if u[i] == UInt8(ascii: "%"), let a = u.index(i, offsetBy: 1, limitedBy: u.endIndex),
                let b = u.index(i, offsetBy: 2, limitedBy: u.endIndex),
                b < u.endIndex, let hi = hex(u[a]), let lo = hex(u[b])
            {
                bytes.append(hi << 4 | lo)
                i = u.index(after: b)
                continue
            }
            bytes.append(u[i])
            i = u.index(after: i)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
