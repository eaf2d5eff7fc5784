import CEL
import SystemZlib

/// Java archives (jar, war, ear and the archives nested in them): Maven coordinates from
/// `META-INF/maven/<group>/<artifact>/pom.properties`, else the manifest's title and version, else the file name.
enum Java {
    static let extensions = [".jar", ".war", ".ear", ".jpi", ".hpi", ".par", ".sar", ".nar", ".kar", ".rar", ".lpkg"]
    /// Archives nested deeper than this (an archive in an archive … in the file) are not opened.
    static let maxNesting = 4
    /// Bytes an archive's entries may inflate to in total, nested archives included (counted against the file they
    /// are in): 16 times the file's size, at least 16 MiB and at most 1 GiB. Entries are counted at the size they
    /// declare (the buffer inflated into), stored ones at theirs, so a directory that lists a large entry many
    /// times, or entries whose data overlap, stop costing work once the budget is spent.
    static func inflationBudget(archiveSize: Int) -> Int {
        min(1 << 30, max(16 << 20, archiveSize.multipliedReportingOverflow(by: 16).overflow ? Int.max : archiveSize * 16))
    }

    static func isArchive(_ path: String) -> Bool {
        let lower = path.lowercased()
        return extensions.contains { lower.hasSuffix($0) }
    }

    /// Reads the archive once and keeps a JSON list of the packages found in it (nested archives included).
    static let capture = Capture { path, bytes in
        var budget = inflationBudget(archiveSize: bytes.count)
        let found = packages(in: bytes, name: String(path.split(separator: "/").last ?? ""), nestedPath: [], depth: 0, budget: &budget)
        let list = Value.list(
            found.map { p in
                .map([
                    (.string("name"), .string(p.name)), (.string("version"), .string(p.version)), (.string("group"), .string(p.group)),
                    (.string("nested"), .string(p.nested)), (.string("licenses"), .list(p.licenses.map { .string($0) })),
                ])
            })
        return Array(list.jsonText().utf8)
    }

    struct Found {
        var name: String
        var version: String
        var group: String
        var nested: String
        var licenses: [String]
    }

    /// The packages of the archive `bytes` and of the archives nested in it; `budget` is what entries may still
    /// inflate to (see `inflationBudget`).
    static func packages(in bytes: [UInt8], name fileName: String, nestedPath: [String], depth: Int, budget: inout Int) -> [Found] {
        guard let zip = ZipArchive(bytes) else { return [] }
        var out: [Found] = []
        var poms: [[String: String]] = []
        for entry in zip.entries where entry.name.hasPrefix("META-INF/maven/") && entry.name.hasSuffix("/pom.properties") {
            if let data = zip.content(entry, budget: &budget) { poms.append(properties(data)) }
        }
        let manifestEntry = zip.entries.first { $0.name == "META-INF/MANIFEST.MF" }
        let manifest = manifestEntry.flatMap { zip.content($0, budget: &budget) }.map(manifestFields) ?? [:]
        let nested = nestedPath.joined(separator: ":")
        // The archive's own coordinates: the pom.properties whose artifact matches the file name, or the only one.
        let stem = fileStem(fileName)
        let own = poms.first { p in p["artifactId"].map { stem.name.hasPrefix($0) } ?? false } ?? (poms.count == 1 ? poms[0] : nil)
        var licenses: [String] = []
        if let l = manifest["Bundle-License"], !l.isEmpty, !l.hasPrefix("http") { licenses = [l] }
        if let own, let artifact = own["artifactId"], let version = own["version"] {
            out.append(Found(name: artifact, version: version, group: own["groupId"] ?? "", nested: nested, licenses: licenses))
        } else {
            // As syft does: the file name's name and version first, then the manifest's.
            let title = manifest["Implementation-Title"] ?? manifest["Bundle-SymbolicName"]?.split(separator: ";").first.map(String.init)
            let version = stem.version ?? manifest["Implementation-Version"] ?? manifest["Specification-Version"] ?? manifest["Bundle-Version"]
            let name = stem.name.isEmpty ? (title ?? "") : stem.name
            if !name.isEmpty, let version, !version.isEmpty {
                out.append(
                    Found(
                        name: name, version: version, group: manifest["Implementation-Vendor-Id"] ?? "", nested: nested, licenses: licenses))
            }
        }
        // Other pom.properties describe shaded or bundled artifacts.
        for p in poms where p["artifactId"] != own?["artifactId"] {
            if let a = p["artifactId"], let v = p["version"] {
                out.append(Found(name: a, version: v, group: p["groupId"] ?? "", nested: nested, licenses: []))
            }
        }
        if depth < maxNesting {
            for entry in zip.entries where isArchive(entry.name) {
                if let data = zip.content(entry, budget: &budget) {
                    out += packages(
                        in: data, name: String(entry.name.split(separator: "/").last ?? ""), nestedPath: nestedPath + [entry.name],
                        depth: depth + 1, budget: &budget)
                }
            }
        }
        return out
    }

    /// `commons-lang3-3.12.0.jar` → ("commons-lang3", "3.12.0").
    static func fileStem(_ name: String) -> (name: String, version: String?) {
        var base = name
        if let dot = base.lastIndex(of: ".") { base = String(base[..<dot]) }
        let parts = base.split(separator: "-")
        if let i = parts.firstIndex(where: { $0.first?.isNumber == true }), i > 0 {
            return (parts[..<i].joined(separator: "-"), parts[i...].joined(separator: "-"))
        }
        return (base, nil)
    }

    static func properties(_ data: [UInt8]) -> [String: String] {
        var out: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let l = line.trimmingCharacters(in: " \t")
            guard !l.hasPrefix("#"), !l.hasPrefix("!"), let eq = l.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            out[String(l[..<eq]).trimmingSpaces] = String(l[l.index(after: eq)...]).trimmingSpaces
        }
        return out
    }

    /// MANIFEST.MF main section (continuation lines start with one space).
    static func manifestFields(_ data: [UInt8]) -> [String: String] {
        var out: [String: String] = [:]
        var last: String?
        // Split bytes, not Characters: "\r\n" is one Character in Swift.
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = String(decoding: raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw, as: UTF8.self)[...]
            if line.isEmpty { break }  // end of the main section
            if line.hasPrefix(" "), let k = last {
                out[k, default: ""] += line.dropFirst()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            out[key] = String(line[line.index(after: colon)...]).trimmingSpaces
            last = key
        }
        return out
    }

    /// Packages from the captured summaries of every archive in the image.
    static func catalog(_ fs: ImageFilesystem) -> [Package] {
        var out: [Package] = []
        for path in fs.versions.keys.sorted() where isArchive(path) {
            guard let bytes = fs.versions[path]?.last?.bytes, let record = fs.files[path], record.kind == .file,
                case .list(let items)? = try? Value.parseJSON(bytes)
            else { continue }
            for item in items {
                guard case .string(let name)? = item["name"], case .string(let version)? = item["version"] else { continue }
                let group: String = if case .string(let g)? = item["group"] { g } else { "" }
                let nested: String = if case .string(let n)? = item["nested"] { n } else { "" }
                var licenses: [String] = []
                if case .list(let ls)? = item["licenses"] { licenses = ls.compactMap { if case .string(let s) = $0 { s } else { nil } } }
                out.append(
                    Package(
                        type: "maven", name: name, version: version,
                        purl: PURL.make(type: "maven", namespace: group.isEmpty ? name : group, name: name, version: version),
                        licenses: licenses, locations: ["/" + path + (nested.isEmpty ? "" : ":" + nested)],
                        layer: fs.layers[record.layer].digest, metadata: group.isEmpty ? [:] : ["groupId": group]))
            }
        }
        return out
    }
}

/// A zip archive read from memory: the central directory, and entries inflated on demand (stored or deflate). A
/// directory record naming the local header of an earlier one is dropped: a local header holds one entry's data,
/// and a directory that lists it again (a zip bomb's trick) would have it inflated again for each listing.
struct ZipArchive {
    struct Entry {
        var name: String
        var method: Int
        var compressedSize: Int
        var size: Int
        var localHeader: Int
    }
    let bytes: [UInt8]
    var entries: [Entry] = []
    /// Entries larger than this are not inflated (a nested archive bomb stays unread).
    static let maxEntry = 128 << 20

    init?(_ bytes: [UInt8]) {
        self.bytes = bytes
        func u16(_ i: Int) -> Int { i + 2 <= bytes.count ? Int(bytes[i]) | Int(bytes[i + 1]) << 8 : 0 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
        guard bytes.count >= 22 else { return nil }
        var eocd = -1
        var i = bytes.count - 22
        let floor = max(0, bytes.count - 22 - 65_535)
        while i >= floor {
            if bytes[i] == 0x50, bytes[i + 1] == 0x4B, bytes[i + 2] == 0x05, bytes[i + 3] == 0x06 {
                eocd = i
                break
            }
            i -= 1
        }
        guard eocd >= 0 else { return nil }
        let count = u16(eocd + 10)
        var p = u32(eocd + 16)
        var headers: Set<Int> = []
        for _ in 0..<count {
            guard p + 46 <= bytes.count, u32(p) == 0x0201_4B50 else { return nil }
            let nameLength = u16(p + 28)
            let extra = u16(p + 30)
            let comment = u16(p + 32)
            guard p + 46 + nameLength <= bytes.count else { return nil }
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            let entry = Entry(name: name, method: u16(p + 10), compressedSize: u32(p + 20), size: u32(p + 24), localHeader: u32(p + 42))
            if headers.insert(entry.localHeader).inserted { entries.append(entry) }
            p += 46 + nameLength + extra + comment
        }
    }

    /// The entry's content, if it fits `budget` (what entries may still inflate to), which it is then charged.
    func content(_ e: Entry, budget: inout Int) -> [UInt8]? {
        guard e.size <= Self.maxEntry, e.compressedSize <= Self.maxEntry else { return nil }
        let cost = e.method == 0 ? e.compressedSize : e.size
        guard cost <= budget else { return nil }
        func u16(_ i: Int) -> Int { i + 2 <= bytes.count ? Int(bytes[i]) | Int(bytes[i + 1]) << 8 : 0 }
        let h = e.localHeader
        guard h + 30 <= bytes.count, bytes[h] == 0x50, bytes[h + 1] == 0x4B, bytes[h + 2] == 0x03, bytes[h + 3] == 0x04 else { return nil }
        let start = h + 30 + u16(h + 26) + u16(h + 28)
        guard start + e.compressedSize <= bytes.count else { return nil }
        guard e.method == 0 || e.method == 8 else { return nil }
        budget -= cost
        let data = Array(bytes[start..<(start + e.compressedSize)])
        return e.method == 0 ? data : inflateRaw(data, expected: e.size)
    }
}

/// Raw deflate (zip entries) into a buffer of the size the directory promises.
func inflateRaw(_ input: [UInt8], expected: Int) -> [UInt8]? {
    var stream = z_stream()
    guard warden_inflateInit2(&stream, -15) == Z_OK else { return nil }
    defer { inflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: max(expected, 1))
    var rc: Int32 = Z_OK
    var produced = 0
    input.withUnsafeBufferPointer { inBuf in
        output.withUnsafeMutableBufferPointer { outBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = UInt32(outBuf.count)
            rc = inflate(&stream, Z_FINISH)
            produced = outBuf.count - Int(stream.avail_out)
        }
    }
    guard rc == Z_STREAM_END || (rc == Z_BUF_ERROR && produced == expected) else { return nil }
    return Array(output.prefix(produced))
}
