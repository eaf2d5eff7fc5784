import Crypto
import Findings
import Foundation
import Inventory
import OCI
import Testing
import WardenApp

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Licenses

@Suite struct LicenseScannerTests {
    /// Expressions and the license ids they name.
    @Test(arguments: [
        ("MIT", ["MIT"]),
        ("MIT OR Apache-2.0", ["MIT", "Apache-2.0"]),
        ("(MIT AND BSD-3-Clause) OR GPL-2.0-only", ["MIT", "BSD-3-Clause", "GPL-2.0-only"]),
        ("Apache-2.0 AND (MIT OR (BSD-2-Clause AND ISC))", ["Apache-2.0", "MIT", "BSD-2-Clause", "ISC"]),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["GPL-2.0-only WITH Classpath-exception-2.0"]),
        ("(LGPL-2.1-or-later WITH GCC-exception-3.1 OR MIT)", ["LGPL-2.1-or-later WITH GCC-exception-3.1", "MIT"]),
        ("GPLv2+ and BSD or MIT", ["GPLv2+", "BSD", "MIT"]),
        ("MIT License", ["MIT License"]),
        ("GNU General Public License v3 (GPLv3)", ["GNU General Public License v3 (GPLv3)"]),
        ("((MIT))", ["MIT"]),
        ("  MIT   OR\tMIT ", ["MIT"]),
        ("MIT OR", ["MIT"]),
        ("AND OR ()", []),
        ("Apache-2.0 AND (MIT OR NOASSERTION)", ["Apache-2.0", "MIT"]),
        ("NOASSERTION", []),
        ("NONE", []),
        ("", []),
    ])
    func expressionsSplitIntoIDs(expression: String, ids: [String]) {
        #expect(LicenseScanner.licenseIDs(expression) == ids)
    }

    @Test(arguments: [
        ("pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", "openssl", "pkg:deb/debian/openssl"),
        ("pkg:npm/%40babel/core@7.24.0", "@babel/core", "pkg:npm/%40babel/core"),
        ("pkg:golang/github.com/spf13/cobra@v1.8.0#cmd", "github.com/spf13/cobra", "pkg:golang/github.com/spf13/cobra"),
        ("pkg:pypi/jinja2", "jinja2", "pkg:pypi/jinja2"),
        ("", "busybox", "x/busybox"),
    ])
    func subjectIsThePurlWithoutVersion(purl: String, name: String, subject: String) {
        #expect(LicenseScanner.subject(of: Package(type: "x", name: name, version: "1", purl: purl, locations: [])) == subject)
    }

    static func inventory(_ packages: [Package]) -> Inventory {
        Inventory(subject: .init(name: "test", digest: nil, manifestDigest: nil, platform: nil), distro: nil, layers: [], packages: packages)
    }

    @Test func oneEntryPerPackageAndLicenseSorted() {
        let inventory = Self.inventory([
            Package(
                type: "npm", name: "lodash", version: "4.17.21", purl: "pkg:npm/lodash@4.17.21", licenses: ["MIT"], locations: ["/app/a"]),
            Package(
                type: "npm", name: "lodash", version: "4.17.20", purl: "pkg:npm/lodash@4.17.20", licenses: ["MIT"], locations: ["/app/b"]),
            Package(
                type: "npm", name: "dual", version: "1.0.0", purl: "pkg:npm/dual@1.0.0", licenses: ["(MIT OR Apache-2.0)"], locations: ["/app/c"]),
            Package(
                type: "deb", name: "libc6", version: "2.36-9", purl: "pkg:deb/debian/libc6@2.36-9?arch=amd64",
                licenses: ["GPL-2", "LGPL-2.1"], locations: ["/var/lib/dpkg/status"]),
        ])
        let entries = LicenseScanner.entries(for: inventory)
        #expect(
            entries.map(\.dataKey) == [
                .license(package: "pkg:deb/debian/libc6", id: "GPL-2"), .license(package: "pkg:deb/debian/libc6", id: "LGPL-2.1"),
                .license(package: "pkg:npm/dual", id: "Apache-2.0"), .license(package: "pkg:npm/dual", id: "MIT"),
                .license(package: "pkg:npm/lodash", id: "MIT"),
            ])
        #expect(entries.last?.summary == "lodash 4.17.20, 4.17.21 (npm) is licensed MIT (declared: MIT)")
        #expect(entries[2].summary == "dual 1.0.0 (npm) is licensed Apache-2.0 (declared: (MIT OR Apache-2.0))")
        // The same inventory in another order gives the same entries.
        #expect(LicenseScanner.entries(for: Self.inventory(inventory.packages.reversed())) == entries)
    }

    @Test func packagesWithoutALicenseAreUnknown() {
        let inventory = Self.inventory([
            Package(type: "apk", name: "musl", version: "1.2.4", purl: "pkg:apk/alpine/musl@1.2.4", licenses: [], locations: []),
            Package(type: "pypi", name: "x", version: "1", purl: "pkg:pypi/x@1", licenses: ["NOASSERTION"], locations: []),
            Package(type: "npm", name: "y", version: "2", purl: "pkg:npm/y@2", licenses: ["  ", "NONE"], locations: []),
        ])
        let entries = LicenseScanner.entries(for: inventory)
        #expect(entries.map(\.dataKey.id) == ["UNKNOWN", "UNKNOWN", "UNKNOWN"])
        #expect(entries.map(\.dataKey.subject) == ["pkg:apk/alpine/musl", "pkg:npm/y", "pkg:pypi/x"])
        #expect(entries[0].summary == "musl 1.2.4 (apk) declares no license")
        #expect(entries[2].summary == "x 1 (pypi) declares no license")
        #expect(!entries.contains { $0.dataKey.id.contains("NOASSERTION") || $0.summary.contains("NOASSERTION") })
        let scan = LicenseScanner.scan(inventory, artefact: ArtefactID(registry: "r", repository: "a", digest: "sha256:00"), at: Date())
        #expect(scan.datasource == "license" && scan.entries == entries)
        #expect(LicenseScanner.entries(for: Self.inventory([])).isEmpty)
    }

    /// The default SLA categories of license ids.
    @Test(arguments: [
        ("GPL-3.0-only", "HIGH"), ("GPL-2+", "HIGH"), ("GPLv2+", "HIGH"), ("AGPL-3.0-or-later", "HIGH"), ("gpl-2.0", "HIGH"),
        ("GNU General Public License v3 (GPLv3)", "HIGH"), ("SSPL-1.0", "HIGH"),
        ("GPL-2.0-only WITH Classpath-exception-2.0", "MEDIUM"), ("LGPL-2.1-or-later", "MEDIUM"), ("MPL-2.0", "MEDIUM"), ("EPL-2.0", "MEDIUM"),
        ("UNKNOWN", "MEDIUM"), ("MIT", "NONE"), ("Apache-2.0", "NONE"), ("BSD-3-clause", "NONE"), ("Expat", "NONE"), ("MIT License", "NONE"),
        ("ISC", "NONE"), ("public-domain", "NONE"), ("LicenseRef-acme-proprietary", "uncategorised"), ("Artistic-1.0", "uncategorised"),
        ("MITRE", "uncategorised"), ("GPLX", "uncategorised"),
    ])
    func defaultCategories(id: String, category: String) {
        let key = FindingKey(
            artefact: ArtefactID(registry: "r", repository: "a", digest: "sha256:00"), datasource: LicenseScanner.datasource,
            dataKey: .license(package: "pkg:npm/x", id: id))
        #expect(SLAPolicy.default.category(of: Finding(key: key, discoveredAt: Date())).description == category)
    }
}

// MARK: - OS end of life

/// Midnight UTC of a `YYYY-MM-DD` day, or the instant an ISO 8601 time names.
private func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text.contains("T") ? text : text + "T00:00:00Z")! }

@Suite struct OSEndOfLifeTests {
    static func table() throws -> OSEndOfLifeTable {
        let directory = OSEndOfLifeTable.distroInfoDirectory
        try #require(
            FileManager.default.fileExists(atPath: directory + "/debian.csv") && FileManager.default.fileExists(atPath: directory + "/ubuntu.csv"),
            "\(directory) has no debian.csv and ubuntu.csv: run scripts/test.sh (it installs distro-info-data)")
        return try OSEndOfLifeTable.load()
    }

    /// Releases at 2026-12-01 against the real distro-info-data tables: nil is supported, a date the end of life.
    @Test(arguments: [
        ("debian", "10" as String?, nil as String?, "2024-06-30" as String?), ("debian", "12", nil, nil), ("debian", "12.5", nil, nil),
        ("debian", nil, "buster", "2024-06-30"), ("debian", nil, "bookworm", nil), ("debian", "9", nil, "2022-06-30"),
        ("ubuntu", "20.04", nil, "2025-05-29"), ("ubuntu", "24.04", nil, nil), ("ubuntu", "22.04.3", nil, nil),
        ("ubuntu", "18.04", nil, "2023-05-31"),
        ("alpine", "3.17.3", nil, "2024-11-22"), ("alpine", "3.22.1", nil, nil), ("alpine", "3.22.0_alpha20250108", nil, nil),
        ("alpine", "3.2.0", nil, "2017-05-01"), ("alpine", "3.20.3", nil, "2026-04-01"),
    ])
    func releasesAtADate(os: String, version: String?, codename: String?, endOfLife: String?) throws {
        let status = try Self.table().status(os: os, version: version, codename: codename, at: utc("2026-12-01"))
        switch status {
        case .endOfLife(let release):
            #expect(endOfLife != nil, "\(status)")
            #expect(release.endOfLife == endOfLife.map(utc))
            #expect(status.description.contains("past its end of life since \(endOfLife ?? "")"))
            #expect(status.entries.map(\.dataKey) == [.osEndOfLife(os: os, version: release.version)])
        case .supported:
            #expect(endOfLife == nil, "\(status)")
            #expect(status.entries.isEmpty)
        default:
            Issue.record("\(os) \(version ?? codename ?? ""): \(status)")
        }
    }

    @Test func summariesNameTheSupportAndWhatASubscriptionBuys() throws {
        let table = try Self.table()
        let buster = table.status(os: "debian", version: "10", at: utc("2026-12-01"))
        #expect(
            buster.entries.map(\.summary) == [
                "debian 10 (Buster) is past its end of life since 2024-06-30 (end of Debian LTS); with a subscription: Freexian ELTS until 2029-06-30"
            ])
        let focal = table.status(os: "ubuntu", version: "20.04", at: utc("2026-12-01"))
        #expect(focal.description.hasPrefix("ubuntu 20.04 (Focal Fossa) is past its end of life since 2025-05-29 (end of standard support)"))
        #expect(focal.description.contains("Ubuntu Pro ESM until 2030-04-23"))
        #expect(table.status(os: "debian", version: "12", at: utc("2026-12-01")).description.contains("supported until 2028-06-30"))
    }

    /// The end-of-life date is the last day of support.
    @Test func theLastDayIsStillSupported() throws {
        let table = try Self.table()
        #expect(table.status(os: "debian", version: "10", at: utc("2024-06-30T23:59:59Z")).entries.isEmpty)
        #expect(table.status(os: "debian", version: "10", at: utc("2024-07-01T00:00:00Z")).entries.count == 1)
        #expect(table.status(os: "alpine", version: "3.22.0", at: utc("2027-05-01T12:00:00Z")).entries.isEmpty)
        #expect(table.status(os: "alpine", version: "3.22.0", at: utc("2027-05-02")).entries.count == 1)
    }

    @Test func unknownReleasesAndOSesAreSaidSo() throws {
        let table = try Self.table()
        let at = utc("2026-12-01")
        #expect(table.status(os: "debian", version: "99", at: at) == .unknownRelease(os: "debian", version: "99"))
        #expect(table.status(os: "alpine", version: "4.0.1", at: at) == .unknownRelease(os: "alpine", version: "4.0.1"))
        #expect(table.status(os: "ubuntu", version: nil, codename: "nonesuch", at: at) == .unknownRelease(os: "ubuntu", version: "nonesuch"))
        #expect(table.status(os: "fedora", version: "40", at: at) == .unknownOS("fedora"))
        #expect(table.status(of: nil, at: at) == .noOS)
        let unknown = table.status(os: "debian", version: "99", at: at)
        #expect(unknown.entries.isEmpty && unknown.description.hasPrefix("unknown release: "))
        // The scan of an inventory: its distro as os-release gives it.
        let distro = Distro(id: "debian", versionID: "10", versionCodename: "buster", name: "Debian GNU/Linux", prettyName: nil, idLike: [])
        let inventory = Inventory(
            subject: .init(name: "x", digest: nil, manifestDigest: nil, platform: nil), distro: distro, layers: [], packages: [])
        let (scan, status) = table.scan(inventory, artefact: ArtefactID(registry: "r", repository: "a", digest: "sha256:00"), at: at)
        #expect(scan.datasource == "os-eol" && scan.entries.map(\.dataKey) == [.osEndOfLife(os: "debian", version: "10")])
        if case .endOfLife = status {} else { Issue.record("\(status)") }
    }

    /// Malformed `distro-info-data` files: the error names the file and the line.
    @Test(arguments: [
        ("", 1, "the file is empty"),
        ("version,codename\n", 1, "expected it to start with version,codename,series,created,release,eol"),
        ("version,codename,series,created,release,eol,eol,x\n", 1, "column \"eol\" is named twice"),
        ("version,codename,series,created,release,eol\n10,Buster,buster,2017-06-17,2019-07-06,2022-09-10,2024-06-30\n", 2, "7 fields"),
        ("version,codename,series,created,release,eol\n10,Buster\n", 2, "2 fields, expected 4 to 6"),
        (
            "version,codename,series,created,release,eol\n9,Stretch,stretch,2015-04-25,2017-06-17,2020-07-06\n"
                + "10,Buster,buster,2017-06-17,2019-07-06,2022-13-10\n", 3, "eol \"2022-13-10\" is not a date"
        ),
        ("version,codename,series,created,release,eol\n10,Buster,buster,,2019-07-06\n", 2, "the created date is empty"),
        ("version,codename,series,created,release,eol\n10,,buster,2017-06-17\n", 2, "the codename and the series must not be empty"),
        ("version,codename,series,created,release,eol\n10,\"Buster\",buster,2017-06-17\n", 2, "has quotes"),
        ("version,codename,series,created,release,eol\n\n10,Buster,buster,2017-06-17\n", 2, "1 fields"),
        ("version,codename,series,created,release,eol\nten,Buster,buster,2017-06-17\n", 2, "version \"ten\" is not a number"),
    ])
    func malformedFilesNameTheLine(text: String, line: Int, reason: String) throws {
        let directory = NSTemporaryDirectory() + "warden-eol-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/debian.csv"))
        try Data("version,codename,series,created,release,eol\n24.04 LTS,Noble Numbat,noble,2023-10-12,2024-04-25,2029-05-31\n".utf8).write(
            to: URL(fileURLWithPath: directory + "/ubuntu.csv"))
        let error = try #require(throws: InventoryError.self) { try OSEndOfLifeTable.load(directory: directory) }
        #expect(error.code == .malformed)
        #expect(error.reason.hasPrefix("\(directory)/debian.csv:\(line): "), "\(error)")
        #expect(error.reason.contains(reason), "\(error)")
    }

    @Test func aMissingFileIsNamed() throws {
        let error = try #require(throws: InventoryError.self) { try OSEndOfLifeTable.load(directory: "/nonexistent") }
        #expect(error.code == .notFound && error.reason.contains("/nonexistent/debian.csv") && error.reason.contains("distro-info-data"))
    }
}

// MARK: - Malware (against a real clamd)

/// The EICAR test file: 68 bytes every anti-virus engine is meant to report.
private let eicar = Array(#"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"#.utf8)

/// A clamd of the test's own: a temporary configuration and a signature database holding only the EICAR test
/// signature (as a hash of the exact file and as a body signature for EICAR inside a larger file), on a UNIX socket
/// in a temporary directory and on a loopback TCP port.
private final class ClamdProcess {
    static let binary = "/usr/sbin/clamd"
    let directory: String
    let process: Process
    let socket: String
    let port: Int

    /// The signatures' name, and the name clamd reports: it marks signatures outside its official databases.
    static let signature = "Eicar-Test-Signature"
    static let reported = "Eicar-Test-Signature.UNOFFICIAL"

    static func start(streamMaxLength: String = "1M") async throws -> ClamdProcess {
        try #require(
            FileManager.default.isExecutableFile(atPath: binary),
            "\(binary) is not installed: run scripts/test.sh (it installs clamav-daemon), or apt-get install clamav-daemon")
        let directory = NSTemporaryDirectory() + "warden-clamd-" + UUID().uuidString.prefix(8)
        for sub in ["db", "tmp"] { try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true) }
        let md5 = Insecure.MD5.hash(data: eicar).map { String(format: "%02x", $0) }.joined()
        try Data("\(md5):\(eicar.count):\(signature)\n".utf8).write(to: URL(fileURLWithPath: directory + "/db/warden-test.hdb"))
        let hex = eicar.map { String(format: "%02x", $0) }.joined()
        try Data("\(signature):0:*:\(hex)\n".utf8).write(to: URL(fileURLWithPath: directory + "/db/warden-test.ndb"))
        let port = try freeLoopbackPort()
        let socket = directory + "/clamd.sock"
        let config = """
            LocalSocket \(socket)
            TCPSocket \(port)
            TCPAddr 127.0.0.1
            DatabaseDirectory \(directory)/db
            TemporaryDirectory \(directory)/tmp
            LogFile \(directory)/clamd.log
            StreamMaxLength \(streamMaxLength)
            MaxThreads 4
            Bytecode no

            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/clamd.conf"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--foreground", "--config-file=\(directory)/clamd.conf"]
        _ = FileManager.default.createFile(atPath: directory + "/stderr.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/stderr.log"))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let clamd = ClamdProcess(directory: directory, process: process, socket: socket, port: port)
        let client = ClamdClient(address: .unix(path: socket), timeout: .seconds(10))
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if (try? await client.ping()) != nil { return clamd }
            guard process.isRunning else {
                let text = (try? String(contentsOfFile: directory + "/stderr.log", encoding: .utf8)) ?? ""
                let logText = (try? String(contentsOfFile: directory + "/clamd.log", encoding: .utf8)) ?? ""
                clamd.stop()
                throw MalwareScanError(.unreachable, "clamd exited at start: \(text.suffix(2000)) \(logText.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        clamd.stop()
        throw MalwareScanError(.unreachable, "clamd did not answer PING within 60 s")
    }

    private init(directory: String, process: Process, socket: String, port: Int) {
        self.directory = directory
        self.process = process
        self.socket = socket
        self.port = port
    }

    var client: ClamdClient { ClamdClient(address: .unix(path: socket), timeout: .seconds(30)) }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `body` with a clamd started for it, stopped afterwards.
    static func with<T>(streamMaxLength: String = "1M", _ body: (ClamdProcess) async throws -> T) async throws -> T {
        let clamd = try await start(streamMaxLength: streamMaxLength)
        defer { clamd.stop() }
        return try await body(clamd)
    }
}

/// A loopback port no socket holds now (bound to port 0, then released: clamd binds it a moment later).
private func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok =
        withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } } == 0
        && withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } } == 0
    try #require(ok, "cannot bind a loopback port")
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// An image in memory: each layer a finished tar archive, gzip-compressed unless `plain`.
private func pushImage(_ layers: [(tar: [UInt8], plain: Bool)], to store: MemoryStore) async throws -> Descriptor {
    var descriptors: [Descriptor] = []
    var diffIDs: [OCI.Digest] = []
    for (tar, plain) in layers {
        let blob = plain ? tar : try gzip(tar)
        let d = Descriptor(
            mediaType: plain ? MediaType.imageLayer : MediaType.imageLayerGzip, digest: OCI.Digest.compute(Data(blob)), size: Int64(blob.count))
        try await store.push(d, bytes: Data(blob))
        descriptors.append(d)
        diffIDs.append(OCI.Digest.compute(Data(tar)))
    }
    let config = try JSONEncoder().encode(ImageConfig(architecture: "amd64", os: "linux", diffIDs: diffIDs, created: "2026-01-01T00:00:00Z"))
    let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, digest: OCI.Digest.compute(config), size: Int64(config.count))
    try await store.push(configDescriptor, bytes: config)
    let manifest = try RawManifest.encode(ImageManifest(config: configDescriptor, layers: descriptors), mediaType: MediaType.imageManifest)
    try await store.push(manifest)
    return manifest.descriptor
}

private func tarArchive(_ build: (inout TarWriter) -> Void) -> [UInt8] {
    var w = TarWriter()
    build(&w)
    return w.finish()
}

/// Bytes in memory, handed out in chunks of `size`.
private struct Chunks: ChunkSource {
    var rest: ArraySlice<UInt8>
    let size: Int
    init(_ bytes: [UInt8], size: Int) {
        rest = bytes[...]
        self.size = size
    }
    mutating func next() async throws -> [UInt8]? {
        guard !rest.isEmpty else { return nil }
        defer { rest = rest.dropFirst(size) }
        return Array(rest.prefix(size))
    }
}

/// Deterministic filler bytes that match no signature.
private func filler(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

@Suite(.serialized) struct MalwareScannerTests {
    @Test(arguments: [
        ("unix:/run/clamav/clamd.ctl", ClamdAddress.unix(path: "/run/clamav/clamd.ctl") as ClamdAddress?),
        ("/tmp/clamd.sock", .unix(path: "/tmp/clamd.sock")), ("127.0.0.1:3310", .tcp(host: "127.0.0.1", port: 3310)),
        ("tcp://clamd.internal:3310", .tcp(host: "clamd.internal", port: 3310)), ("[::1]:3310", .tcp(host: "::1", port: 3310)),
        ("clamd", nil), ("clamd:0", nil), ("clamd:99999", nil), ("unix:relative.sock", nil), (":3310", nil),
        ("unix:/" + String(repeating: "x", count: 120), nil),
    ])
    func addresses(text: String, address: ClamdAddress?) throws {
        if let address {
            #expect(try ClamdAddress(parsing: text) == address)
            #expect(try ClamdAddress(parsing: address.description) == address)
        } else {
            let error = try #require(throws: MalwareScanError.self) { try ClamdAddress(parsing: text) }
            #expect(error.code == .invalidAddress && error.reason.contains(text))
        }
    }

    @Test func theTestFileIsEICAR() {
        #expect(eicar.count == 68 && Insecure.MD5.hash(data: eicar).map { String(format: "%02x", $0) }.joined() == "44d88612fea8a8f36de82e1278abb02f")
    }

    @Test func theAddressComesFromTheEnvironment() throws {
        #expect(try ClamdAddress.configured(environment: [:]) == .unix(path: "/run/clamav/clamd.ctl"))
        #expect(try ClamdAddress.configured(environment: ["WARDEN_CLAMD": "localhost:3310"]) == .tcp(host: "localhost", port: 3310))
    }

    @Test func nothingListeningIsUnreachable() async throws {
        let client = ClamdClient(address: .unix(path: NSTemporaryDirectory() + "warden-no-clamd-\(UUID().uuidString.prefix(8)).sock"))
        let error = try await #require(throws: MalwareScanError.self) { try await client.ping() }
        #expect(error.code == .unreachable && error.reason.contains("cannot connect to clamd at unix:"))
    }

    @Test func theClientTalksToClamd() async throws {
        try await ClamdProcess.with { clamd in
            for client in [clamd.client, ClamdClient(address: .tcp(host: "127.0.0.1", port: clamd.port))] {
                try await client.ping()
                #expect(try await client.version().hasPrefix("ClamAV "))
                #expect(try await client.scan(eicar) == .found(ClamdProcess.reported))
                #expect(try await client.scan(Array("hello, world\n".utf8)) == .clean)
                // EICAR inside a larger stream, across chunk boundaries (chunks of 1 KiB).
                var small = client
                small.chunkSize = 1024
                #expect(try await small.scan(filler(5000, seed: 1) + eicar + filler(3000, seed: 2)) == .found(ClamdProcess.reported))
            }
        }
    }

    @Test func filesInLayersAreScannedAndNothingOutsideTheImageIsRead() async throws {
        try await ClamdProcess.with { clamd in
            // A file on this machine holding EICAR, which a symlink in the image points to.
            let hostFile = clamd.directory + "/host-eicar.txt"
            try Data(eicar).write(to: URL(fileURLWithPath: hostFile))
            // EICAR across the 64 KiB chunk boundary of a larger file.
            let big = filler(64 * 1024 - 30, seed: 3) + eicar + filler(100_000, seed: 4)
            let base = tarArchive { w in
                w.directory("etc")
                w.file("etc/clean.txt", "nothing to see here\n")
                w.symlink("etc/host-eicar", to: hostFile)
                w.symlink("etc/relative-host-eicar", to: "../../../../../../.." + hostFile)
                w.file("usr/share/eicar.com", eicar)
                w.hardlink("usr/share/eicar-link", to: "usr/share/eicar.com")
                w.file("../../escape/eicar.txt", eicar)
                w.file("etc/empty", [])
            }
            let top = tarArchive { w in
                w.whiteout("usr/share/eicar.com")
                w.file("opt/big.bin", big)
                w.file("opt/clean.bin", filler(200_000, seed: 5))
            }
            let store = MemoryStore()
            let image = try await pushImage([(base, false), (top, true)], to: store)
            let report = try await MalwareScanner.scan(image: image, in: store, clamd: clamd.client)
            let eicarDigest = OCI.Digest.compute(eicar).description
            let bigDigest = OCI.Digest.compute(big).description
            #expect(
                report.detections.map { "\($0.layer) \($0.path) \($0.digest) \($0.signature)" } == [
                    "0 /escape/eicar.txt \(eicarDigest) \(ClamdProcess.reported)",
                    "0 /usr/share/eicar-link \(eicarDigest) \(ClamdProcess.reported)",
                    "0 /usr/share/eicar.com \(eicarDigest) \(ClamdProcess.reported)",
                    "1 /opt/big.bin \(bigDigest) \(ClamdProcess.reported)",
                ])
            // Regular files with content: clean.txt, eicar.com, escape/eicar.txt, big.bin, clean.bin.
            #expect(report.filesScanned == 5)
            #expect(report.bytesScanned == 20 + 68 * 2 + big.count + 200_000)
            #expect(report.skipped.isEmpty && report.engine.hasPrefix("ClamAV ") && report.layers.count == 2)
            let entries = report.entries
            #expect(
                entries.map(\.dataKey).sorted()
                    == [
                        .malware(file: eicarDigest, signature: ClamdProcess.reported), .malware(file: bigDigest, signature: ClamdProcess.reported),
                    ].sorted())
            #expect(entries.map(\.dataKey) == entries.map(\.dataKey).sorted())
            let summary = try #require(entries.first { $0.dataKey.subject == eicarDigest }?.summary)
            let files = "/escape/eicar.txt (layer 0), /usr/share/eicar-link (layer 0), /usr/share/eicar.com (layer 0)"
            #expect(summary == "Eicar-Test-Signature.UNOFFICIAL in 3 files: " + files)
            #expect(entries.first { $0.dataKey.subject == bigDigest }?.summary == "\(ClamdProcess.reported) in /opt/big.bin (layer 1)")
            let scan = report.scan(artefact: ArtefactID(registry: "r", repository: "a", digest: image.digest.description), at: Date())
            #expect(scan.datasource == "malware" && scan.entries == entries)
            // A clean image has nothing to report.
            let clean = try await pushImage([(tarArchive { $0.file("etc/clean.txt", "clean\n") }, false)], to: store)
            let cleanReport = try await MalwareScanner.scan(image: clean, in: store, clamd: clamd.client)
            #expect(cleanReport.entries.isEmpty && cleanReport.filesScanned == 1)
        }
    }

    /// A layer that ends inside a file is an error naming the layer; so is one that is not a tar archive.
    @Test func aTruncatedLayerIsAnErrorNamingIt() async throws {
        try await ClamdProcess.with { clamd in
            let archive = tarArchive { $0.file("opt/data.bin", filler(100_000, seed: 7)) }
            for (bytes, reason) in [(Array(archive.prefix(60_000)), "truncated"), (filler(2048, seed: 8), "tar checksum field at byte 0")] {
                let error = try await #require(throws: InventoryError.self) {
                    try await MalwareScanner.scanLayer(tar: Chunks(bytes, size: 4096), index: 3, digest: "sha256:ab", clamd: clamd.client)
                }
                #expect(error.code == .malformed && error.reason.hasPrefix("layer 3 (sha256:ab): ") && error.reason.contains(reason), "\(error)")
            }
        }
    }

    @Test func aFileOverStreamMaxLengthFailsTheScanClearly() async throws {
        try await ClamdProcess.with(streamMaxLength: "100K") { clamd in
            let huge = filler(300_000, seed: 6)
            let store = MemoryStore()
            let layer = tarArchive { w in
                w.file("etc/clean.txt", "clean\n")
                w.file("opt/huge.bin", huge)
            }
            let image = try await pushImage([(layer, false)], to: store)
            let error = try await #require(throws: MalwareScanError.self) {
                try await MalwareScanner.scan(image: image, in: store, clamd: clamd.client)
            }
            #expect(error.code == .sizeLimitExceeded, "\(error)")
            #expect(error.reason.contains("INSTREAM size limit exceeded"), "\(error)")
            #expect(error.reason.contains("layer 0 (sha256:") && error.reason.contains("/opt/huge.bin (300000 bytes)"), "\(error)")
            #expect(error.reason.contains("StreamMaxLength"), "\(error)")
            // The client alone says the same.
            let direct = try await #require(throws: MalwareScanError.self) { try await clamd.client.scan(huge) }
            #expect(direct.code == .sizeLimitExceeded)
            // With a maximum file size the file is skipped knowingly, and listed.
            let report = try await MalwareScanner.scan(
                image: image, in: store, clamd: clamd.client, options: .init(maxFileSize: 100_000))
            #expect(report.filesScanned == 1 && report.skipped.map(\.path) == ["/opt/huge.bin"])
            #expect(report.skipped.first?.reason.contains("over the maximum file size of 100000 bytes") == true)
        }
    }
}
