import Documents
import Foundation

/// One SLA category of a finding type: how bad a finding is and how long it may stay open.
public struct SLACategorisation: Hashable, Sendable {
    /// What puts a finding in the category.
    public enum Selector: Hashable, Sendable {
        /// A score in the range, both ends included (CVSS for vulnerabilities). Scores are compared at one decimal,
        /// CVSS's precision.
        case score(ClosedRange<Double>)
        /// A regular expression found in the data key's id (a license id, a malware signature name).
        case pattern(NamePattern)
    }

    /// `CRITICAL`: what rescorings and reports name.
    public var id: String
    public var displayName: String
    /// The rank: higher is worse (the default categories' values are their backlog priorities).
    public var value: Int
    /// How long after discovery a finding is due: `.zero` is due on discovery; nil: never due.
    public var allowedProcessingTime: Duration?
    /// nil: a category only a rescoring assigns.
    public var selector: Selector?

    public init(id: String, displayName: String? = nil, value: Int, allowedProcessingTime: Duration?, selector: Selector?) {
        self.id = id
        self.displayName = displayName ?? id.capitalized
        self.value = value
        self.allowedProcessingTime = allowedProcessingTime
        self.selector = selector
    }

    func selects(score: Double?, name: String) -> Bool {
        switch selector {
        case .score(let range): score.map { range.contains(($0 * 10).rounded() / 10) } ?? false
        case .pattern(let p): p.matches(name)
        case nil: false
        }
    }
}

/// A regular expression, compared by its source.
public struct NamePattern: Hashable, Sendable, CustomStringConvertible {
    public let source: String
    let regex: NSRegularExpression

    /// Throws when `source` is not a regular expression (ICU syntax).
    public init(_ source: String) throws {
        self.source = source
        regex = try NSRegularExpression(pattern: source)
    }

    /// Whether the expression occurs in `name` (anchor it with `^…$` for the whole name).
    public func matches(_ name: String) -> Bool { regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil }

    public var description: String { source }
    public static func == (a: NamePattern, b: NamePattern) -> Bool { a.source == b.source }
    public func hash(into h: inout Hasher) { h.combine(source) }
}

/// A finding's SLA category, or the explicit state of having none: a score in no range, a name no pattern takes,
/// a type without categorisations, a rescoring to a category the policy no longer has.
public enum SLACategory: Hashable, Sendable, CustomStringConvertible {
    case category(SLACategorisation)
    case uncategorised

    public var categorisation: SLACategorisation? {
        if case .category(let c) = self { return c }
        return nil
    }

    /// The category's id, or `uncategorised`.
    public var description: String { categorisation?.id ?? "uncategorised" }

    /// The order of badness for summaries: a category's value; uncategorised ranks above value 0 and below 1.
    var rank: Double { categorisation.map { Double($0.value) } ?? 0.5 }
}

/// The SLA categories of each finding type. A finding takes the first of its type's categories whose selector
/// takes it; score ranges of one type never overlap.
///
/// ```yaml
/// apiVersion: warden.dev/v1
/// kind: SLAPolicy
/// spec:
///   types:
///     - type: vulnerability
///       categorisations:
///         - id: CRITICAL
///           displayName: Critical        # default: the id, capitalised
///           value: 8                     # rank, higher is worse
///           allowedProcessingTime: 30    # days, or a duration (720h, 0s); 0 is due on discovery; omitted: never due
///           selector: {cvss: {min: 9.0, max: 10.0}}
///     - type: license
///       categorisations:
///         - {id: BLOCKED, value: 8, allowedProcessingTime: 0, selector: {pattern: "^(A|L)?GPL-"}}
/// ```
public struct SLAPolicy: Hashable, Sendable {
    public let categorisations: [FindingType: [SLACategorisation]]
    let byID: [FindingType: [String: SLACategorisation]]

    public init(_ categorisations: [FindingType: [SLACategorisation]]) {
        self.categorisations = categorisations
        byID = categorisations.mapValues { Dictionary($0.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }) }
    }

    /// Vulnerabilities by CVSS: CRITICAL 9.0–10.0 and HIGH 7.0–8.9 due in 30 days, MEDIUM 4.0–6.9 in 90, LOW
    /// 0.1–3.9 in 120, NONE (0) never due. Licenses by id (``defaultLicenseCategorisations``): strong copyleft HIGH,
    /// weak copyleft, exceptions and `UNKNOWN` MEDIUM, common permissive licenses NONE; any other id is uncategorised.
    public static let `default` = SLAPolicy([
        .vulnerability: [
            SLACategorisation(id: "CRITICAL", value: 8, allowedProcessingTime: .days(30), selector: .score(9.0...10.0)),
            SLACategorisation(id: "HIGH", value: 4, allowedProcessingTime: .days(30), selector: .score(7.0...8.9)),
            SLACategorisation(id: "MEDIUM", value: 2, allowedProcessingTime: .days(90), selector: .score(4.0...6.9)),
            SLACategorisation(id: "LOW", value: 1, allowedProcessingTime: .days(120), selector: .score(0.1...3.9)),
            SLACategorisation(id: "NONE", value: 0, allowedProcessingTime: nil, selector: .score(0...0)),
        ],
        .license: defaultLicenseCategorisations,
    ])

    /// The default license categories, matched from the start of the license id in any case (SPDX ids, Debian's
    /// short names such as `GPL-2+` and `Expat`, RPM's such as `GPLv2+`, Python's classifier names such as
    /// `MIT License`):
    /// - HIGH (due in 30 days): strong and network copyleft without an exception — GPL, AGPL, SSPL, EUPL, OSL, RPL, CPAL;
    /// - MEDIUM (due in 90 days): weak copyleft — LGPL, MPL, EPL, CDDL, CPL, Ms-RL —, any id with a `WITH`
    ///   exception, and `UNKNOWN` (a package that declares no license);
    /// - NONE (never due): common permissive licenses — MIT, BSD, Apache, ISC, Zlib, PSF, CC0, the Unlicense, public
    ///   domain and the like.
    ///
    /// Any other id (a proprietary `LicenseRef-…`, a name no list knows) is uncategorised: kept, and ranked between
    /// NONE and LOW for review.
    public static let defaultLicenseCategorisations: [SLACategorisation] = [
        SLACategorisation(
            id: "HIGH", value: 4, allowedProcessingTime: .days(30),
            selector: .pattern(
                licensePattern(
                    prefix: "(?!.* WITH )", [#"(AGPL|GPL|SSPL|EUPL|OSL|RPL|CPAL)(-|v[0-9]|\+|$)"#, "GNU (Affero )?General Public License"]))),
        SLACategorisation(
            id: "MEDIUM", value: 2, allowedProcessingTime: .days(90),
            selector: .pattern(
                licensePattern([
                    "UNKNOWN$", #"(LGPL|MPL|EPL|CDDL|CPL|Ms-RL)(-|v[0-9]|\+|$)"#, "GNU (Lesser|Library) General Public License",
                    "(Mozilla|Eclipse) Public License", ".* WITH ",
                ]))),
        SLACategorisation(
            id: "NONE", value: 0, allowedProcessingTime: nil,
            selector: .pattern(
                licensePattern(
                    [
                        "MIT", "MIT-0", "X11", "Expat", "ISC", "0BSD", "BSD", "BSD-[0-9]-Clause.*", "Apache", #"Apache-[0-9.]+"#, #"ASL-?2\.0"#,
                        "Zlib", #"PSF-2\.0"#, #"Python-2\.0(\.1)?"#, #"CC0-1\.0"#, "Unlicense", #"BSL-1\.0"#, "WTFPL", "public-domain",
                        "PostgreSQL", "NCSA", "curl", #"BlueOak-1\.0\.0"#, "Unicode-DFS-201[56]", #"Unicode-3\.0"#, "MIT License",
                        "BSD License", "Apache Software License", #"ISC License( \(ISCL\))?"#, "Python Software Foundation License",
                    ], whole: true))),
    ]

    /// `(?i)^PREFIX(A|B|…)`, and `$` after the group when `whole`.
    static func licensePattern(prefix: String = "", _ alternatives: [String], whole: Bool = false) -> NamePattern {
        try! NamePattern("(?i)^" + prefix + "(" + alternatives.joined(separator: "|") + ")" + (whole ? "$" : ""))
    }

    /// The category a finding's score or id puts it in.
    public func category(of finding: Finding) -> SLACategory {
        guard let list = categorisations[finding.key.type],
            let c = list.first(where: { $0.selects(score: finding.score, name: finding.key.dataKey.id) })
        else { return .uncategorised }
        return .category(c)
    }

    /// The category `id` of `type` (what a rescoring names).
    public func category(id: String, type: FindingType) -> SLACategory {
        byID[type]?[id].map(SLACategory.category) ?? .uncategorised
    }

    public static func == (a: SLAPolicy, b: SLAPolicy) -> Bool { a.categorisations == b.categorisations }
    public func hash(into h: inout Hasher) { h.combine(categorisations) }
}

// MARK: - Reading

extension SLAPolicy {
    static let topKeys = ["apiVersion", "kind", "metadata", "spec"]
    static let typeKeys = ["type", "categorisations"]
    static let categoryKeys = ["id", "displayName", "value", "allowedProcessingTime", "selector"]

    /// Reads an SLA policy; errors are ``YAMLError``s at the offending key or value: unknown keys, bad or
    /// overlapping score ranges, bad regular expressions, duplicate types or category ids.
    public static func parse(_ text: String, file: String) throws -> SLAPolicy { try parseDocument(text, file: file).policy }

    /// Reads an SLA policy document with its discovery-date rule (`spec.discovery.maximumReuse`: whole days or a
    /// duration; absent: without limit).
    public static func parseDocument(_ text: String, file: String) throws -> (policy: SLAPolicy, discovery: DiscoveryDates) {
        let root = try YAMLValue.parse(text, file: file)
        let top = try root.fields(allowed: topKeys)
        guard let api = top["apiVersion"] else { throw root.error("apiVersion is missing (expected warden.dev/v1)") }
        guard try api.string() == "warden.dev/v1" else { throw api.error("apiVersion must be warden.dev/v1") }
        guard let kind = top["kind"] else { throw root.error("kind is missing (expected SLAPolicy)") }
        guard try kind.string() == "SLAPolicy" else { throw kind.error("kind must be SLAPolicy") }
        if let m = top["metadata"] { _ = try m.fields(allowed: ["name", "description"]) }
        guard let spec = top["spec"] else { throw root.error("spec is missing: a policy needs spec.types") }
        let specFields = try spec.fields(allowed: ["types", "discovery"])
        guard let typesValue = specFields["types"] else { throw spec.error("spec.types is missing") }
        var discovery = DiscoveryDates()
        if let d = specFields["discovery"], let reuse = try d.fields(allowed: ["maximumReuse"])["maximumReuse"] {
            discovery.maximumReuse = try processingTime(reuse, "maximumReuse")
        }
        var out: [FindingType: [SLACategorisation]] = [:]
        for entry in try typesValue.list() {
            let f = try entry.fields(allowed: typeKeys)
            guard let t = f["type"] else { throw entry.error("type is missing (vulnerability, license, malware, os-eol or a type of your own)") }
            let name = try t.string()
            guard isName(name) else { throw t.error("type \"\(name)\" must match ^[a-z][a-z0-9/-]{0,62}$") }
            let type = FindingType(name)
            guard out[type] == nil else { throw t.error("type \"\(name)\" is listed twice") }
            guard let list = f["categorisations"] else { throw entry.error("categorisations is missing") }
            out[type] = try categorisations(list)
        }
        return (SLAPolicy(out), discovery)
    }

    static func categorisations(_ list: YAMLValue) throws -> [SLACategorisation] {
        var out: [SLACategorisation] = []
        for item in try list.list() {
            let f = try item.fields(allowed: categoryKeys)
            guard let idValue = f["id"] else { throw item.error("id is missing") }
            let id = try idValue.string()
            guard !id.isEmpty, id.count <= 64, !id.contains(where: \.isWhitespace) else {
                throw idValue.error("id must be 1 to 64 characters without spaces")
            }
            guard !out.contains(where: { $0.id == id }) else { throw idValue.error("category \"\(id)\" is listed twice") }
            guard let valueNode = f["value"] else { throw item.error("value is missing (an integer rank, higher is worse)") }
            let value = try valueNode.int()
            guard value >= 0 else { throw valueNode.error("value must not be negative") }
            let time = try f["allowedProcessingTime"].map { try processingTime($0) }
            var selector: SLACategorisation.Selector?
            if let s = f["selector"] { selector = try parseSelector(s, after: out) }
            out.append(
                SLACategorisation(id: id, displayName: try f["displayName"]?.string(), value: value, allowedProcessingTime: time, selector: selector))
        }
        return out
    }

    static func parseSelector(_ v: YAMLValue, after earlier: [SLACategorisation]) throws -> SLACategorisation.Selector {
        let f = try v.fields(allowed: ["cvss", "pattern"])
        guard f.count == 1 else { throw v.error("selector needs exactly one of cvss or pattern") }
        if let p = f["pattern"] {
            let source = try p.string()
            guard let pattern = try? NamePattern(source) else { throw p.error("pattern \"\(source)\" is not a regular expression") }
            return .pattern(pattern)
        }
        let cvss = f["cvss"]!
        let r = try cvss.fields(allowed: ["min", "max"])
        guard let minValue = r["min"], let maxValue = r["max"] else { throw cvss.error("cvss needs min and max") }
        let (low, high) = (try score(minValue), try score(maxValue))
        guard low <= high else { throw cvss.error("cvss range \(low)–\(high): min is above max") }
        for c in earlier {
            if case .score(let other) = c.selector, other.overlaps(low...high) {
                throw cvss.error("cvss range \(low)–\(high) overlaps category \(c.id)'s \(other.lowerBound)–\(other.upperBound)")
            }
        }
        return .score(low...high)
    }

    static func score(_ v: YAMLValue) throws -> Double {
        let text = try v.string()
        guard let d = Double(text), d.isFinite, (0...10).contains(d) else { throw v.error("\"\(text)\" is not a score from 0 to 10") }
        return d
    }

    /// Whole days (`30`) or a duration (`720h`, `0s`).
    static func processingTime(_ v: YAMLValue, _ what: String = "allowedProcessingTime") throws -> Duration {
        let text = try v.string()
        if let days = Int(text), days >= 0, days <= 36_500 { return .days(days) }
        guard let d = Duration.parse(text) else {
            throw v.error("\(what) \"\(text)\" is neither a number of days nor a duration (like 720h)")
        }
        return d
    }

    static func isName(_ s: String) -> Bool {
        guard let first = s.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), s.utf8.count <= 63 else { return false }
        return s.utf8.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: "/")
        }
    }
}
