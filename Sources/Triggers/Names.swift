/// The grammars of the names a delivery carries (distribution's reference grammar), checked by hand — no regular
/// expression to backtrack on hostile input — before a name reaches an event, a selector or a registry request.
enum Names {
    /// A repository path: components of `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`, separated by `/`;
    /// at most 255 characters.
    static func isRepository(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 255 else { return false }
        var component: [UInt8] = []
        for c in b + [UInt8(ascii: "/")] {
            if c == UInt8(ascii: "/") {
                guard isComponent(component) else { return false }
                component = []
            } else {
                component.append(c)
            }
        }
        return true
    }

    static func isComponent(_ b: [UInt8]) -> Bool {
        guard let first = b.first, let last = b.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var i = 0
        while i < b.count {
            if isLowerAlnum(b[i]) {
                i += 1
                continue
            }
            var j = i
            while j < b.count, !isLowerAlnum(b[j]) { j += 1 }
            let run = b[i..<j]
            let ok =
                run.elementsEqual([UInt8(ascii: ".")]) || run.elementsEqual([UInt8(ascii: "_")])
                || run.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")]) || run.allSatisfy { $0 == UInt8(ascii: "-") }
            guard ok else { return false }
            i = j
        }
        return true
    }

    static func isLowerAlnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
    static func isAlnum(_ c: UInt8) -> Bool { isLowerAlnum(c) || (c >= 0x41 && c <= 0x5A) }

    /// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    static func isTag(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, b.count <= 128, isAlnum(first) || first == UInt8(ascii: "_") else { return false }
        return b.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `algorithm:encoded` (OCI image spec): algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`;
    /// sha256 and sha512 digests are exactly 64 or 128 lower-case hex digits.
    static func isDigest(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count <= 1024, let colon = b.firstIndex(of: UInt8(ascii: ":")) else { return false }
        let algorithm = Array(b[..<colon])
        let encoded = Array(b[(colon + 1)...])
        guard let f = algorithm.first, let l = algorithm.last, isLowerAlnum(f), isLowerAlnum(l), !encoded.isEmpty else { return false }
        var previousSeparator = false
        for c in algorithm {
            let separator = c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
            guard separator || isLowerAlnum(c), !(separator && previousSeparator) else { return false }
            previousSeparator = separator
        }
        guard encoded.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
            return false
        }
        let lowerHex = encoded.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        switch String(decoding: algorithm, as: UTF8.self) {
        case "sha256": return encoded.count == 64 && lowerHex
        case "sha512": return encoded.count == 128 && lowerHex
        default: return true
        }
    }

    /// A registry host: DNS labels (letters, digits, inner `-`) joined by dots, or a bracketed IPv6 address, with
    /// an optional `:port`.
    static func isHost(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 255 else { return false }
        var host = b[...]
        if let colon = b.lastIndex(of: UInt8(ascii: ":")), b.first != UInt8(ascii: "[") || b[colon - 1] == UInt8(ascii: "]") {
            let port = b[(colon + 1)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), Int(String(decoding: port, as: UTF8.self))! <= 65535
            else { return false }
            host = b[..<colon]
        }
        if host.first == UInt8(ascii: "[") {
            guard host.count > 2, host.last == UInt8(ascii: "]") else { return false }
            return host.dropFirst().dropLast().allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
        }
        guard !host.isEmpty else { return false }
        for label in host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard let f = label.first, let l = label.last, isAlnum(f), isAlnum(l), label.count <= 63,
                label.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return true
    }

    /// A media type: `type/subtype` of visible ASCII without spaces, at most 255 characters (parameters dropped
    /// by the caller).
    static func isMediaType(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count <= 255, let slash = b.firstIndex(of: UInt8(ascii: "/")), slash > 0, slash < b.count - 1 else { return false }
        return b.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: "\"") }
    }

    /// Manifest media types: everything else a registry reports is a blob.
    static let manifestMediaTypes: Set<String> = [
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json", "application/vnd.oci.artifact.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]

    /// A name as it may be quoted in a reason: at most 100 characters, control characters escaped.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for (i, u) in s.unicodeScalars.enumerated() {
            if i == 100 {
                out += "…"
                break
            }
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20 || u.value == 0x7F: out += "\\u{\(String(u.value, radix: 16))}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
