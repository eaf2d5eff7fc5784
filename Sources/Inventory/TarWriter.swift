/// Writes ustar archives in memory (test images, `warden testdata` layers). Names longer than 100 bytes get a GNU
/// long-name entry; `pax` adds a PAX extended header before an entry.
public struct TarWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func file(_ path: String, _ content: [UInt8], mode: Int = 0o644) {
        entry(path, type: UInt8(ascii: "0"), content: content, mode: mode)
    }

    public mutating func file(_ path: String, _ text: String, mode: Int = 0o644) { file(path, Array(text.utf8), mode: mode) }

    public mutating func directory(_ path: String, mode: Int = 0o755) {
        entry(path.hasSuffix("/") ? path : path + "/", type: UInt8(ascii: "5"), content: [], mode: mode)
    }

    public mutating func symlink(_ path: String, to target: String) {
        entry(path, type: UInt8(ascii: "2"), content: [], mode: 0o777, link: target)
    }

    public mutating func hardlink(_ path: String, to target: String) {
        entry(path, type: UInt8(ascii: "1"), content: [], mode: 0o644, link: target)
    }

    /// `.wh.NAME` next to the deleted path.
    public mutating func whiteout(_ path: String) {
        let parts = path.split(separator: "/")
        let name = ".wh." + (parts.last.map(String.init) ?? "")
        file((parts.dropLast().map(String.init) + [name]).joined(separator: "/"), [])
    }

    /// `DIR/.wh..wh..opq`: hides everything lower layers put in DIR.
    public mutating func opaque(_ directory: String) { file(directory + "/.wh..wh..opq", []) }

    public mutating func pax(_ records: [String: String]) {
        var body: [UInt8] = []
        for (k, v) in records.sorted(by: { $0.key < $1.key }) {
            let core = " \(k)=\(v)\n"
            var length = core.utf8.count + 1
            while String(length).count + core.utf8.count != length { length = String(length).count + core.utf8.count }
            body += Array("\(length)\(core)".utf8)
        }
        raw(name: "PaxHeader", type: UInt8(ascii: "x"), content: body, mode: 0o644, link: "")
    }

    /// Two zero blocks end the archive.
    public mutating func finish() -> [UInt8] {
        bytes += [UInt8](repeating: 0, count: 1024)
        return bytes
    }

    mutating func entry(_ path: String, type: UInt8, content: [UInt8], mode: Int, link: String = "") {
        if path.utf8.count > 100 {
            raw(name: "././@LongLink", type: UInt8(ascii: "L"), content: Array(path.utf8) + [0], mode: 0, link: "")
        }
        raw(name: String(decoding: path.utf8.prefix(100), as: UTF8.self), type: type, content: content, mode: mode, link: link)
    }

    /// A header block as written, then the content padded to 512 bytes.
    public mutating func raw(name: String, type: UInt8, content: [UInt8], mode: Int, link: String, size: Int? = nil) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: [UInt8], _ at: Int, _ max: Int) { for (i, b) in s.prefix(max).enumerated() { h[at + i] = b } }
        func octal(_ v: Int, _ at: Int, _ width: Int) {
            let s = String(v, radix: 8)
            put(Array((String(repeating: "0", count: max(0, width - 1 - s.count)) + s).utf8), at, width - 1)
        }
        put(Array(name.utf8), 0, 100)
        octal(mode, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size ?? content.count, 124, 12)
        octal(0, 136, 12)
        h[156] = type
        put(Array(link.utf8), 157, 100)
        put(Array("ustar\u{0}00".utf8), 257, 8)
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        put(Array((String(repeating: "0", count: 6 - s.count) + s).utf8) + [0, 0x20], 148, 8)
        bytes += h
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }
}
