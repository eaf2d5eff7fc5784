import Foundation
import GRDB

/// RPM: the SQLite package database of Fedora, RHEL 9 and their kin (`rpmdb.sqlite`), and the Berkeley DB hash
/// database of RHEL 7/8, CentOS and Amazon Linux 2 (`Packages`). Each record is an RPM header blob: an index of
/// (tag, type, offset, count) entries over a data store.
enum RPM {
    static let databases = [
        "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages",
    ]

    /// One package database of the image and the headers read from it.
    struct Database {
        var path: String
        var layer: LayerInfo
        var headers: [Header]
    }

    /// The databases of `fs` that could be read, in the order of `databases`.
    static func read(_ fs: ImageFilesystem) -> [Database] {
        var out: [Database] = []
        for path in databases {
            guard let bytes = fs.content(path), let layer = fs.layer(of: path) else { continue }
            let headers: [Header]
            if path.hasSuffix("Packages") {
                guard let blobs = BerkeleyHash.values(bytes) else { continue }
                headers = blobs.compactMap(parse)
            } else {
                do { headers = try read(bytes) } catch { continue }
            }
            out.append(Database(path: path, layer: layer, headers: headers))
        }
        return out
    }

    /// The name of the package a header describes, unless it is none the cataloger lists (no name or version, or
    /// an imported signing key).
    static func listedName(_ h: Header) -> String? {
        guard let name = h.strings[1000]?.first, h.strings[1001]?.first != nil, name != "gpg-pubkey" else { return nil }
        return name
    }

    /// `[epoch:]version[-release]`, the version a package is listed with.
    static func fullVersion(_ h: Header) -> String {
        let release = h.strings[1002]?.first ?? ""
        return (h.int32s[1003]?.first.map { "\($0):" } ?? "") + (h.strings[1001]?.first ?? "") + (release.isEmpty ? "" : "-" + release)
    }

    static func catalog(_ databases: [Database], distro: Distro?) -> [Package] {
        var out: [Package] = []
        for database in databases {
            let path = database.path
            let layer = database.layer
            for h in database.headers {
                guard let name = listedName(h), let version = h.strings[1001]?.first else { continue }
                let release = h.strings[1002]?.first ?? ""
                let epoch = h.int32s[1003]?.first
                let arch = h.strings[1022]?.first ?? ""
                let source = h.strings[1044]?.first ?? ""
                let full = fullVersion(h)
                var qualifiers = ["arch": arch, "upstream": source]
                if let epoch { qualifiers["epoch"] = String(epoch) }
                if let distro { qualifiers["distro"] = distro.id + (distro.versionID.map { "-" + $0 } ?? "") }
                var metadata = ["architecture": arch, "release": release]
                if let epoch { metadata["epoch"] = String(epoch) }
                if !source.isEmpty { metadata["sourceRpm"] = source }
                out.append(
                    Package(
                        type: "rpm", name: name, version: full,
                        purl: PURL.make(
                            type: "rpm", namespace: distro?.id ?? "redhat", name: name, version: version + (release.isEmpty ? "" : "-" + release),
                            qualifiers: qualifiers),
                        licenses: h.strings[1014]?.first.map { [$0] } ?? [], locations: ["/" + path], layer: layer.digest, metadata: metadata))
            }
        }
        return out
    }

    /// The absolute paths a header says its package installed: each BASENAMES entry (1117) joined to the DIRNAMES
    /// entry (1118) its DIRINDEXES entry (1116) names, or OLDFILENAMES (1027) in headers from before compressed file
    /// names. An index out of range names nothing. `parse` reads at most 10,000 entries of an array, so the files of
    /// a package past that many are not listed.
    static func installedPaths(_ h: Header) -> [String] {
        guard let basenames = h.strings[1117], let dirnames = h.strings[1118], let indexes = h.int32s[1116] else {
            return h.strings[1027] ?? []
        }
        return zip(basenames, indexes).compactMap { base, i in dirnames.indices.contains(i) ? dirnames[i] + base : nil }
    }

    struct Header {
        var strings: [Int: [String]] = [:]
        var int32s: [Int: [Int]] = [:]
    }

    /// Every header blob in an rpmdb.sqlite file (read from a private temporary copy, read-only).
    static func read(_ bytes: [UInt8]) throws -> [Header] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("warden-rpmdb-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("rpmdb.sqlite")
        try Data(bytes).write(to: file)
        var config = Configuration()
        config.readonly = true
        let queue = try DatabaseQueue(path: file.path, configuration: config)
        let blobs = try queue.read { db in try Data.fetchAll(db, sql: "SELECT blob FROM Packages") }
        return blobs.compactMap { parse([UInt8]($0)) }
    }

    /// An RPM header blob: il and dl (big-endian int32), il index entries of 16 bytes, then dl bytes of data.
    static func parse(_ b: [UInt8]) -> Header? {
        func be32(_ i: Int) -> Int? {
            guard i >= 0, i + 4 <= b.count else { return nil }
            return Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
        }
        guard let il = be32(0), let dl = be32(4), il > 0, il < 100_000, dl >= 0, 8 + il * 16 + dl <= b.count else { return nil }
        let store = 8 + il * 16
        var h = Header()
        for k in 0..<il {
            let e = 8 + k * 16
            guard let tag = be32(e), let type = be32(e + 4), let offset = be32(e + 8), let count = be32(e + 12), offset < dl, count > 0 else {
                continue
            }
            let at = store + offset
            switch type {
            case 6, 8, 9:  // STRING, STRING_ARRAY, I18NSTRING: NUL-terminated strings
                var values: [String] = []
                var i = at
                for _ in 0..<(type == 6 ? 1 : min(count, 10_000)) {
                    guard let end = b[i..<(store + dl)].firstIndex(of: 0) else { break }
                    values.append(String(decoding: b[i..<end], as: UTF8.self))
                    i = end + 1
                }
                // A string without its NUL (damaged or hostile) gives no value, not an empty list to index into.
                if !values.isEmpty { h.strings[tag] = values }
            case 4:  // INT32
                h.int32s[tag] = (0..<min(count, 10_000)).compactMap { be32(at + 4 * $0) }
            default: continue
            }
        }
        return h
    }
}

/// The values of a Berkeley DB hash database (what rpm's `Packages` file is), read page by page without the
/// library: hash pages hold key/data pairs, large data lives in overflow page chains.
enum BerkeleyHash {
    static let hashMagic: UInt32 = 0x061561

    static func values(_ b: [UInt8]) -> [[UInt8]]? {
        guard b.count >= 512 else { return nil }
        func u32(_ i: Int, _ little: Bool) -> UInt32 {
            guard i >= 0, i + 4 <= b.count else { return 0 }
            let v = UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
            return little ? v : v.byteSwapped
        }
        let little: Bool
        if u32(12, true) == hashMagic {
            little = true
        } else if u32(12, false) == hashMagic {
            little = false
        } else {
            return nil
        }
        func u16(_ i: Int) -> Int {
            guard i >= 0, i + 2 <= b.count else { return 0 }
            return little ? Int(b[i]) | Int(b[i + 1]) << 8 : Int(b[i]) << 8 | Int(b[i + 1])
        }
        let pageSize = Int(u32(20, little))
        guard [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536].contains(pageSize) else { return nil }
        let pages = b.count / pageSize
        var out: [[UInt8]] = []
        for page in 1..<max(1, pages) {
            let base = page * pageSize
            let type = b[base + 25]
            guard type == 13 || type == 2 else { continue }  // P_HASH, P_HASH_UNSORTED
            let entries = u16(base + 20)
            guard entries > 0, 26 + entries * 2 <= pageSize else { continue }
            // Items are key, data, key, data…; an item's bytes run up to the previous item's start.
            var k = 1
            while k < entries {
                let offset = u16(base + 26 + k * 2)
                let end = u16(base + 26 + (k - 1) * 2)
                guard offset > 0, offset < pageSize, end <= pageSize, end > offset else {
                    k += 2
                    continue
                }
                let item = base + offset
                switch b[item] {
                case 1:  // H_KEYDATA: the bytes follow the type
                    out.append(Array(b[(item + 1)..<(base + end)]))
                case 3:  // H_OFFPAGE: pgno and total length of an overflow chain
                    if let data = overflow(first: Int(u32(item + 4, little)), length: Int(u32(item + 8, little)), b, pageSize, little, u16) {
                        out.append(data)
                    }
                default: break
                }
                k += 2
            }
        }
        return out
    }

    /// An overflow chain: P_OVERFLOW pages whose `hf_offset` field holds the bytes stored on that page.
    static func overflow(first: Int, length: Int, _ b: [UInt8], _ pageSize: Int, _ little: Bool, _ u16: (Int) -> Int) -> [UInt8]? {
        guard length > 0, length < 64 << 20 else { return nil }
        var data: [UInt8] = []
        data.reserveCapacity(length)
        var page = first
        var hops = 0
        while page != 0, data.count < length {
            hops += 1
            let base = page * pageSize
            guard hops < 100_000, base + pageSize <= b.count, b[base + 25] == 7 else { return nil }
            let n = min(u16(base + 22), pageSize - 26)
            data += b[(base + 26)..<(base + 26 + n)]
            let next = Int(
                little
                    ? UInt32(b[base + 16]) | UInt32(b[base + 17]) << 8 | UInt32(b[base + 18]) << 16 | UInt32(b[base + 19]) << 24
                    : UInt32(b[base + 16]) << 24 | UInt32(b[base + 17]) << 16 | UInt32(b[base + 18]) << 8 | UInt32(b[base + 19]))
            page = next
        }
        return data.count >= length ? Array(data.prefix(length)) : nil
    }
}
