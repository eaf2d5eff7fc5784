/// Which OS package installed a language package. Distributions backport fixes into the language packages they
/// ship without changing the upstream version (Debian's python3-jinja2 3.1.2-1+deb12u3 reports Jinja2 3.1.2 and
/// carries fixes released after it), so a vulnerability scanner has to know that the version to compare is the OS
/// package's, not the language package's.
///
/// A language package (pypi, npm, maven, golang) is owned when the file its cataloger read — a dist-info's
/// `METADATA`, an egg-info's `PKG-INFO` or the `.egg-info` file, a `package.json`, a Java archive (for an archive
/// nested in it too), a Go binary — or its dist-info or egg-info directory is among the files an OS package
/// installed, by the package manager's own records:
/// - dpkg: `var/lib/dpkg/info/<package>[:<arch>].list` (one absolute path a line), for the packages installed
///   according to `var/lib/dpkg/status`;
/// - apk: the `F:` (directory) and `R:` (file in it) lines of `lib/apk/db/installed`;
/// - RPM: the file names in each header (`RPM.installedPaths`).
///
/// The owner is recorded in the language package's metadata (`osPackage`, `osPackageType`, `osPackageVersion`,
/// `osPackageSource`, `osPackageSourceVersion`); purls are left as they are. A file listed by more than one package
/// goes to the first: dpkg before apk before RPM, and dpkg's lists by name.
enum Ownership {
    /// The facts recorded about a package that installed a language package's files.
    struct Owner: Equatable {
        var type: String
        var name: String
        var version: String
        /// The source package (dpkg's `Source`, apk's origin, the source rpm's name); the package itself without one.
        var source: String
        var sourceVersion: String

        var metadata: [String: String] {
            [
                "osPackage": name, "osPackageType": type, "osPackageVersion": version, "osPackageSource": source,
                "osPackageSourceVersion": sourceVersion,
            ]
        }
    }

    /// Whether `path` is one of dpkg's per-package file lists.
    static func isDpkgList(_ path: String) -> Bool {
        let prefix = "var/lib/dpkg/info/"
        return path.hasPrefix(prefix) && path.hasSuffix(".list") && !path.dropFirst(prefix.count).contains("/")
    }

    /// Keeps only the lines of a dpkg file list that could name a file a language cataloger reads, so the lists of
    /// a large image cost a small part of their size. A Go binary is not recognisable by name: the lines kept for it
    /// are those whose last component has no `.` outside `/usr/share` (a Go program named with an extension, or
    /// installed under `/usr/share`, is not attributed to its package).
    static let dpkgListCapture = Capture { _, bytes in
        var kept: [UInt8] = []
        forEachLine(bytes[...]) { line in
            guard let path = listedPath(line), mayDescribePackage(path) else { return }
            kept += line
            kept.append(UInt8(ascii: "\n"))
        }
        return kept
    }

    /// Calls `body` with each line of `bytes` (without its newline), in order, empty ones included; the lines are
    /// not collected first, so a file of many short lines costs no more than its size.
    static func forEachLine(_ bytes: ArraySlice<UInt8>, _ body: (ArraySlice<UInt8>) -> Void) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            body(bytes[start..<end])
            start = end == bytes.endIndex ? end : end + 1
        }
    }

    /// A file list's line as a path inside the image (without the leading `/`): lines must be absolute, with no
    /// empty, `.` or `..` component, as dpkg writes them; anything else (the `/.` line for the root, damaged or
    /// hostile lines) names nothing.
    static func listedPath(_ line: ArraySlice<UInt8>) -> String? {
        guard line.first == UInt8(ascii: "/"), line.count > 1, line.count <= maxPath + 1 else { return nil }
        let path = String(decoding: line.dropFirst(), as: UTF8.self)
        return relativePath(path)
    }

    /// `path` if it is relative, not empty, at most `maxPath` bytes long, and has no empty, `.` or `..` component;
    /// else nil.
    static func relativePath(_ path: String) -> String? {
        guard !path.isEmpty, path.utf8.count <= maxPath else { return nil }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
        return path
    }

    /// The longest path a package manager's record may name (Linux's PATH_MAX); longer ones name nothing.
    static let maxPath = 4096

    /// Whether a language cataloger could have read a package from the file at `path` (relative to the root).
    static func mayDescribePackage(_ path: String) -> Bool {
        if (path.hasSuffix("/METADATA") && path.contains(".dist-info/")) || (path.hasSuffix("/PKG-INFO") && path.contains(".egg-info/")) {
            return true
        }
        if path.hasSuffix(".dist-info") || path.hasSuffix(".egg-info") || path.hasSuffix("/package.json") || Java.isArchive(path) { return true }
        let name = path.split(separator: "/").last ?? ""
        return !name.contains(".") && !path.hasPrefix("usr/share/")
    }

    /// Records the owning OS package on every language package of `packages` whose files one of them installed.
    /// `packages` holds what the catalogers found in `fs` (the OS packages among them), `rpm` the RPM databases read.
    static func annotate(_ packages: inout [Package], _ fs: ImageFilesystem, rpm: [RPM.Database]) {
        // Per path that would make a package owned, the packages it would; the paths listed are checked against
        // these only, so nothing else of the (long) lists is held.
        var wanted: [String: [Int]] = [:]
        for (i, p) in packages.enumerated() where !["deb", "apk", "rpm"].contains(p.type) {
            guard let location = p.locations.first, let file = metadataFile(location, fs) else { continue }
            wanted[file, default: []].append(i)
            if let slash = file.lastIndex(of: "/") {
                let directory = String(file[..<slash])
                if directory.hasSuffix(".dist-info") || directory.hasSuffix(".egg-info") { wanted[directory, default: []].append(i) }
            }
        }
        guard !wanted.isEmpty else { return }
        let names = Set(wanted.keys.map { $0.split(separator: "/").last.map(String.init) ?? $0 })
        var matcher = Matcher(fs: fs, wanted: wanted, names: names)
        var owners: [Int: Owner] = [:]
        func claim(_ path: String, by owner: Owner) {
            for i in matcher.packages(at: path) where owners[i] == nil { owners[i] = owner }
        }
        for (path, owner) in dpkgLists(packages, fs) {
            guard let bytes = fs.content(path) else { continue }
            forEachLine(bytes[...]) { line in
                if let listed = listedPath(line) { claim(listed, by: owner) }
            }
        }
        if let bytes = fs.content("lib/apk/db/installed") {
            for (owner, paths) in apkRecords(bytes[...]) {
                for path in paths { claim(path, by: owner) }
            }
        }
        for database in rpm {
            for h in database.headers {
                guard let owner = rpmOwner(h) else { continue }
                for path in RPM.installedPaths(h) {
                    if path.hasPrefix("/"), let listed = relativePath(String(path.dropFirst())) { claim(listed, by: owner) }
                }
            }
        }
        for (i, owner) in owners {
            packages[i].metadata.merge(owner.metadata) { _, new in new }
        }
    }

    /// The file a package was read from, relative to the root: its location, or for a location inside an archive
    /// (`/app.jar:lib/inner.jar`) the archive in the image that holds it.
    static func metadataFile(_ location: String, _ fs: ImageFilesystem) -> String? {
        guard location.hasPrefix("/") else { return nil }
        let path = String(location.dropFirst())
        if fs.files[path] != nil { return path }
        var at = path.startIndex
        while let colon = path[at...].firstIndex(of: ":") {
            let prefix = String(path[..<colon])
            if fs.files[prefix] != nil, Java.isArchive(prefix) { return prefix }
            at = path.index(after: colon)
        }
        return nil
    }

    /// Finds the language packages a listed path makes owned: as written, else with its directory's symlinks
    /// followed (dpkg lists `/bin/…` where a merged-/usr image has `usr/bin/…`). A directory is resolved only for a
    /// path whose last component some wanted path has, when the image has no directory of that name, once; and
    /// only `maxResolved` directories of at most 32 components and 1 KiB, so hostile records cost little work.
    struct Matcher {
        let fs: ImageFilesystem
        let wanted: [String: [Int]]
        let names: Set<String>
        var directories: [String: String?] = [:]
        static let maxResolved = 50_000

        mutating func packages(at path: String) -> [Int] {
            if let found = wanted[path] { return found }
            guard let slash = path.lastIndex(of: "/") else { return [] }
            let name = String(path[path.index(after: slash)...])
            guard names.contains(name) else { return [] }
            let directory = String(path[..<slash])
            let resolved: String?
            if let cached = directories[directory] {
                resolved = cached
            } else if directories.count < Self.maxResolved, fs.files[directory]?.kind != .directory, directory.utf8.count <= 1024,
                directory.utf8.count(where: { $0 == UInt8(ascii: "/") }) < 32
            {
                resolved = fs.resolve(directory)
                directories[directory] = resolved
            } else {
                resolved = nil
            }
            guard let resolved, resolved != directory else { return [] }
            return wanted[resolved.isEmpty ? name : resolved + "/" + name] ?? []
        }
    }

    /// dpkg's file lists, sorted, each with the installed package (from `var/lib/dpkg/status`) it belongs to:
    /// `<name>.list`, or `<name>:<arch>.list` for a package installed for more than one architecture.
    static func dpkgLists(_ packages: [Package], _ fs: ImageFilesystem) -> [(String, Owner)] {
        var installed: [String: [Package]] = [:]
        for p in packages where p.type == "deb" && p.locations.first == "/var/lib/dpkg/status" { installed[p.name, default: []].append(p) }
        guard !installed.isEmpty else { return [] }
        var out: [(String, Owner)] = []
        for path in fs.paths(where: isDpkgList) {
            let stem = path.dropFirst("var/lib/dpkg/info/".count).dropLast(".list".count)
            let parts = stem.split(separator: ":", maxSplits: 1)
            guard let name = parts.first.map(String.init), let candidates = installed[name] else { continue }
            let arch = parts.count > 1 ? String(parts[1]) : nil
            guard let p = candidates.first(where: { arch == nil || $0.metadata["architecture"] == arch }) else { continue }
            out.append(
                (
                    path,
                    Owner(
                        type: "deb", name: p.name, version: p.version, source: p.metadata["source"] ?? p.name,
                        sourceVersion: p.metadata["sourceVersion"] ?? p.version)
                ))
        }
        return out
    }

    /// The packages of an apk installed database with the paths each installed (relative to the root): its `F:`
    /// directories and the `R:` files in the directory named last. Records without `P:` and `V:` are skipped, as
    /// the apk cataloger skips them; paths with empty, `.` or `..` components are left out.
    static func apkRecords(_ bytes: ArraySlice<UInt8>) -> [(Owner, [String])] {
        var out: [(Owner, [String])] = []
        var fields: [UInt8: String] = [:]
        var paths: [String] = []
        var directory = ""
        func finish() {
            if let name = fields[UInt8(ascii: "P")], let version = fields[UInt8(ascii: "V")], !paths.isEmpty {
                let origin = fields[UInt8(ascii: "o")] ?? ""
                out.append((Owner(type: "apk", name: name, version: version, source: origin.isEmpty ? name : origin, sourceVersion: version), paths))
            }
            fields = [:]
            paths = []
            directory = ""
        }
        forEachLine(bytes) { line in
            if line.isEmpty {
                finish()
                return
            }
            guard line.count >= 2, line[line.startIndex + 1] == UInt8(ascii: ":"), let key = line.first else { return }
            let value = String(decoding: line.dropFirst(2), as: UTF8.self)
            switch key {
            case UInt8(ascii: "F"):
                directory = value
                if let d = relativePath(value) { paths.append(d) }
            case UInt8(ascii: "R"):
                if let p = relativePath(directory.isEmpty ? value : directory + "/" + value) { paths.append(p) }
            default:
                if fields[key] == nil { fields[key] = value }
            }
        }
        finish()
        return out
    }

    /// The owner an RPM header describes: the source is the source rpm's name and version
    /// (`name-version-release.src.rpm`, with the package's epoch), the package itself without one.
    static func rpmOwner(_ h: RPM.Header) -> Owner? {
        guard let name = RPM.listedName(h) else { return nil }
        let version = RPM.fullVersion(h)
        var source = name
        var sourceVersion = version
        if var srpm = h.strings[1044]?.first, !srpm.isEmpty {
            for suffix in [".src.rpm", ".nosrc.rpm"] where srpm.hasSuffix(suffix) { srpm.removeLast(suffix.count) }
            let parts = srpm.split(separator: "-", omittingEmptySubsequences: false)
            if parts.count >= 3, parts.suffix(2).allSatisfy({ !$0.isEmpty }), !parts.dropLast(2).joined().isEmpty {
                source = parts.dropLast(2).joined(separator: "-")
                sourceVersion = (h.int32s[1003]?.first.map { "\($0):" } ?? "") + parts.suffix(2).joined(separator: "-")
            } else {
                source = srpm
            }
        }
        return Owner(type: "rpm", name: name, version: version, source: source, sourceVersion: sourceVersion)
    }
}
