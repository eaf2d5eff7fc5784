import Foundation
import OCI

/// A semantic version read leniently from a tag: `v` prefix allowed, missing minor/patch are 0
/// (`3.20` = 3.20.0), a `-pre.release` suffix ranks below the release; build metadata (`+…`) is ignored.
public struct SemVer: Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    public var prerelease: [String]

    public init?(_ text: String) {
        var s = Substring(text)
        if s.hasPrefix("v") || s.hasPrefix("V") { s = s.dropFirst() }
        if let plus = s.firstIndex(of: "+") { s = s[..<plus] }
        var pre: [String] = []
        if let dash = s.firstIndex(of: "-") {
            pre = s[s.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !pre.isEmpty, pre.allSatisfy({ !$0.isEmpty }) else { return nil }
            s = s[..<dash]
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
            return nil
        }
        let nums = parts.compactMap { Int($0) }
        guard nums.count == parts.count else { return nil }
        major = nums[0]
        minor = nums.count > 1 ? nums[1] : 0
        patch = nums.count > 2 ? nums[2] : 0
        prerelease = pre
    }

    init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
        prerelease = []
    }

    public var description: String { "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: ".")) }

    public static func < (a: SemVer, b: SemVer) -> Bool {
        if (a.major, a.minor, a.patch) != (b.major, b.minor, b.patch) { return (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch) }
        if a.prerelease.isEmpty != b.prerelease.isEmpty { return !a.prerelease.isEmpty }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            switch (Int(x), Int(y)) {
            case let (i?, j?): return i < j
            case (_?, nil): return true
            case (nil, _?): return false
            default: return x < y
            }
        }
        return a.prerelease.count < b.prerelease.count
    }

    public static func == (a: SemVer, b: SemVer) -> Bool { !(a < b) && !(b < a) }
}

/// A version range: comparators separated by spaces must all hold; `||` separates alternatives.
/// Comparators: `>=1.2`, `>1.2`, `<=2`, `<2`, `=1.2.3` (or bare `1.2.3`), `~1.2` (>=1.2.0 <1.3.0),
/// `^1.2` (>=1.2.0 <2.0.0; `^0.x` stays within 0.x). Pre-releases match only when the range names one.
public struct SemVerRange: Sendable, CustomStringConvertible {
    enum Op: String, Sendable { case ge = ">=", gt = ">", le = "<=", lt = "<", eq = "=" }
    struct Comparator: Sendable {
        var op: Op
        var version: SemVer
        func holds(_ v: SemVer) -> Bool {
            switch op {
            case .ge: v >= version
            case .gt: v > version
            case .le: v <= version
            case .lt: v < version
            case .eq: v == version
            }
        }
    }
    let alternatives: [[Comparator]]
    public let description: String

    public init(_ text: String) throws {
        description = text
        var alts: [[Comparator]] = []
        for alt in text.components(separatedBy: "||") {
            var comps: [Comparator] = []
            for token in alt.split(separator: " ") {
                var t = String(token)
                if t.hasPrefix("~") || t.hasPrefix("^") {
                    let caret = t.hasPrefix("^")
                    t.removeFirst()
                    guard let v = SemVer(t) else { throw RangeError(text: text, token: String(token)) }
                    let upper: SemVer
                    if caret {
                        upper = v.major > 0 ? SemVer(v.major + 1, 0, 0) : SemVer(0, v.minor + 1, 0)
                    } else {
                        upper = SemVer(v.major, v.minor + 1, 0)
                    }
                    comps += [Comparator(op: .ge, version: v), Comparator(op: .lt, version: upper)]
                    continue
                }
                var op = Op.eq
                for candidate in [Op.ge, .le, .gt, .lt, .eq] where t.hasPrefix(candidate.rawValue) {
                    op = candidate
                    t.removeFirst(candidate.rawValue.count)
                    break
                }
                guard let v = SemVer(t) else { throw RangeError(text: text, token: String(token)) }
                comps.append(Comparator(op: op, version: v))
            }
            guard !comps.isEmpty else { throw RangeError(text: text, token: "(empty alternative)") }
            alts.append(comps)
        }
        alternatives = alts
    }

    public func contains(_ v: SemVer) -> Bool {
        alternatives.contains { comps in
            // A pre-release matches only a comparator with a pre-release of the same major.minor.patch.
            if !v.prerelease.isEmpty,
                !comps.contains(where: {
                    !$0.version.prerelease.isEmpty && ($0.version.major, $0.version.minor, $0.version.patch) == (v.major, v.minor, v.patch)
                })
            {
                return false
            }
            return comps.allSatisfy { $0.holds(v) }
        }
    }

    public struct RangeError: Error, CustomStringConvertible {
        var text: String
        var token: String
        public var description: String { "semver range \"\(text)\": \"\(token)\" is not a version comparator (>=1.2, <2, ~1.4, ^1.0, 1.2.3)" }
    }
}

/// Which tags of a repository to replicate.
public struct TagSelection: Sendable {
    public var exact: [String] = []
    public var digests: [OCI.Digest] = []
    public var allow: [String] = []
    public var deny: [String] = []
    public var semver: SemVerRange?
    public var newest: Int?

    public init() {}

    /// Whether the listing of tags is needed (rather than only the exact tags and digests named).
    public var needsListing: Bool {
        (exact.isEmpty && digests.isEmpty) || !allow.isEmpty || !deny.isEmpty || semver != nil || newest != nil
    }

    /// The tags to replicate from `available` (the repository's tags), in a stable order: exact tags first (as
    /// written), then the filtered ones (newest first when `newest` is set, else by name). `newest` counts
    /// releases only, unless a `semver` range admits pre-releases.
    public func select(from available: [String]) -> [String] {
        var out = exact
        guard needsListing else { return out }
        let allowRE = allow.compactMap { try? NSRegularExpression(pattern: $0) }
        let denyRE = deny.compactMap { try? NSRegularExpression(pattern: $0) }
        func matches(_ re: NSRegularExpression, _ s: String) -> Bool { re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil }
        var filtered = available.filter { tag in
            if CosignTags.suffixes.contains(where: { tag.hasSuffix(".\($0)") }) && tag.hasPrefix("sha256-") { return false }
            if !allowRE.isEmpty && !allowRE.contains(where: { matches($0, tag) }) { return false }
            if denyRE.contains(where: { matches($0, tag) }) { return false }
            if let semver {
                guard let v = SemVer(tag), semver.contains(v) else { return false }
            }
            return true
        }
        if let newest {
            var versioned: [(tag: String, version: SemVer)] = []
            // Pre-releases count only when a semver range admitted them.
            for t in filtered { if let v = SemVer(t), v.prerelease.isEmpty || semver != nil { versioned.append((t, v)) } }
            versioned.sort { a, b in a.version != b.version ? a.version > b.version : a.tag < b.tag }
            filtered = versioned.prefix(newest).map(\.tag)
        } else {
            filtered.sort()
        }
        for t in filtered where !out.contains(t) { out.append(t) }
        return out
    }
}
