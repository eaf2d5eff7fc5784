import Foundation

/// Glob over `registry/repository`: `**` matches any characters, `*` any characters except `/`, `?` one character.
public func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8)
    let t = Array(text.utf8)
    func match(_ i: Int, _ j: Int) -> Bool {
        if i == p.count { return j == t.count }
        if p[i] == UInt8(ascii: "*") {
            let double = i + 1 < p.count && p[i + 1] == UInt8(ascii: "*")
            let next = double ? i + 2 : i + 1
            var k = j
            while true {
                if match(next, k) { return true }
                if k == t.count || (!double && t[k] == UInt8(ascii: "/")) { return false }
                k += 1
            }
        }
        guard j < t.count, p[i] == UInt8(ascii: "?") || p[i] == t[j] else { return false }
        return match(i + 1, j + 1)
    }
    return match(0, 0)
}
