import Synchronization

/// `matches` patterns: RE2 syntax, compiled once per process to an automaton that runs in time linear in the input.
///
/// Accepted (RE2 syntax and meaning): literals and escapes (`\a \f \t \n \r \v`, `\x41`, `\x{1F600}`, octal `\0`,
/// `\123`, escaped punctuation, `\Q…\E`), `.`, classes `[...]` with ranges and negation, `\d \w \s \D \W \S` (ASCII,
/// as in RE2), POSIX classes `[[:alpha:]]`, Unicode general categories `\pL \p{Lu} \PN \p{^Nd}`, `\b \B` (ASCII word
/// boundaries), anchors `^ $ \A \z`, groups `(...)`, `(?:...)`, named groups `(?P<name>...)` and `(?<name>...)`,
/// alternation, quantifiers `* + ? {n} {n,} {n,m}` and their lazy forms, and flags `(?i) (?m) (?s) (?U)` (also
/// `(?i:...)`, `(?-i)`). Refused, because RE2 has no such thing: backreferences (`\1`, `\k<name>`), lookaround
/// (`(?=`, `(?!`, `(?<=`, `(?<!`), atomic groups `(?>`, possessive quantifiers (`*+`, `++`, `?+`, `}+`), conditionals
/// `(?(`, `\Z`, `\G`; also refused, as RE2 refuses them: repetition counts above 1,000 (or nested counts whose
/// product exceeds it), stacked quantifiers (`a**`), and, as limits of this implementation, patterns that nest
/// groups more than `maxNesting` deep or compile to more than `maxInstructions` instructions.
///
/// Matching is a search (RE2 `PartialMatch`): the pattern may match anywhere unless anchored. It simulates the
/// automaton on every Unicode scalar once (a Pike VM without captures, since `matches` only answers yes or no), so
/// its work is at most the input length times the program size, and it reports that work to the caller, which
/// counts it against the evaluation's cost and time limits.
final class RegexCache: Sendable {
    static let shared = RegexCache()
    /// Bounded: a policy has a handful of patterns; a pattern built from data must not grow the cache forever.
    static let capacity = 256

    let cache = Mutex<[String: RegexProgram]>([:])

    func compile(_ pattern: String) throws -> RegexProgram {
        if let hit = cache.withLock({ $0[pattern] }) { return hit }
        let program = try RegexProgram(pattern)
        cache.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[pattern] = program
        }
        return program
    }
}

struct RegexSyntaxError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// A compiled pattern: instructions of a Thompson NFA over Unicode scalars.
final class RegexProgram: Sendable {
    static let maxRepeat = 1000
    static let maxNesting = 100
    static let maxInstructions = 10_000

    enum Assertion: Sendable { case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary }

    enum Inst: Sendable {
        case scalar(UInt32)
        /// A scalar compared under case folding (the folded form of the literal).
        case folded(UInt32)
        case set(CharSet)
        case any
        case anyButNewline
        case split(Int, Int)
        case jump(Int)
        case assert(Assertion)
        case match
    }

    let insts: [Inst]
    /// Whether every match must start at the beginning of the text (`^…`, `\A…`), so the search tries only there.
    let anchored: Bool

    init(_ pattern: String) throws {
        var parser = RegexParser(Array(pattern.unicodeScalars))
        let node = try parser.parse()
        var compiler = RegexCompiler()
        try compiler.emit(node)
        try compiler.append(.match)
        insts = compiler.insts
        anchored = node.isAnchoredAtStart
    }

    /// Whether the pattern matches anywhere in `text`. `charge` receives the work done (instructions executed),
    /// in installments, and may throw to stop the search.
    func matches(_ text: String, charge: (Int) throws -> Void) throws -> Bool {
        var current = SparseSet(capacity: insts.count)
        var next = SparseSet(capacity: insts.count)
        var stack: [Int] = []
        var steps = 0
        var scalars = text.unicodeScalars.makeIterator()
        var previous: Unicode.Scalar?
        var here = scalars.next()
        var atStart = true
        while true {
            steps += 1
            if atStart || !anchored, addThread(&current, 0, previous, here, &stack, &steps) {
                try charge(steps)
                return true
            }
            guard let c = here, !(anchored && current.count == 0) else {
                try charge(steps)
                return false
            }
            let after = scalars.next()
            next.removeAll()
            for k in 0..<current.count {
                let pc = current.dense[k]
                steps += 1
                let advances: Bool
                switch insts[pc] {
                case .scalar(let s): advances = c.value == s
                case .folded(let s): advances = CaseFolding.fold(c.value) == s
                case .set(let set): advances = set.contains(c.value)
                case .any: advances = true
                case .anyButNewline: advances = c != "\n"
                default: advances = false
                }
                if advances, addThread(&next, pc + 1, c, after, &stack, &steps) {
                    try charge(steps)
                    return true
                }
            }
            swap(&current, &next)
            previous = c
            here = after
            atStart = false
            if steps >= 4096 {
                try charge(steps)
                steps = 0
            }
        }
    }

    /// Adds `pc` and everything reachable from it without consuming input (at the position between `before` and
    /// `after`); true when that reaches the match.
    func addThread(
        _ list: inout SparseSet, _ pc: Int, _ before: Unicode.Scalar?, _ after: Unicode.Scalar?, _ stack: inout [Int], _ steps: inout Int
    ) -> Bool {
        stack.append(pc)
        while let pc = stack.popLast() {
            if list.contains(pc) { continue }
            list.insert(pc)
            steps += 1
            switch insts[pc] {
            case .match:
                stack.removeAll(keepingCapacity: true)
                return true
            case .jump(let target): stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assert(let a):
                if Self.holds(a, before, after) { stack.append(pc + 1) }
            default: break
            }
        }
        return false
    }

    static func holds(_ a: Assertion, _ before: Unicode.Scalar?, _ after: Unicode.Scalar?) -> Bool {
        switch a {
        case .beginText: return before == nil
        case .endText: return after == nil
        case .beginLine: return before == nil || before == "\n"
        case .endLine: return after == nil || after == "\n"
        case .wordBoundary, .notWordBoundary:
            let boundary = isWord(before) != isWord(after)
            return boundary == (a == .wordBoundary)
        }
    }

    static func isWord(_ s: Unicode.Scalar?) -> Bool {
        guard let v = s?.value else { return false }
        return (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) || v == 0x5F
    }
}

/// A set of program counters with O(1) insert, lookup and clear (Briggs and Torczon's sparse set).
struct SparseSet {
    var dense: [Int]
    var sparse: [Int]
    var count = 0

    init(capacity: Int) {
        dense = Array(repeating: 0, count: capacity)
        sparse = Array(repeating: 0, count: capacity)
    }

    func contains(_ pc: Int) -> Bool {
        let d = sparse[pc]
        return d < count && dense[d] == pc
    }

    mutating func insert(_ pc: Int) {
        sparse[pc] = count
        dense[count] = pc
        count += 1
    }

    mutating func removeAll() { count = 0 }
}

/// A character class: scalar ranges and Unicode general categories, possibly negated, possibly case-insensitive.
struct CharSet: Sendable {
    /// Sorted, non-overlapping, non-adjacent.
    var ranges: [ClosedRange<UInt32>] = []
    /// General categories (bit i = `CaseFolding`-independent index in `UnicodeCategories.codes`), each with its own
    /// negation (`\PL` inside a class).
    var categories: [(mask: UInt32, negated: Bool)] = []
    var negated = false
    var caseless = false

    func contains(_ c: UInt32) -> Bool {
        if caseless {
            return CaseFolding.variants(c).contains(where: containsExactly) != negated
        }
        return containsExactly(c) != negated
    }

    func containsExactly(_ c: UInt32) -> Bool {
        var lo = 0
        var hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < c {
                lo = mid + 1
            } else if ranges[mid].lowerBound > c {
                hi = mid
            } else {
                return true
            }
        }
        guard !categories.isEmpty, let s = Unicode.Scalar(c) else { return false }
        let bit = UInt32(1) << UnicodeCategories.index(s.properties.generalCategory)
        return categories.contains { ($0.mask & bit != 0) != $0.negated }
    }

    mutating func add(_ r: ClosedRange<UInt32>) { ranges.append(r) }

    mutating func add(_ other: [ClosedRange<UInt32>], negated: Bool) {
        ranges += negated ? Self.complement(Self.normalized(other)) : other
    }

    /// Sorts and merges the ranges.
    static func normalized(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = r.upperBound + 1
        }
        if next <= 0x10FFFF { out.append(next...0x10FFFF) }
        return out
    }

    static let digit: [ClosedRange<UInt32>] = [0x30...0x39]
    static let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
    static let space: [ClosedRange<UInt32>] = [0x09...0x0A, 0x0C...0x0D, 0x20...0x20]

    /// RE2's POSIX classes (ASCII).
    static let posix: [String: [ClosedRange<UInt32>]] = [
        "alnum": [0x30...0x39, 0x41...0x5A, 0x61...0x7A], "alpha": [0x41...0x5A, 0x61...0x7A], "ascii": [0x00...0x7F],
        "blank": [0x09...0x09, 0x20...0x20], "cntrl": [0x00...0x1F, 0x7F...0x7F], "digit": digit, "graph": [0x21...0x7E],
        "lower": [0x61...0x7A], "print": [0x20...0x7E], "punct": [0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E],
        "space": [0x09...0x0D, 0x20...0x20], "upper": [0x41...0x5A], "word": word, "xdigit": [0x30...0x39, 0x41...0x46, 0x61...0x66],
    ]
}

/// Simple case folding for `(?i)`: two scalars match when their folded forms are equal.
enum CaseFolding {
    /// The lowercase of the uppercase (so that `K`, `k` and KELVIN SIGN, or `s`, `S` and LONG S, fold together).
    static func fold(_ c: UInt32) -> UInt32 {
        if c < 0x80 { return (0x41...0x5A).contains(c) ? c + 0x20 : c }
        return lower(upper(c))
    }

    static func variants(_ c: UInt32) -> [UInt32] {
        if c < 0x80 {
            if (0x41...0x5A).contains(c) { return [c, c + 0x20] }
            if (0x61...0x7A).contains(c) { return [c, c - 0x20] }
            return [c]
        }
        return [c, fold(c), upper(c), lower(c)]
    }

    static func lower(_ c: UInt32) -> UInt32 { single(Unicode.Scalar(c)?.properties.lowercaseMapping) ?? c }
    static func upper(_ c: UInt32) -> UInt32 { single(Unicode.Scalar(c)?.properties.uppercaseMapping) ?? c }

    static func single(_ s: String?) -> UInt32? {
        guard let s, s.unicodeScalars.count == 1 else { return nil }
        return s.unicodeScalars.first!.value
    }
}

/// Unicode general categories by their two-letter names, for `\p{…}`.
enum UnicodeCategories {
    static let codes: [(String, Unicode.GeneralCategory)] = [
        ("Lu", .uppercaseLetter), ("Ll", .lowercaseLetter), ("Lt", .titlecaseLetter), ("Lm", .modifierLetter), ("Lo", .otherLetter),
        ("Mn", .nonspacingMark), ("Mc", .spacingMark), ("Me", .enclosingMark), ("Nd", .decimalNumber), ("Nl", .letterNumber),
        ("No", .otherNumber), ("Pc", .connectorPunctuation), ("Pd", .dashPunctuation), ("Ps", .openPunctuation),
        ("Pe", .closePunctuation), ("Pi", .initialPunctuation), ("Pf", .finalPunctuation), ("Po", .otherPunctuation),
        ("Sm", .mathSymbol), ("Sc", .currencySymbol), ("Sk", .modifierSymbol), ("So", .otherSymbol), ("Zs", .spaceSeparator),
        ("Zl", .lineSeparator), ("Zp", .paragraphSeparator), ("Cc", .control), ("Cf", .format), ("Cs", .surrogate),
        ("Co", .privateUse), ("Cn", .unassigned),
    ]

    static func index(_ g: Unicode.GeneralCategory) -> Int { codes.firstIndex { $0.1 == g } ?? codes.count - 1 }

    /// The categories a name covers (`L` is every `L?`; `Any` is all), or nil for a name RE2 would take as a script.
    static func mask(_ name: String) -> UInt32? {
        if name == "Any" { return UInt32.max }
        var mask: UInt32 = 0
        for (i, (code, _)) in codes.enumerated() where code == name || (name.count == 1 && code.hasPrefix(name)) {
            mask |= 1 << i
        }
        return mask == 0 ? nil : mask
    }
}

/// A parsed pattern (groups are transparent: `matches` has no captures).
indirect enum RegexNode {
    case empty
    case scalar(UInt32, caseless: Bool)
    case set(CharSet)
    case any(newline: Bool)
    case assert(RegexProgram.Assertion)
    case concat([RegexNode])
    case alternate([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?)

    var isAnchoredAtStart: Bool {
        switch self {
        case .assert(.beginText): return true
        case .concat(let items): return items.first?.isAnchoredAtStart ?? false
        case .alternate(let alternatives): return alternatives.allSatisfy(\.isAnchoredAtStart)
        case .repetition(let n, let min, _): return min > 0 && n.isAnchoredAtStart
        default: return false
        }
    }

    /// What RE2 checks of nested counted repetitions: `budget` divided by each enclosing count stays positive.
    func repetitionBudget(_ budget: Int) -> Int {
        switch self {
        case .concat(let items), .alternate(let items): return items.map { $0.repetitionBudget(budget) }.min() ?? budget
        case .repetition(let n, let min, let max):
            let count = max ?? min
            return n.repetitionBudget(count > 1 ? budget / count : budget)
        default: return budget
        }
    }
}

struct RegexParser {
    struct Flags {
        var caseless = false
        var multiline = false
        var dotAll = false
    }

    let p: [Unicode.Scalar]
    var i = 0
    var flags = Flags()
    var depth = 0

    init(_ pattern: [Unicode.Scalar]) { p = pattern }

    func error(_ message: String) -> RegexSyntaxError { RegexSyntaxError(message: message) }

    func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < p.count ? p[i + k] : nil }

    mutating func parse() throws -> RegexNode {
        let node = try alternation()
        if i < p.count { throw error("unexpected ) at offset \(i) (no group to close)") }
        if node.repetitionBudget(RegexProgram.maxRepeat) == 0 {
            throw error("nested repetition counts multiply to more than \(RegexProgram.maxRepeat)")
        }
        return node
    }

    mutating func alternation() throws -> RegexNode {
        var alternatives = [try concatenation()]
        while peek() == "|" {
            i += 1
            alternatives.append(try concatenation())
        }
        return alternatives.count == 1 ? alternatives[0] : .alternate(alternatives)
    }

    mutating func concatenation() throws -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != "|", c != ")" {
            if let q = try quantifier() {
                guard let last = items.popLast() else { throw error("missing argument to repetition operator \(q.text)") }
                if q.min > RegexProgram.maxRepeat || (q.max ?? 0) > RegexProgram.maxRepeat {
                    throw error("repetition count \(q.text) exceeds RE2's limit of \(RegexProgram.maxRepeat)")
                }
                if let max = q.max, max < q.min { throw error("bad repetition operator \(q.text): the minimum exceeds the maximum") }
                items.append(.repetition(last, min: q.min, max: q.max))
                if peek() == "?" { i += 1 }  // lazy: the same language, and `matches` only asks whether there is a match
                if peek() == "+" { throw error("possessive quantifiers (\(p[i - 1])+) are not part of RE2 syntax") }
                let start = i
                if let stacked = try quantifier() {
                    i = start
                    throw error("bad repetition operator: \(q.text)\(stacked.text) (quantifiers do not stack)")
                }
                continue
            }
            items += try atom()
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concat(items))
    }

    /// `*`, `+`, `?` or a well-formed `{n}`, `{n,}`, `{n,m}` (consumed); nil otherwise (a `{` that starts no count
    /// is a literal, as in RE2).
    mutating func quantifier() throws -> (min: Int, max: Int?, text: String)? {
        switch peek() {
        case "*":
            i += 1
            return (0, nil, "*")
        case "+":
            i += 1
            return (1, nil, "+")
        case "?":
            i += 1
            return (0, 1, "?")
        case "{":
            var k = i + 1
            func number() -> Int? {
                var n = 0
                let start = k
                while k < p.count, ("0"..."9").contains(p[k]) {
                    n = min(n * 10 + Int(p[k].value - 0x30), 1_000_000)
                    k += 1
                }
                return k > start ? n : nil
            }
            guard let low = number() else { return nil }
            var high: Int? = low
            if k < p.count, p[k] == "," {
                k += 1
                high = number()
            }
            guard k < p.count, p[k] == "}" else { return nil }
            let text = String(String.UnicodeScalarView(p[i...k]))
            i = k + 1
            return (low, high, text)
        default: return nil
        }
    }

    mutating func atom() throws -> [RegexNode] {
        let c = p[i]
        i += 1
        switch c {
        case "(": return try group()
        case "[": return [.set(try charClass())]
        case ".": return [.any(newline: flags.dotAll)]
        case "^": return [.assert(flags.multiline ? .beginLine : .beginText)]
        case "$": return [.assert(flags.multiline ? .endLine : .endText)]
        case "\\": return try escape()
        default: return [literal(c.value)]
        }
    }

    func literal(_ v: UInt32) -> RegexNode {
        guard flags.caseless, CaseFolding.variants(v).contains(where: { $0 != v }) else { return .scalar(v, caseless: false) }
        return .scalar(CaseFolding.fold(v), caseless: true)
    }

    mutating func group() throws -> [RegexNode] {
        depth += 1
        defer { depth -= 1 }
        if depth > RegexProgram.maxNesting { throw error("groups nest more than \(RegexProgram.maxNesting) levels deep") }
        let saved = flags
        if peek() == "?" {
            i += 1
            let n = peek()
            switch n {
            case "=", "!": throw error("lookahead ((?\(n!)) is not part of RE2 syntax")
            case ">": throw error("atomic groups ((?>) are not part of RE2 syntax")
            case "(": throw error("conditionals ((?() are not part of RE2 syntax")
            case "#": throw error("comments ((?#) are not part of RE2 syntax")
            case "<" where peek(1) == "=" || peek(1) == "!": throw error("lookbehind ((?<\(peek(1)!)) is not part of RE2 syntax")
            case "P" where peek(1) == "=": throw error("backreferences ((?P=) are not part of RE2 syntax")
            case "P" where peek(1) == "<", "<":
                i += n == "P" ? 2 : 1
                let start = i
                while let d = peek(), d != ">" {
                    guard RegexProgram.isWord(d) else { throw error("invalid character in a group name: \(d)") }
                    i += 1
                }
                guard peek() == ">", i > start else { throw error("invalid named group: a name of letters, digits and _ must end with >") }
                i += 1
            default:
                // Flags: (?i) (?-s) (?im-sU) for the rest of the group, or (?i:…) for the group.
                var negate = false
                var any = false
                while let f = peek(), f != ")", f != ":" {
                    i += 1
                    switch f {
                    case "i": flags.caseless = !negate
                    case "m": flags.multiline = !negate
                    case "s": flags.dotAll = !negate
                    case "U": break  // ungreedy: the same language
                    case "-" where !negate: negate = true
                    default: throw error("unknown or unsupported flag (?\(f) (RE2 has i, m, s and U)")
                    }
                    any = any || f != "-"
                }
                guard let end = peek(), any || (end == ":" && !negate), !(negate && p[i - 1] == "-") else {
                    throw error("missing or invalid flags in (?…)")
                }
                i += 1
                if end == ")" {
                    // Applies to the rest of the enclosing group: keep the flags, produce nothing.
                    return []
                }
            }
        }
        let inner = try alternation()
        guard peek() == ")" else { throw error("missing ) to close a group") }
        i += 1
        flags = saved
        return [inner]
    }

    /// An escape outside a class.
    mutating func escape() throws -> [RegexNode] {
        guard let c = peek() else { throw error("trailing backslash at the end of the pattern") }
        switch c {
        case "b", "B", "A", "z":
            i += 1
            let a: RegexProgram.Assertion = c == "b" ? .wordBoundary : c == "B" ? .notWordBoundary : c == "A" ? .beginText : .endText
            return [.assert(a)]
        case "Z", "G": throw error("\\\(c) is not part of RE2 syntax (use \\z)")
        case "k", "g": throw error("backreferences (\\\(c)) are not part of RE2 syntax")
        case "Q":
            i += 1
            var out: [RegexNode] = []
            while i < p.count, !(p[i] == "\\" && peek(1) == "E") {
                out.append(literal(p[i].value))
                i += 1
            }
            if i < p.count { i += 2 }
            return out
        default:
            switch try classEscape() {
            case .scalar(let v): return [literal(v)]
            case .set(let s): return [.set(s)]
            }
        }
    }

    static let controlEscapes: [Unicode.Scalar: UInt32] = ["a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11]

    enum ClassItem {
        case scalar(UInt32)
        case set(CharSet)
    }

    /// An escape that means a scalar or a set, inside or outside a class (the backslash consumed).
    mutating func classEscape() throws -> ClassItem {
        guard let c = peek() else { throw error("trailing backslash at the end of the pattern") }
        i += 1
        if let control = Self.controlEscapes[c] { return .scalar(control) }
        switch c {
        case "d", "D", "w", "W", "s", "S":
            var set = CharSet()
            set.caseless = flags.caseless
            let lower = Character(c).lowercased()
            set.add(lower == "d" ? CharSet.digit : lower == "w" ? CharSet.word : CharSet.space, negated: c.properties.isUppercase)
            return .set(set)
        case "p", "P":
            var name: String
            if peek() == "{" {
                guard let close = p[i...].firstIndex(of: "}") else { throw error("missing } in \\\(c){…}") }
                name = String(String.UnicodeScalarView(p[(i + 1)..<close]))
                i = close + 1
            } else {
                guard let n = peek() else { throw error("missing class name after \\\(c)") }
                name = String(n)
                i += 1
            }
            var negated = c == "P"
            if name.hasPrefix("^") {
                negated.toggle()
                name.removeFirst()
            }
            guard let mask = UnicodeCategories.mask(name) else {
                throw error("unsupported Unicode class \\\(c){\(name)} (general categories like L, Lu, Nd and Any are supported; scripts are not)")
            }
            var set = CharSet()
            set.categories = [(mask, negated)]
            set.caseless = flags.caseless
            return .set(set)
        case "x":
            var hex = ""
            if peek() == "{" {
                guard let close = p[i...].firstIndex(of: "}") else { throw error("missing } in \\x{…}") }
                hex = String(String.UnicodeScalarView(p[(i + 1)..<close]))
                i = close + 1
            } else if i + 1 < p.count {
                hex = String(String.UnicodeScalarView(p[i...(i + 1)]))
                i += 2
            }
            guard hex.count <= 8, hex.allSatisfy(\.isHexDigit), let v = UInt32(hex, radix: 16), v <= 0x10FFFF else {
                throw error("invalid hexadecimal escape \\x\(hex)")
            }
            return .scalar(v)
        case "0"..."7":
            // RE2: \0 and \1-\7 followed by another octal digit are octal codes (up to 3 digits); \1-\9 alone would be
            // backreferences.
            if c != "0", !(peek().map { ("0"..."7").contains($0) } ?? false) {
                throw error("backreferences (\\\(c)) are not part of RE2 syntax")
            }
            var v = c.value - 0x30
            var digits = 1
            while digits < 3, let d = peek(), ("0"..."7").contains(d) {
                v = v * 8 + d.value - 0x30
                i += 1
                digits += 1
            }
            return .scalar(v)
        case "8", "9": throw error("backreferences (\\\(c)) are not part of RE2 syntax")
        case "C": throw error("\\C (any byte) is not supported: patterns match Unicode code points")
        default:
            guard c.isASCII, !c.properties.isAlphabetic, !(("0"..."9").contains(c)) else { throw error("invalid escape sequence \\\(c)") }
            return .scalar(c.value)
        }
    }

    /// A class after its `[`.
    mutating func charClass() throws -> CharSet {
        var set = CharSet()
        set.caseless = flags.caseless
        if peek() == "^" {
            set.negated = true
            i += 1
        }
        var first = true
        while true {
            guard let c = peek() else { throw error("missing ] to close a character class") }
            if c == "]", !first {
                i += 1
                break
            }
            first = false
            if c == "[", peek(1) == ":", let close = (i + 2 < p.count ? p[(i + 2)...] : []).firstIndex(of: ":"), close + 1 < p.count,
                p[close + 1] == "]"
            {
                var name = String(String.UnicodeScalarView(p[(i + 2)..<close]))
                let negated = name.hasPrefix("^")
                if negated { name.removeFirst() }
                guard let ranges = CharSet.posix[name] else { throw error("invalid POSIX class [:\(name):]") }
                set.add(ranges, negated: negated)
                i = close + 2
                continue
            }
            let low = try classAtom()
            guard case .scalar(let lo) = low else {
                if case .set(let s) = low { merge(s, into: &set) }
                continue
            }
            if peek() == "-", let after = peek(1), after != "]" {
                i += 1
                guard case .scalar(let hi) = try classAtom() else { throw error("invalid character class range: a class cannot end a range") }
                guard hi >= lo else { throw error("invalid character class range \(Self.show(lo))-\(Self.show(hi))") }
                set.add(lo...hi)
            } else {
                set.add(lo...lo)
            }
        }
        set.ranges = CharSet.normalized(set.ranges)
        return set
    }

    static func show(_ v: UInt32) -> String { Unicode.Scalar(v).map { String($0) } ?? "\\x{\(String(v, radix: 16))}" }

    func merge(_ s: CharSet, into set: inout CharSet) {
        set.ranges += s.ranges
        set.categories += s.categories
    }

    mutating func classAtom() throws -> ClassItem {
        let c = p[i]
        i += 1
        guard c == "\\" else { return .scalar(c.value) }
        return try classEscape()
    }
}

/// Emits instructions for a parsed pattern (Thompson's construction; counted repetitions are unrolled, as in RE2).
struct RegexCompiler {
    var insts: [RegexProgram.Inst] = []

    @discardableResult
    mutating func append(_ inst: RegexProgram.Inst) throws -> Int {
        guard insts.count < RegexProgram.maxInstructions else {
            throw RegexSyntaxError(message: "pattern too large: it compiles to more than \(RegexProgram.maxInstructions) instructions")
        }
        insts.append(inst)
        return insts.count - 1
    }

    mutating func emit(_ node: RegexNode) throws {
        switch node {
        case .empty: break
        case .scalar(let v, let caseless): try append(caseless ? .folded(v) : .scalar(v))
        case .set(let s): try append(.set(s))
        case .any(let newline): try append(newline ? .any : .anyButNewline)
        case .assert(let a): try append(.assert(a))
        case .concat(let items): for n in items { try emit(n) }
        case .alternate(let alternatives):
            var exits: [Int] = []
            for (k, n) in alternatives.enumerated() {
                if k == alternatives.count - 1 {
                    try emit(n)
                    break
                }
                let split = try append(.split(0, 0))
                try emit(n)
                exits.append(try append(.jump(0)))
                insts[split] = .split(split + 1, insts.count)
            }
            for j in exits { insts[j] = .jump(insts.count) }
        case .repetition(let n, let min, let max):
            // x{n,m} = x…x (n times), then m-n nested optional copies; x{n,} = x…x (n-1 times) then x+.
            for _ in 0..<(max == nil ? Swift.max(min - 1, 0) : min) { try emit(n) }
            if max == nil {
                if min == 0 {
                    let split = try append(.split(0, 0))
                    try emit(n)
                    try append(.jump(split))
                    insts[split] = .split(split + 1, insts.count)
                } else {
                    let start = insts.count
                    try emit(n)
                    try append(.split(start, insts.count + 1))
                }
            } else if let max, max > min {
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(try append(.split(0, 0)))
                    try emit(n)
                }
                for s in splits { insts[s] = .split(s + 1, insts.count) }
            }
        }
    }
}
