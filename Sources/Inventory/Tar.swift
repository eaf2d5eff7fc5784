/// One entry of a tar archive.
public struct TarHeader: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, directory, symlink, hardlink, other
    }
    /// Normalised path: relative to the root, no `.` or `..` components, no leading or trailing `/`. Archives
    /// cannot name anything outside the root: `..` stops at the root, absolute paths are made relative.
    public var path: String
    public var kind: Kind
    public var size: Int
    public var mode: Int
    /// Symlink target as written (unnormalised); hard-link target normalised like `path`.
    public var linkTarget: String
    /// Byte offset of the entry's content in the (uncompressed) archive.
    public var contentOffset: Int = 0
}

/// A streaming tar reader (POSIX ustar, GNU long names, PAX extended headers) over a chunk source. Headers are
/// checked strictly (checksum, octal fields, sizes) and errors name the entry's byte offset.
public struct TarReader<Source: ChunkSource> {
    var source: Source
    var buffer: [UInt8] = []
    var position = 0
    /// Bytes consumed before `buffer[0]`.
    var offset = 0
    /// Content bytes of the current entry not yet read (plus padding to the next 512-byte block).
    var remaining = 0
    var padding = 0
    var ended = false

    /// Limits that keep a hostile archive from using unbounded memory.
    public static var maxExtendedHeader: Int { 1 << 20 }
    public static var maxPathLength: Int { 64 << 10 }

    public init(_ source: Source) { self.source = source }

    /// Ensures `n` bytes are buffered; false at the end of the input.
    mutating func fill(_ n: Int) async throws -> Bool {
        while buffer.count - position < n {
            guard let chunk = try await source.next() else { return false }
            if position > 0 {
                buffer.removeSubrange(0..<position)
                offset += position
                position = 0
            }
            buffer.append(contentsOf: chunk)
        }
        return true
    }

    mutating func take(_ n: Int) async throws -> ArraySlice<UInt8>? {
        guard try await fill(n) else { return nil }
        defer { position += n }
        return buffer[position..<position + n]
    }

    var here: Int { offset + position }

    /// Discards what is left of the current entry.
    public mutating func skipContent() async throws {
        var left = remaining + padding
        remaining = 0
        padding = 0
        while left > 0 {
            let have = buffer.count - position
            if have >= left {
                position += left
                return
            }
            left -= have
            position = buffer.count
            guard try await fill(1) else { throw InventoryError(.malformed, "tar archive ends inside an entry (truncated)") }
        }
    }

    /// Reads the current entry's content, if it is at most `limit` bytes (else nil and the content is skipped).
    public mutating func readContent(limit: Int) async throws -> [UInt8]? {
        guard remaining <= limit else {
            try await skipContent()
            return nil
        }
        let n = remaining
        guard let bytes = try await take(n) else { throw InventoryError(.malformed, "tar archive ends inside an entry (truncated)") }
        let out = Array(bytes)
        remaining = 0
        try await skipContent()  // padding
        return out
    }

    /// The next piece of the current entry's content, at most `maxLength` bytes, or nil once all of it was read (the
    /// padding after it is then skipped). A large file streams through in pieces without ever being held whole.
    public mutating func nextContentChunk(maxLength: Int = 64 << 10) async throws -> [UInt8]? {
        guard remaining > 0 else {
            try await skipContent()  // padding
            return nil
        }
        if position == buffer.count {
            guard try await fill(1) else { throw InventoryError(.malformed, "tar archive ends inside an entry (truncated)") }
        }
        let n = min(remaining, max(1, maxLength), buffer.count - position)
        defer {
            position += n
            remaining -= n
        }
        return Array(buffer[position..<position + n])
    }

    /// The next entry's header, or nil at the end of the archive. Unread content of the previous entry is skipped.
    public mutating func next() async throws -> TarHeader? {
        try await skipContent()
        var longName: String?
        var longLink: String?
        var pax: [String: String] = [:]
        while !ended {
            let at = here
            guard let block = try await take(512) else {
                // An archive may end without its two zero blocks; a partial block is an error.
                if buffer.count - position > 0 { throw InventoryError(.malformed, "tar archive ends inside a header at byte \(at)") }
                ended = true
                return nil
            }
            if block.allSatisfy({ $0 == 0 }) {
                ended = true
                return nil
            }
            let b = Array(block)
            try Self.checkChecksum(b, at: at)
            let typeflag = b[156]
            let size = try Self.number(b, 124, 12, "size", at: at)
            guard size >= 0, size < 1 << 40 else { throw InventoryError(.malformed, "tar entry at byte \(at) has an impossible size \(size)") }
            remaining = size
            padding = (512 - size % 512) % 512

            switch typeflag {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= Self.maxPathLength else {
                    throw InventoryError(.malformed, "tar GNU long name at byte \(at) is \(size) bytes (limit \(Self.maxPathLength))")
                }
                let data = try await readContent(limit: size) ?? []
                let text = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                if typeflag == UInt8(ascii: "L") { longName = text } else { longLink = text }
                continue
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                guard size <= Self.maxExtendedHeader else {
                    throw InventoryError(.malformed, "tar extended header at byte \(at) is \(size) bytes (limit \(Self.maxExtendedHeader))")
                }
                let data = try await readContent(limit: size) ?? []
                if typeflag == UInt8(ascii: "x") { pax = try Self.parsePAX(data, at: at) }
                continue
            default: break
            }

            var name = Self.string(b, 0, 100)
            if b[257..<262].elementsEqual("ustar".utf8) {
                let prefix = Self.string(b, 345, 155)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            if let longName { name = longName }
            if let p = pax["path"] { name = p }
            var link = Self.string(b, 157, 100)
            if let longLink { link = longLink }
            if let l = pax["linkpath"] { link = l }
            if let s = pax["size"] {
                guard let n = Int(s), n >= 0, n < 1 << 40 else { throw InventoryError(.malformed, "tar PAX size \"\(s)\" at byte \(at) is invalid") }
                remaining = n
                padding = (512 - n % 512) % 512
            }
            let kind: TarHeader.Kind
            switch typeflag {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = name.hasSuffix("/") ? .directory : .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symlink
            case UInt8(ascii: "1"): kind = .hardlink
            default: kind = .other
            }
            let mode = (try? Self.number(b, 100, 8, "mode", at: at)) ?? 0
            return TarHeader(
                path: normalize(name), kind: kind, size: kind == .file ? remaining : 0, mode: mode,
                linkTarget: kind == .hardlink ? normalize(link) : link, contentOffset: here)
        }
        return nil
    }

    static func string(_ b: [UInt8], _ start: Int, _ length: Int) -> String {
        let field = b[start..<start + length]
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// An octal field (NUL or space terminated), or a base-256 number (high bit set), as GNU tar writes large sizes.
    static func number(_ b: [UInt8], _ start: Int, _ length: Int, _ what: String, at: Int) throws -> Int {
        let field = b[start..<start + length]
        if let first = field.first, first & 0x80 != 0 {
            var v = Int(first & 0x7F)
            for byte in field.dropFirst() {
                guard v < Int.max >> 9 else { throw InventoryError(.malformed, "tar \(what) at byte \(at) overflows") }
                v = v << 8 | Int(byte)
            }
            return v
        }
        var v = 0
        var seenDigit = false
        for byte in field {
            if byte == 0 || byte == 0x20 {
                if seenDigit { break } else { continue }
            }
            guard byte >= 0x30, byte <= 0x37 else {
                throw InventoryError(.malformed, "tar \(what) field at byte \(at) is not octal")
            }
            seenDigit = true
            guard v < Int.max >> 4 else { throw InventoryError(.malformed, "tar \(what) at byte \(at) overflows") }
            v = v * 8 + Int(byte - 0x30)
        }
        return v
    }

    static func checkChecksum(_ b: [UInt8], at: Int) throws {
        let stored = try number(b, 148, 8, "checksum", at: at)
        var sum = 0
        for (i, byte) in b.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int(byte) }
        guard sum == stored else {
            throw InventoryError(.malformed, "tar header at byte \(at) has a bad checksum (not a tar archive, or corrupt)")
        }
    }

    /// PAX records: "LENGTH KEY=VALUE\n".
    static func parsePAX(_ data: [UInt8], at: Int) throws -> [String: String] {
        var out: [String: String] = [:]
        var i = 0
        while i < data.count {
            guard let space = data[i...].firstIndex(of: 0x20), let length = Int(String(decoding: data[i..<space], as: UTF8.self)),
                length > 0, i + length <= data.count, data[i + length - 1] == 0x0A
            else { throw InventoryError(.malformed, "tar PAX header at byte \(at) is malformed") }
            let record = data[(space + 1)..<(i + length - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out[String(decoding: record[..<eq], as: UTF8.self)] = String(decoding: record[(eq + 1)...], as: UTF8.self)
            }
            i += length
        }
        return out
    }
}

/// A path made relative to the root with `.`, empty and `..` components resolved; `..` never climbs above the root.
public func normalize(_ path: String) -> String {
    var parts: [Substring] = []
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        if part == "." { continue }
        if part == ".." {
            if !parts.isEmpty { parts.removeLast() }
            continue
        }
        parts.append(part)
    }
    return parts.joined(separator: "/")
}
