import Foundation
import GRDB

/// RPM: the SQLite package database of Fedora, RHEL 9 and their kin (`rpmdb.sqlite`). Each row of `Packages` is an
/// RPM header blob: an index of (tag, type, offset, count) entries over a data store.
enum RPM {
    static let databases = ["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"]

    static func catalog(_ fs: ImageFilesystem, distro: Distro?) -> [Package] {
        var out: [Package] = []
        for path in databases {
            guard let bytes = fs.content(path), let layer = fs.layer(of: path) else { continue }
            let headers: [Header]
            do { headers = try read(bytes) } catch { continue }
            for h in headers {
                guard let name = h.strings[1000]?.first, let version = h.strings[1001]?.first, name != "gpg-pubkey" else { continue }
                let release = h.strings[1002]?.first ?? ""
                let epoch = h.int32s[1003]?.first
                let arch = h.strings[1022]?.first ?? ""
                let source = h.strings[1044]?.first ?? ""
                let full = (epoch.map { "\($0):" } ?? "") + version + (release.isEmpty ? "" : "-" + release)
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
                        licenses: h.strings[1014].map { [$0[0]] } ?? [], locations: ["/" + path], layer: layer.digest, metadata: metadata))
            }
        }
        return out
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
                h.strings[tag] = values
            case 4:  // INT32
                h.int32s[tag] = (0..<min(count, 10_000)).compactMap { be32(at + 4 * $0) }
            default: continue
            }
        }
        return h
    }
}
