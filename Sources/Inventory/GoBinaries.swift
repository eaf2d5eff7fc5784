/// Go executables: the module path, version and dependencies the Go toolchain (1.18 and later) writes into the
/// `.go.buildinfo` section of every binary it links.
enum GoBinaries {
    /// Executables worth opening: anything executable outside the places that hold only scripts and libraries.
    static func candidate(_ path: String) -> Bool {
        !(path.hasSuffix(".sh") || path.hasSuffix(".py") || path.hasSuffix(".pl") || path.hasSuffix(".so") || path.contains(".so."))
    }

    /// Reads the binary once and keeps only its build information ("go1.x\n" + the module text), if it has any.
    static let capture = Capture { _, bytes in
        guard let (version, modinfo) = buildInfo(bytes) else { return nil }
        var text = version + "\n" + modinfo
        // A main module built without a version (Debian's GOPATH builds, `go build` in a checkout) often carries
        // its release in the binary as a NUL-terminated semantic version; syft reads it the same way.
        if !modinfo.contains("\nmod\t") && !modinfo.hasPrefix("mod\t"), let v = embeddedVersion(bytes) { text += "\nwarden-version\t" + v }
        return Array(text.utf8)
    }

    /// The first `v?N.N.N[-suffix][+build]` string in the binary that ends with NUL and starts after NUL or a byte
    /// that is not UTF-8 (the pattern syft applies).
    static func embeddedVersion(_ b: [UInt8]) -> String? {
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        func isWord(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x5F }
        /// Whether the byte at `k` reads as NUL or as U+FFFD (a byte that is not part of valid UTF-8), as Go's regexp
        /// decodes binary input.
        func delimiter(_ k: Int) -> Bool {
            let c = b[k]
            if c == 0 { return true }
            if c < 0x80 { return false }
            if c >= 0xC0 { return true }  // a lead byte followed by ASCII: truncated sequence
            // A continuation byte: valid only if it ends a well-formed sequence starting within the 3 bytes before.
            for back in 1...3 where k - back >= 0 {
                let lead = b[k - back]
                if lead & 0xC0 == 0x80 { continue }
                let length = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 0
                return length != back + 1
            }
            return true
        }
        var i = 0
        while i + 6 < b.count {
            guard delimiter(i) else {
                i += 1
                continue
            }
            var j = i + 1
            if j < b.count, b[j] == UInt8(ascii: "v") { j += 1 }
            var ok = true
            for part in 0..<3 {
                let start = j
                while j < b.count, isDigit(b[j]) { j += 1 }
                if j == start { ok = false; break }
                if part < 2 {
                    guard j < b.count, b[j] == UInt8(ascii: ".") else { ok = false; break }
                    j += 1
                }
            }
            if ok {
                while j < b.count, isWord(b[j]) || b[j] == UInt8(ascii: "-") { j += 1 }
                while j < b.count, isWord(b[j]) || b[j] == UInt8(ascii: "+") { j += 1 }
                if j < b.count, b[j] == 0 {
                    let v = String(decoding: b[(i + 1)..<j], as: UTF8.self)
                    return v.hasPrefix("v") ? v : "v" + v  // Go module versions carry the v
                }
            }
            i += 1
        }
        return nil
    }

    /// The Go version and the module information text of an ELF Go binary.
    static func buildInfo(_ b: [UInt8]) -> (String, String)? {
        guard b.count > 64, b[0] == 0x7F, b[1] == UInt8(ascii: "E"), b[2] == UInt8(ascii: "L"), b[3] == UInt8(ascii: "F") else { return nil }
        guard let start = section(b, named: ".go.buildinfo") ?? scan(b) else { return nil }
        let magicBytes: [UInt8] = [0xFF] + Array(" Go buildinf:".utf8)
        // The offset comes from the file: any value, negative or near Int.max, must fail the check, not trap.
        guard start >= 0, start <= b.count - 32, Array(b[start..<start + 14]) == magicBytes else { return nil }
        let flags = b[start + 15]
        // Go 1.18+: version and module text stored inline as length-prefixed strings after the 32-byte header.
        guard flags & 0x2 != 0 else { return nil }
        var i = start + 32
        guard let version = varBytes(b, &i), var mod = varBytes(b, &i) else { return nil }
        // The module text is wrapped in 16-byte sentinels (which are not UTF-8: strip them before decoding).
        if mod.count >= 33 { mod = Array(mod[16..<(mod.count - 16)]) }
        return (String(decoding: version, as: UTF8.self), String(decoding: mod, as: UTF8.self))
    }

    static func varBytes(_ b: [UInt8], _ i: inout Int) -> [UInt8]? {
        var length = 0
        var shift = 0
        while i < b.count {
            let byte = b[i]
            i += 1
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            if shift > 28 { return nil }
        }
        guard length >= 0, length <= b.count - i else { return nil }
        defer { i += length }
        return Array(b[i..<i + length])
    }

    /// File offset of an ELF section by name (32- or 64-bit, either byte order).
    static func section(_ b: [UInt8], named name: String) -> Int? {
        let is64 = b[4] == 2
        let little = b[5] == 1
        func read(_ at: Int, _ size: Int) -> Int? {
            guard at >= 0, at <= b.count - size else { return nil }
            var v = 0
            for k in 0..<size { v |= Int(b[at + (little ? k : size - 1 - k)]) << (8 * k) }
            return v
        }
        guard let shoff = read(is64 ? 0x28 : 0x20, is64 ? 8 : 4), let shentsize = read(is64 ? 0x3A : 0x2E, 2),
            let shnum = read(is64 ? 0x3C : 0x30, 2), let shstrndx = read(is64 ? 0x3E : 0x32, 2), shoff > 0, shnum > 0, shnum < 65_536,
            shstrndx < shnum, shentsize >= (is64 ? 64 : 40)
        else { return nil }
        // Offsets and sizes read from the file are checked with overflow-reporting arithmetic.
        func header(_ k: Int) -> (name: Int, offset: Int)? {
            let (step, o1) = k.multipliedReportingOverflow(by: shentsize)
            let (h, o2) = shoff.addingReportingOverflow(step)
            guard !o1, !o2, h >= 0, h <= b.count - 0x20, let n = read(h, 4), let off = read(h + (is64 ? 0x18 : 0x10), is64 ? 8 : 4), off >= 0
            else { return nil }
            return (n, off)
        }
        guard let strtab = header(shstrndx)?.offset else { return nil }
        let wanted = Array(name.utf8)
        for k in 0..<shnum {
            guard let h = header(k) else { return nil }
            let (at, overflow) = strtab.addingReportingOverflow(h.name)
            guard !overflow, at >= 0, at < b.count - wanted.count else { continue }
            if b[at..<at + wanted.count].elementsEqual(wanted), b[at + wanted.count] == 0 { return h.offset }
        }
        return nil
    }

    /// Without section headers: the magic at a 16-byte boundary.
    static func scan(_ b: [UInt8]) -> Int? {
        let first = UInt8(0xFF)
        var i = 0
        while i + 32 <= b.count {
            if b[i] == first, b[i + 1] == 0x20, b[i + 2] == UInt8(ascii: "G"), b[i + 3] == UInt8(ascii: "o"),
                b[(i + 4)..<(i + 14)].elementsEqual(" buildinf:".utf8)
            {
                return i
            }
            i += 16
        }
        return nil
    }

    /// Packages of every captured Go binary: the main module, its dependencies (replacements applied), and the
    /// standard library of the toolchain that built it.
    static func catalog(_ fs: ImageFilesystem) -> [Package] {
        var out: [Package] = []
        for (path, versions) in fs.versions.sorted(by: { $0.key < $1.key }) {
            guard let last = versions.last, fs.files[path]?.kind == .file, last.bytes.starts(with: Array("go".utf8)) else { continue }
            let text = String(decoding: last.bytes, as: UTF8.self)
            guard let newline = text.firstIndex(of: "\n") else { continue }
            let goVersion = String(text[..<newline])
            guard goVersion.hasPrefix("go1") || goVersion.hasPrefix("devel") else { continue }
            let layer = fs.layers[fs.files[path]!.layer].digest
            var modules: [(path: String, version: String, sum: String, main: Bool)] = []
            var settings: [String: String] = [:]
            var mainPackage: String?
            var embedded: String?
            for line in text[text.index(after: newline)...].split(separator: "\n") {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                switch f.first {
                case "path" where f.count >= 2: mainPackage = f[1]
                case "warden-version" where f.count >= 2: embedded = f[1]
                case "mod" where f.count >= 3: modules.append((f[1], f[2], f.count > 3 ? f[3] : "", true))
                case "dep" where f.count >= 3: modules.append((f[1], f[2], f.count > 3 ? f[3] : "", false))
                case "=>" where f.count >= 3 && !modules.isEmpty:
                    let replaced = modules.removeLast()
                    modules.append((f[1], f[2], f.count > 3 ? f[3] : "", replaced.main))
                case "build" where f.count >= 2:
                    if let eq = f[1].firstIndex(of: "=") { settings[String(f[1][..<eq])] = String(f[1][f[1].index(after: eq)...]) }
                default: break
                }
            }
            // Built outside module mode (as Debian builds Go programs): only the main package's path is recorded.
            if !modules.contains(where: \.main), let mainPackage { modules.insert((mainPackage, embedded ?? "(devel)", "", true), at: 0) }
            var metadata = ["goVersion": goVersion]
            if let arch = settings["GOARCH"] { metadata["architecture"] = arch }
            for m in modules {
                var md = metadata
                if !m.sum.isEmpty { md["h1Digest"] = m.sum }
                if m.main { md["mainModule"] = "true" }
                out.append(
                    Package(
                        type: "golang", name: m.path, version: m.version,
                        purl: goPURL(m.path, m.version), locations: ["/" + path], layer: layer, metadata: md))
            }
            let stdlib = goVersion.hasPrefix("go") ? String(goVersion.dropFirst(2)).split(separator: " ").first.map(String.init) ?? "" : goVersion
            out.append(
                Package(
                    type: "golang", name: "stdlib", version: "go" + stdlib, purl: PURL.make(type: "golang", name: "stdlib", version: stdlib),
                    licenses: ["BSD-3-Clause"], locations: ["/" + path], layer: layer, metadata: metadata))
        }
        return out
    }

    /// `pkg:golang/<module path>@<version>`: the path's leading segments are the namespace. A package path on a
    /// known host (github.com/OWNER/REPO/…) names its module and keeps the rest as the subpath.
    static func goPURL(_ path: String, _ version: String) -> String {
        var parts = path.split(separator: "/").map(String.init)
        var subpath: String?
        if ["github.com", "gitlab.com", "bitbucket.org"].contains(parts.first ?? ""), parts.count > 3 {
            subpath = parts[3...].joined(separator: "/")
            parts = Array(parts[..<3])
        }
        return PURL.make(
            type: "golang", namespace: parts.dropLast().joined(separator: "/"), name: parts.last ?? path,
            version: version == "(devel)" ? nil : version, subpath: subpath)
    }
}
