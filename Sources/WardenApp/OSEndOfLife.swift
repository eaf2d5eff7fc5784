import Findings
import Foundation
import Inventory

/// When operating system releases stop getting security updates, for the OS end-of-life scanner (datasource
/// `os-eol`): an image whose OS release is past its end of life is a finding.
///
/// Debian and Ubuntu come from Debian's `distro-info-data` (`/usr/share/distro-info/debian.csv` and `ubuntu.csv`),
/// kept current by the distribution's package; Alpine from a table built in (``alpineReleases``). What counts as the
/// end of life is the end of the security updates the distribution publishes to everyone, without a subscription:
/// - Debian: the end of Debian LTS (`eol-lts`), else of regular security support (`eol`). Freexian's commercial
///   ELTS (`eol-elts`) is named in the summary, not counted.
/// - Ubuntu: the end of standard support (`eol`, or `eol-server` where server releases were supported longer).
///   Expanded Security Maintenance (`eol-esm`, part of Ubuntu Pro) is named in the summary, not counted.
/// - Alpine: the branch's end of support.
///
/// A date in the tables is the last day of support: a release is past its end of life from the start of the next
/// day (UTC).
public struct OSEndOfLifeTable: Sendable, Hashable {
    /// The datasource name findings of this scanner are recorded under.
    public static let datasource = "os-eol"
    /// Where Debian's `distro-info-data` package installs its tables.
    public static let distroInfoDirectory = "/usr/share/distro-info"

    /// Support beyond the end of life that needs a subscription (Ubuntu Pro's ESM, Debian's ELTS).
    public struct ExtendedSupport: Sendable, Hashable {
        public var name: String
        /// The last day of that support.
        public var until: Date
    }

    /// One release of one OS.
    public struct Release: Sendable, Hashable {
        /// The os-release id: `debian`, `ubuntu`, `alpine`.
        public var os: String
        /// As os-release's `VERSION_ID` names it, shortened to what identifies the release: `12`, `22.04`, `3.19`;
        /// empty for a release without a number (Debian's sid).
        public var version: String
        /// The release's name (`Bookworm`, `Jammy Jellyfish`), if it has one.
        public var codename: String?
        /// os-release's `VERSION_CODENAME` (`bookworm`, `jammy`), if it has one.
        public var series: String?
        public var released: Date?
        /// The last day of support (see the type's documentation for which support); nil when not announced.
        public var endOfLife: Date?
        /// What ``endOfLife`` is the end of (`Debian LTS`, `standard support`).
        public var support: String
        public var extended: [ExtendedSupport]

        public init(
            os: String, version: String, codename: String? = nil, series: String? = nil, released: Date? = nil, endOfLife: Date?,
            support: String, extended: [ExtendedSupport] = []
        ) {
            self.os = os
            self.version = version
            self.codename = codename
            self.series = series
            self.released = released
            self.endOfLife = endOfLife
            self.support = support
            self.extended = extended
        }

        /// Whether the release is past its end of life at `date`: after the whole of its last day of support.
        public func isPastEndOfLife(at date: Date) -> Bool {
            guard let endOfLife else { return false }
            return date >= endOfLife.addingTimeInterval(86_400)
        }

        /// `debian 12 (Bookworm)`, `ubuntu 22.04 (Jammy Jellyfish)`, `alpine 3.19`.
        public var name: String {
            let number = version.isEmpty ? (series ?? "") : version
            return [os, number].filter { !$0.isEmpty }.joined(separator: " ") + (codename.map { " (\($0))" } ?? "")
        }
    }

    /// What the table says about one OS release at one date.
    public enum Status: Sendable, Hashable, CustomStringConvertible {
        /// Still supported (its end of life is later, or not announced).
        case supported(Release)
        /// Past its end of life.
        case endOfLife(Release)
        /// The table knows the OS but not this release (a release newer than the table, or a version that is not one).
        case unknownRelease(os: String, version: String)
        /// The table knows nothing of the OS.
        case unknownOS(String)
        /// The inventory found no os-release.
        case noOS

        /// The finding: one entry when past the end of life, none otherwise.
        public var entries: [Scan.Entry] {
            guard case .endOfLife(let r) = self else { return [] }
            return [Scan.Entry(.osEndOfLife(os: r.os, version: r.version.isEmpty ? (r.series ?? "") : r.version), summary: description)]
        }

        public var description: String {
            switch self {
            case .supported(let r):
                guard let end = r.endOfLife else { return "\(r.name) is supported (no end of life announced)" }
                return "\(r.name) is supported until \(OSEndOfLifeTable.day(end)) (end of \(r.support))"
            case .endOfLife(let r):
                var text = "\(r.name) is past its end of life since \(OSEndOfLifeTable.day(r.endOfLife!)) (end of \(r.support))"
                let paid = r.extended.map { "\($0.name) until \(OSEndOfLifeTable.day($0.until))" }
                if !paid.isEmpty { text += "; with a subscription: " + paid.joined(separator: ", ") }
                return text
            case .unknownRelease(let os, let version):
                return "unknown release: the end-of-life table has no \(os) release \"\(version)\" (a release newer than the table, or not one)"
            case .unknownOS(let os): return "unknown OS \"\(os)\": the end-of-life table covers \(OSEndOfLifeTable.knownOSes.joined(separator: ", "))"
            case .noOS: return "no OS found (the image has no os-release)"
            }
        }
    }

    /// The OS ids the table has releases of: those `distro-info-data` covers and Alpine.
    public static let knownOSes = ["alpine", "debian", "ubuntu"]

    public private(set) var releases: [Release]

    public init(releases: [Release]) { self.releases = releases }

    /// Debian and Ubuntu from `directory`'s `debian.csv` and `ubuntu.csv`, and Alpine's built-in table. A missing or
    /// malformed file is an error naming it (and the line).
    public static func load(directory: String = distroInfoDirectory) throws -> OSEndOfLifeTable {
        var releases: [Release] = []
        for os in ["debian", "ubuntu"] {
            let path = directory + "/" + os + ".csv"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw InventoryError(.notFound, "\(path): cannot read the file (install Debian's distro-info-data package)")
            }
            guard let text = String(data: data, encoding: .utf8) else { throw InventoryError(.malformed, "\(path): not UTF-8 text") }
            releases += try parseDistroInfo(text, os: os, file: path)
        }
        return OSEndOfLifeTable(releases: releases + alpineReleases)
    }

    /// The releases in a `distro-info-data` CSV file (`debian.csv`, `ubuntu.csv`): a header naming the columns
    /// (`version,codename,series,created,release,eol` and optional further dates such as `eol-lts` or `eol-esm`),
    /// then one release per line. Lines are checked strictly: the number of fields, the dates (`YYYY-MM-DD`), the
    /// names; an error names `file:line`.
    public static func parseDistroInfo(_ text: String, os: String, file: String) throws -> [Release] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last == "" { lines.removeLast() }
        func error(_ line: Int, _ reason: String) -> InventoryError { InventoryError(.malformed, "\(file):\(line): \(reason)") }
        guard let headerLine = lines.first else { throw error(1, "the file is empty (expected a header line)") }
        let header = headerLine.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let required = ["version", "codename", "series", "created", "release", "eol"]
        guard Array(header.prefix(required.count)) == required else {
            throw error(1, "the header is \"\(headerLine)\", expected it to start with \(required.joined(separator: ","))")
        }
        for (i, name) in header.enumerated() where name.isEmpty || header[..<i].contains(name) {
            throw error(1, name.isEmpty ? "column \(i + 1) of the header has no name" : "column \"\(name)\" is named twice")
        }
        var out: [Release] = []
        for (index, line) in lines.enumerated().dropFirst() {
            let number = index + 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            // Columns after `created` may be left off at the end of a line (a release not yet out).
            guard fields.count >= 4, fields.count <= header.count else {
                throw error(number, "\(fields.count) fields, expected 4 to \(header.count) (\(header.joined(separator: ",")))")
            }
            var row: [String: String] = [:]
            for (i, value) in fields.enumerated() {
                guard !value.contains("\""), value.trimmingCharacters(in: .whitespaces) == value else {
                    throw error(number, "field \(header[i]) \"\(value)\" has quotes or surrounding spaces")
                }
                row[header[i]] = value
            }
            var dates: [String: Date] = [:]
            for name in header.dropFirst(3) {
                guard let value = row[name], !value.isEmpty else {
                    if name == "created" { throw error(number, "the created date is empty") }
                    continue
                }
                guard let date = parseDay(value) else { throw error(number, "\(name) \"\(value)\" is not a date (YYYY-MM-DD)") }
                dates[name] = date
            }
            let version = row["version"]!
            let codename = row["codename"]!
            let series = row["series"]!
            guard !codename.isEmpty, !series.isEmpty else { throw error(number, "the codename and the series must not be empty") }
            guard series.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw error(number, "series \"\(series)\" is not a release name")
            }
            var release = Release(
                os: os, version: shortVersion(version), codename: codename, series: series, released: dates["release"], endOfLife: dates["eol"],
                support: "security support")
            guard release.version.isEmpty || release.version.first!.isNumber else { throw error(number, "version \"\(version)\" is not a number") }
            switch os {
            case "debian":
                if let lts = dates["eol-lts"] {
                    release.endOfLife = lts
                    release.support = "Debian LTS"
                }
                if let elts = dates["eol-elts"] { release.extended.append(ExtendedSupport(name: "Freexian ELTS", until: elts)) }
            case "ubuntu":
                release.support = "standard support"
                if let server = dates["eol-server"], release.endOfLife.map({ server > $0 }) ?? true { release.endOfLife = server }
                if let esm = dates["eol-esm"] { release.extended.append(ExtendedSupport(name: "Ubuntu Pro ESM", until: esm)) }
                if let legacy = dates["eol-legacy"] { release.extended.append(ExtendedSupport(name: "Ubuntu Pro Legacy", until: legacy)) }
            default: break
            }
            out.append(release)
        }
        return out
    }

    /// Alpine's stable branches and their end of support, from alpinelinux.org/releases ("End of support"; the main
    /// repository, about two years after the branch's release), as endoflife.date tabulates it
    /// (github.com/endoflife-date/endoflife.date, products/alpine-linux.md), checked in 2026-08. A new branch comes
    /// out every May and November: add it here.
    public static let alpineReleases: [Release] = [
        ("3.0", "2014-06-04", "2016-05-01"), ("3.1", "2014-12-10", "2016-11-01"), ("3.2", "2015-05-26", "2017-05-01"),
        ("3.3", "2015-12-19", "2017-11-01"), ("3.4", "2016-05-31", "2018-05-01"), ("3.5", "2016-12-22", "2018-11-01"),
        ("3.6", "2017-05-24", "2019-05-01"), ("3.7", "2017-11-30", "2019-11-01"), ("3.8", "2018-06-26", "2020-05-01"),
        ("3.9", "2019-01-29", "2020-11-01"), ("3.10", "2019-06-19", "2021-05-01"), ("3.11", "2019-12-19", "2021-11-01"),
        ("3.12", "2020-05-29", "2022-05-01"), ("3.13", "2021-01-14", "2022-11-01"), ("3.14", "2021-06-15", "2023-05-01"),
        ("3.15", "2021-11-24", "2023-11-01"), ("3.16", "2022-05-23", "2024-05-23"), ("3.17", "2022-11-22", "2024-11-22"),
        ("3.18", "2023-05-09", "2025-05-09"), ("3.19", "2023-12-07", "2025-11-01"), ("3.20", "2024-05-22", "2026-04-01"),
        ("3.21", "2024-12-05", "2026-11-01"), ("3.22", "2025-05-30", "2027-05-01"), ("3.23", "2025-12-04", "2027-11-01"),
        ("3.24", "2026-06-09", "2028-06-01"),
    ].map { branch, released, end in
        Release(os: "alpine", version: branch, released: parseDay(released)!, endOfLife: parseDay(end)!, support: "support")
    }

    /// What the table says about release `version` (os-release's `VERSION_ID`) of `os` at `date`. The version is
    /// matched as written, then shortened: `12.5` finds Debian 12, `22.04.3` Ubuntu 22.04, `3.19.1` (or
    /// `3.22.0_alpha20250108`) Alpine 3.19 (3.22). Without a version, `codename` (os-release's `VERSION_CODENAME`,
    /// as Debian's testing and sid give it) is looked up.
    public func status(os: String, version: String?, codename: String? = nil, at date: Date) -> Status {
        let os = os.lowercased()
        let ofOS = releases.filter { $0.os == os }
        guard !ofOS.isEmpty else { return .unknownOS(os) }
        var found: Release?
        if let version, !version.isEmpty {
            var candidate = String(version.prefix { $0.isNumber || $0 == "." })
            while found == nil, !candidate.isEmpty {
                found = ofOS.first { $0.version == candidate }
                candidate = candidate.contains(".") ? String(candidate[..<candidate.lastIndex(of: ".")!]) : ""
            }
        } else if let codename, !codename.isEmpty {
            found = ofOS.first { $0.series?.lowercased() == codename.lowercased() }
        }
        guard let found else { return .unknownRelease(os: os, version: version ?? codename ?? "") }
        return found.isPastEndOfLife(at: date) ? .endOfLife(found) : .supported(found)
    }

    /// What the table says about an inventory's OS (``Inventory/distro``) at `date`.
    public func status(of distro: Distro?, at date: Date) -> Status {
        guard let distro else { return .noOS }
        return status(os: distro.id, version: distro.versionID, codename: distro.versionCodename, at: date)
    }

    /// A complete OS end-of-life scan of `artefact` from its inventory, with the status it was made from (a caller
    /// shows an unknown release or OS instead of taking the empty scan for good news).
    public func scan(_ inventory: Inventory, artefact: ArtefactID, at time: Date) -> (scan: Scan, status: Status) {
        let status = status(of: inventory.distro, at: time)
        return (Scan(artefact: artefact, datasource: Self.datasource, scannedAt: time, entries: status.entries), status)
    }

    /// `12`, `22.04` (Ubuntu's ` LTS` dropped), `3.0`.
    static func shortVersion(_ version: String) -> String {
        String(version.prefix { $0 != " " })
    }

    /// Midnight UTC of a `YYYY-MM-DD` day, or nil when it is not a valid date.
    static func parseDay(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2])
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: y, month: m, day: d)
        guard components.isValidDate(in: calendar), let date = calendar.date(from: components) else { return nil }
        return date
    }

    /// `YYYY-MM-DD` of a date, in UTC.
    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }
}
