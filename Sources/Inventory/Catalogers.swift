import CEL

/// What to read from an image and how to turn it into packages.
public enum Catalogers {
    /// How a file's content is needed by some cataloger, if at all (called for every regular file: cheap checks
    /// only).
    @Sendable public static func capture(_ path: String, _ size: Int, _ mode: Int) -> Capture? {
        // Database and metadata files first: they may carry an executable bit too (Debian ships some package.json
        // files 0755).
        if wants(path, size) { return .whole }
        if Ownership.isDpkgList(path) { return Ownership.dpkgListCapture }
        if Java.isArchive(path) { return Java.capture }
        if mode & 0o111 != 0, size >= 1024, GoBinaries.candidate(path) { return GoBinaries.capture }
        return nil
    }

    /// Whether a file's whole content is needed.
    static func wants(_ path: String, _ size: Int) -> Bool {
        if size > 64 << 20 { return false }
        if path == "etc/os-release" || path == "usr/lib/os-release" { return true }
        if path == "var/lib/dpkg/status" || path.hasPrefix("var/lib/dpkg/status.d/") { return true }
        if path.hasPrefix("usr/share/doc/"), path.hasSuffix("/copyright") { return true }
        if path == "lib/apk/db/installed" { return true }
        if RPM.databases.contains(path) { return true }
        if path.hasSuffix("/METADATA"), path.contains(".dist-info/") { return true }
        if path.hasSuffix("/PKG-INFO"), path.contains(".egg-info/") { return true }
        if path.hasSuffix(".egg-info"), size < 1 << 20 { return true }
        if path.hasSuffix("/package.json") || path == "package.json" { return true }
        return false
    }

    /// Every package the catalogers recognise in `fs`, sorted by type, name and version; a language package
    /// installed by an OS package names it in its metadata (see `Ownership`).
    public static func catalog(_ fs: ImageFilesystem) -> (Distro?, [Package]) {
        let distro = OSRelease.read(fs)
        let rpmDatabases = RPM.read(fs)
        var packages: [Package] = []
        packages += Dpkg.catalog(fs, distro: distro)
        packages += Apk.catalog(fs, distro: distro)
        packages += RPM.catalog(rpmDatabases, distro: distro)
        packages += Python.catalog(fs)
        packages += NPM.catalog(fs)
        packages += GoBinaries.catalog(fs)
        packages += Java.catalog(fs)
        Ownership.annotate(&packages, fs, rpm: rpmDatabases)
        packages.sort { ($0.type, $0.name, $0.version, $0.locations.first ?? "") < ($1.type, $1.name, $1.version, $1.locations.first ?? "") }
        return (distro, packages)
    }

    /// The earliest layer from which a package stayed in a database file: walking the file's versions back from the
    /// last, the package is attributed to the oldest version in the unbroken run that still lists it.
    static func introducingLayer(_ fs: ImageFilesystem, path: String, key: String, keys: (ArraySlice<UInt8>) -> Set<String>) -> String? {
        guard let versions = fs.versions[path], let last = versions.last else { return nil }
        var layer = last.layer
        for v in versions.dropLast().reversed() {
            guard keys(v.bytes[...]).contains(key) else { break }
            layer = v.layer
        }
        return fs.layers[layer].digest
    }

    /// Splits RFC 822-style text into paragraphs of fields (continuation lines joined with "\n").
    static func paragraphs(_ bytes: ArraySlice<UInt8>) -> [[(String, String)]] {
        var out: [[(String, String)]] = []
        var current: [(String, String)] = []
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                if !current.isEmpty { out.append(current) }
                current = []
                continue
            }
            if line.first == 0x20 || line.first == 0x09 {
                if !current.isEmpty { current[current.count - 1].1 += "\n" + String(decoding: line.dropFirst(), as: UTF8.self) }
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let key = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces
            current.append((key, value))
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// `/etc/os-release`, else `/usr/lib/os-release`.
public enum OSRelease {
    public static func read(_ fs: ImageFilesystem) -> Distro? {
        guard let bytes = fs.content("etc/os-release") ?? fs.content("usr/lib/os-release") else { return nil }
        var fields: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let l = line.trimmingCharacters(in: " \t")
            guard !l.hasPrefix("#"), let eq = l.firstIndex(of: "=") else { continue }
            var v = String(l[l.index(after: eq)...])
            if v.count >= 2, let q = v.first, q == "\"" || q == "'", v.last == q { v = String(v.dropFirst().dropLast()) }
            fields[String(l[..<eq])] = v.replacingOccurrences(of: "\\\"", with: "\"")
        }
        guard let id = fields["ID"] else { return nil }
        return Distro(
            id: id, versionID: fields["VERSION_ID"], versionCodename: fields["VERSION_CODENAME"], name: fields["NAME"],
            prettyName: fields["PRETTY_NAME"], idLike: (fields["ID_LIKE"] ?? "").split(separator: " ").map(String.init))
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}

/// Debian and Ubuntu: `var/lib/dpkg/status` and distroless `var/lib/dpkg/status.d/*`; licenses from
/// `usr/share/doc/<package>/copyright`.
enum Dpkg {
    static func catalog(_ fs: ImageFilesystem, distro: Distro?) -> [Package] {
        var sources = ["var/lib/dpkg/status"].filter { fs.files[$0] != nil }
        sources += fs.paths(where: { $0.hasPrefix("var/lib/dpkg/status.d/") && !$0.hasSuffix(".md5sums") })
        var out: [Package] = []
        for path in sources {
            guard let bytes = fs.content(path) else { continue }
            for p in Catalogers.paragraphs(bytes[...]) {
                let f = Dictionary(p, uniquingKeysWith: { a, _ in a })
                guard let name = f["Package"], let version = f["Version"], !name.isEmpty, !version.isEmpty else { continue }
                // Only installed packages (status "install ok installed"; distroless entries carry no Status).
                if let status = f["Status"], !status.hasSuffix(" installed") { continue }
                let arch = f["Architecture"] ?? ""
                var source = ""
                var sourceVersion = ""
                if let s = f["Source"] {
                    // `Source: name (version)`; an empty or blank field (hostile or damaged) names no source.
                    let parts = s.split(separator: " ", maxSplits: 1)
                    if let first = parts.first { source = String(first) }
                    if parts.count > 1 { sourceVersion = parts[1].trimmingCharacters(in: "() ").description }
                }
                var qualifiers = ["arch": arch]
                if let distro {
                    qualifiers["distro"] = distro.id + (distro.versionID.map { "-" + $0 } ?? "")
                }
                if !source.isEmpty, source != name {
                    qualifiers["upstream"] = source + (sourceVersion.isEmpty || sourceVersion == version ? "" : "@" + sourceVersion)
                }
                var metadata = ["architecture": arch]
                if !source.isEmpty { metadata["source"] = source }
                if !sourceVersion.isEmpty { metadata["sourceVersion"] = sourceVersion }
                let copyright = "usr/share/doc/\(name)/copyright"
                var locations = ["/" + path]
                let licenses = fs.content(copyright).map { licensesFromCopyright($0) } ?? []
                if fs.files[copyright] != nil { locations.append("/" + copyright) }
                let key = name + "\u{0}" + version
                out.append(
                    Package(
                        type: "deb", name: name, version: version,
                        purl: PURL.make(type: "deb", namespace: distro?.id ?? "debian", name: name, version: version, qualifiers: qualifiers),
                        licenses: licenses, locations: locations,
                        layer: Catalogers.introducingLayer(fs, path: path, key: key, keys: keys), metadata: metadata))
            }
        }
        return out
    }

    /// name + NUL + version of the installed packages in one version of a status file.
    static func keys(_ bytes: ArraySlice<UInt8>) -> Set<String> {
        var out: Set<String> = []
        for p in Catalogers.paragraphs(bytes) {
            let f = Dictionary(p, uniquingKeysWith: { a, _ in a })
            if let status = f["Status"], !status.hasSuffix(" installed") { continue }
            if let n = f["Package"], let v = f["Version"] { out.insert(n + "\u{0}" + v) }
        }
        return out
    }

    /// `License:` fields of a machine-readable copyright file, and `/usr/share/common-licenses/NAME` references of
    /// free-form ones; sorted, without duplicates.
    static func licensesFromCopyright(_ bytes: [UInt8]) -> [String] {
        var found: Set<String> = []
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("License:") {
                let value = line.dropFirst("License:".count).trimmingCharacters(in: " \t\r")
                if let first = value.split(separator: " ").first, let c = first.first, c.isLetter || c.isNumber { found.insert(String(first)) }
            }
            var rest = line[...]
            while let r = rest.range(of: "/usr/share/common-licenses/") {
                let name = rest[r.upperBound...].prefix { $0.isLetter || $0.isNumber || "-.+_".contains($0) }
                var n = String(name)
                while n.hasSuffix(".") { n.removeLast() }
                if !n.isEmpty { found.insert(n) }
                rest = rest[r.upperBound...]
            }
        }
        return found.sorted()
    }
}

/// Alpine: `lib/apk/db/installed` (`P:` name, `V:` version, `A:` arch, `o:` origin, `L:` license).
enum Apk {
    static func catalog(_ fs: ImageFilesystem, distro: Distro?) -> [Package] {
        let path = "lib/apk/db/installed"
        guard let bytes = fs.content(path) else { return [] }
        var out: [Package] = []
        for entry in records(bytes[...]) {
            guard let name = entry["P"], let version = entry["V"] else { continue }
            let arch = entry["A"] ?? ""
            let origin = entry["o"] ?? ""
            var qualifiers = ["arch": arch]
            if let distro { qualifiers["distro"] = distro.id + (distro.versionID.map { "-" + $0 } ?? "") }
            if !origin.isEmpty, origin != name { qualifiers["upstream"] = origin }
            var metadata = ["architecture": arch]
            if !origin.isEmpty { metadata["origin"] = origin }
            out.append(
                Package(
                    type: "apk", name: name, version: version,
                    purl: PURL.make(type: "apk", namespace: distro?.id ?? "alpine", name: name, version: version, qualifiers: qualifiers),
                    licenses: (entry["L"] ?? "").isEmpty ? [] : [entry["L"]!], locations: ["/" + path],
                    layer: Catalogers.introducingLayer(fs, path: path, key: name + "\u{0}" + version) {
                        Set(records($0).compactMap { r in r["P"].flatMap { p in r["V"].map { p + "\u{0}" + $0 } } })
                    }, metadata: metadata))
        }
        return out
    }

    static func records(_ bytes: ArraySlice<UInt8>) -> [[String: String]] {
        var out: [[String: String]] = []
        var current: [String: String] = [:]
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.isEmpty {
                if !current.isEmpty { out.append(current) }
                current = [:]
                continue
            }
            guard line.count >= 2, line[line.startIndex + 1] == UInt8(ascii: ":") else { continue }
            let key = String(decoding: line.prefix(1), as: UTF8.self)
            if current[key] == nil { current[key] = String(decoding: line.dropFirst(2), as: UTF8.self) }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

/// Python: `*.dist-info/METADATA` (wheels, pip) and `*.egg-info/PKG-INFO` or `*.egg-info` files (eggs, distutils).
enum Python {
    static func catalog(_ fs: ImageFilesystem) -> [Package] {
        let paths = fs.paths(where: {
            ($0.hasSuffix("/METADATA") && $0.contains(".dist-info/")) || ($0.hasSuffix("/PKG-INFO") && $0.contains(".egg-info/"))
                || $0.hasSuffix(".egg-info")
        })
        var out: [Package] = []
        for path in paths {
            guard let bytes = fs.content(path) else { continue }
            // The header block ends at the first blank line; the description follows.
            let header = Catalogers.paragraphs(bytes[...]).first ?? []
            var name = ""
            var version = ""
            var licenses: [String] = []
            var classifiers: [String] = []
            for (k, v) in header {
                switch k {
                case "Name": name = v
                case "Version": version = v
                case "License-Expression": licenses = [v]
                case "License" where licenses.isEmpty && !v.isEmpty && v != "UNKNOWN" && !v.contains("\n"): licenses = [v]
                case "Classifier" where v.hasPrefix("License :: "):
                    if let last = v.components(separatedBy: " :: ").last, last != "OSI Approved" { classifiers.append(last) }
                default: break
                }
            }
            guard !name.isEmpty, !version.isEmpty else { continue }
            if licenses.isEmpty { licenses = classifiers }
            // The PEP 503 form names the package (as pip and syft do: "Jinja2" is jinja2); the purl uses it too.
            out.append(
                Package(
                    type: "pypi", name: normalizedName(name), version: version,
                    purl: PURL.make(type: "pypi", name: normalizedName(name), version: version),
                    licenses: licenses, locations: ["/" + path], layer: fs.layer(of: path)?.digest))
        }
        return out
    }

    /// PEP 503 (`PURL.pep503`): pip's and syft's name for a package ("Jinja2" is jinja2).
    static func normalizedName(_ name: String) -> String { PURL.pep503(name) }
}

/// npm: every `package.json` that names a package and a version — installed modules under `node_modules`,
/// Debian's `/usr/share/nodejs`, and applications themselves (as syft reads images).
enum NPM {
    static func catalog(_ fs: ImageFilesystem) -> [Package] {
        var out: [Package] = []
        for path in fs.paths(where: { $0.hasSuffix("/package.json") || $0 == "package.json" }) {
            guard let bytes = fs.content(path), let doc = try? Value.parseJSON(bytes), case .map = doc,
                case .string(let name)? = doc["name"], case .string(let version)? = doc["version"], !name.isEmpty, !version.isEmpty
            else { continue }
            var licenses: [String] = []
            switch doc["license"] {
            case .string(let l)?: licenses = [l]
            case .map?: if case .string(let t)? = doc["license"]?["type"] { licenses = [t] }
            default: break
            }
            if licenses.isEmpty, case .list(let ls)? = doc["licenses"] {
                licenses = ls.compactMap { if case .string(let t)? = $0["type"] { t } else { nil } }
            }
            var namespace: String?
            var bare = name
            if name.hasPrefix("@"), let slash = name.firstIndex(of: "/") {
                namespace = String(name[..<slash])
                bare = String(name[name.index(after: slash)...])
            }
            out.append(
                Package(
                    type: "npm", name: name, version: version, purl: PURL.make(type: "npm", namespace: namespace, name: bare, version: version),
                    licenses: licenses, locations: ["/" + path], layer: fs.layer(of: path)?.digest))
        }
        return out
    }
}
