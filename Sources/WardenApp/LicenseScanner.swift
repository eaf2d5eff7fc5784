import Findings
import Foundation
import Inventory

/// The license scanner (datasource `license`): every license a package of an inventory declares becomes a finding,
/// one per package and license id, so SLA categories and rescorings can decide which licenses need attention.
///
/// A declared license expression is split into the ids it names: `MIT OR Apache-2.0` gives `MIT` and `Apache-2.0`,
/// `(MIT AND BSD-3-Clause) OR GPL-2.0-only` three ids. An id with an exception stays one id
/// (`GPL-2.0-only WITH Classpath-exception-2.0`): the exception changes what the license asks for. The operators
/// are read in any case (`GPLv2+ and BSD`, as RPM writes them); a name with spaces (`MIT License`) is one id, and a
/// declaration without an operator is one name as written (`GNU General Public License v3 (GPLv3)`). Parentheses
/// and operators only separate ids, so a malformed expression still yields the ids in it.
///
/// A package that declares no license (or only `NOASSERTION` or `NONE`, SPDX's words for it) gets the id `UNKNOWN`:
/// not knowing a package's license is a finding too.
public enum LicenseScanner {
    /// The datasource name findings of this scanner are recorded under.
    public static let datasource = "license"
    /// The id reported for a package without a usable license declaration.
    public static let unknown = "UNKNOWN"

    /// One entry per package subject (``subject(of:)``) and license id, sorted by subject then id. The same subject
    /// found more than once (two versions of one npm package) is reported once per id; the summary (at most 500
    /// characters) names the versions and what they declared.
    public static func entries(for inventory: Inventory) -> [Scan.Entry] {
        struct Seen {
            var name: String
            var type: String
            var versions: Set<String> = []
            var declared: Set<String> = []
        }
        var seen: [DataKey: Seen] = [:]
        for package in inventory.packages {
            let subject = subject(of: package)
            let declared = package.licenses.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            var ids = declared.flatMap(licenseIDs)
            if ids.isEmpty { ids = [unknown] }
            for id in Set(ids) {
                let key = DataKey.license(package: subject, id: id)
                seen[key, default: Seen(name: package.name, type: package.type)].versions.insert(package.version)
                seen[key]!.declared.formUnion(declared)
            }
        }
        return seen.keys.sorted().map { key in
            let s = seen[key]!
            let versions = s.versions.filter { !$0.isEmpty }.sorted().joined(separator: ", ")
            let what = versions.isEmpty ? "\(s.name) (\(s.type))" : "\(s.name) \(versions) (\(s.type))"
            // An unknown license's summary does not repeat `NOASSERTION` or `NONE`: it says what they mean.
            let summary =
                key.id == unknown
                ? "\(what) declares no license" : "\(what) is licensed \(key.id) (declared: \(s.declared.sorted().joined(separator: "; ")))"
            return Scan.Entry(key, summary: String(summary.prefix(500)))
        }
    }

    /// A complete license scan of `artefact` from its inventory.
    public static func scan(_ inventory: Inventory, artefact: ArtefactID, at time: Date) -> Scan {
        Scan(artefact: artefact, datasource: datasource, scannedAt: time, entries: entries(for: inventory))
    }

    /// What a package's findings are about: its purl without version, qualifiers and subpath (`pkg:deb/debian/openssl`),
    /// so a version bump is the same finding; its type and name (`deb/openssl`) when it has no purl.
    public static func subject(of package: Package) -> String {
        var purl = Substring(package.purl)
        guard purl.hasPrefix("pkg:"), let typeEnd = purl.dropFirst(4).firstIndex(of: "/") else { return "\(package.type)/\(package.name)" }
        if let hash = purl.firstIndex(of: "#") { purl = purl[..<hash] }
        if let query = purl.firstIndex(of: "?") { purl = purl[..<query] }
        // The version follows the last `@` after the type (an `@` in a name is percent-encoded).
        if let at = purl.lastIndex(of: "@"), at > typeEnd { purl = purl[..<at] }
        return String(purl)
    }

    /// The license ids a declared license or expression names, in order of appearance, without repeats. `NOASSERTION`
    /// and `NONE` name no license and are left out.
    public static func licenseIDs(_ expression: String) -> [String] {
        let all = expression.split(whereSeparator: \.isWhitespace)
        guard all.contains(where: { ["AND", "OR", "WITH"].contains($0.uppercased()) }) else {
            // No operator: a name as written (`GNU General Public License v3 (GPLv3)`), without enclosing parentheses.
            var name = all.joined(separator: " ")[...]
            while name.hasPrefix("("), name.hasSuffix(")") { name = name.dropFirst().dropLast() }
            name = name.trimmingCharacters(in: .whitespaces)[...]
            return name.isEmpty || ["NOASSERTION", "NONE"].contains(name.uppercased()) ? [] : [String(name)]
        }
        var ids: [String] = []
        var words: [Substring] = []
        var exception: [Substring]?
        func flush() {
            if exception != nil, words.isEmpty {
                // `WITH` without a license before it: keep what follows as a name of its own.
                words = exception!
                exception = nil
            }
            guard !words.isEmpty else {
                exception = nil
                return
            }
            var id = words.joined(separator: " ")
            if let exception, !exception.isEmpty { id += " WITH " + exception.joined(separator: " ") }
            let upper = id.uppercased()
            if upper != "NOASSERTION", upper != "NONE", !ids.contains(id) { ids.append(id) }
            words = []
            exception = nil
        }
        var token = ""
        func endWord() {
            guard !token.isEmpty else { return }
            switch token.uppercased() {
            case "AND", "OR": flush()
            case "WITH":
                if exception == nil { exception = [] } else { exception!.append(Substring(token)) }
            default:
                if exception != nil { exception!.append(Substring(token)) } else { words.append(Substring(token)) }
            }
            token = ""
        }
        for c in expression {
            if c == "(" || c == ")" {
                endWord()
                flush()
            } else if c.isWhitespace {
                endWord()
            } else {
                token.append(c)
            }
        }
        endWord()
        flush()
        return ids
    }
}
