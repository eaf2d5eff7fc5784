import Foundation
import OCI
import OCITesting
import Testing

@testable import Inventory

/// Language packages installed by an OS package name it in their metadata; the others do not.
@Suite struct OwnershipTests {
    static func filesystem(_ build: (inout TarWriter) -> Void) async throws -> ImageFilesystem {
        let store = MemoryStore()
        let image = try await pushImage([tar(build)], to: store)
        return try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
    }

    static func metadataFile(_ name: String, _ version: String) -> String {
        "Metadata-Version: 2.1\nName: \(name)\nVersion: \(version)\n\nDescription.\n"
    }

    static let jinja2Status = """
        Package: python3-jinja2
        Status: install ok installed
        Architecture: all
        Source: jinja2
        Version: 3.1.2-1+deb12u3

        Package: python3-markupsafe
        Status: install ok installed
        Architecture: amd64
        Version: 2.1.2-1+b1

        Package: removed-pkg
        Status: deinstall ok config-files
        Architecture: all
        Version: 1.0

        """

    static let jinja2 = "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA"
    static let requests = "usr/local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/METADATA"

    /// A Debian image with python3-jinja2 from the archive and requests from pip: only Jinja2 names its package
    /// (binary and source, name and version); purls and the OS packages themselves are unchanged.
    @Test func dpkgOwnsTheDistInfoItsListNames() async throws {
        let fs = try await Self.filesystem {
            $0.file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
            $0.file("var/lib/dpkg/status", Self.jinja2Status)
            $0.file(Self.jinja2, Self.metadataFile("Jinja2", "3.1.2"))
            $0.file("usr/lib/python3/dist-packages/MarkupSafe-2.1.2.egg-info/PKG-INFO", Self.metadataFile("MarkupSafe", "2.1.2"))
            $0.file(Self.requests, Self.metadataFile("requests", "2.31.0"))
            $0.file(
                "var/lib/dpkg/info/python3-jinja2.list",
                """
                /.
                /usr
                /usr/lib
                /usr/lib/python3
                /usr/lib/python3/dist-packages
                /usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info
                /usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA
                /usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/top_level.txt
                /usr/lib/python3/dist-packages/jinja2/__init__.py
                /usr/share/doc/python3-jinja2/copyright

                """)
            // Only the egg-info directory is listed, not its PKG-INFO: the directory is enough.
            $0.file(
                "var/lib/dpkg/info/python3-markupsafe:amd64.list",
                "/usr/lib/python3/dist-packages/MarkupSafe-2.1.2.egg-info\n/usr/lib/python3/dist-packages/markupsafe/__init__.py\n")
            // The list of a package no longer installed owns nothing.
            $0.file("var/lib/dpkg/info/removed-pkg.list", "/" + Self.requests + "\n")
        }
        let packages = Catalogers.catalog(fs).1
        let jinja2 = try #require(packages.first { $0.name == "jinja2" })
        #expect(
            jinja2.metadata == [
                "osPackage": "python3-jinja2", "osPackageType": "deb", "osPackageVersion": "3.1.2-1+deb12u3", "osPackageSource": "jinja2",
                "osPackageSourceVersion": "3.1.2-1+deb12u3",
            ])
        #expect(jinja2.purl == "pkg:pypi/jinja2@3.1.2")
        let markupsafe = try #require(packages.first { $0.name == "markupsafe" })
        #expect(markupsafe.metadata["osPackage"] == "python3-markupsafe")
        #expect(markupsafe.metadata["osPackageSource"] == "python3-markupsafe", "no Source field: the package is its own source")
        #expect(markupsafe.metadata["osPackageSourceVersion"] == "2.1.2-1+b1")
        let requests = try #require(packages.first { $0.name == "requests" })
        #expect(requests.metadata == [:], "installed by pip, not by a package")
        #expect(packages.filter { $0.type == "deb" }.allSatisfy { $0.metadata["osPackage"] == nil })
        // Only the lines that could name a package's metadata file are kept of a list.
        let kept = String(decoding: try #require(fs.content("var/lib/dpkg/info/python3-jinja2.list")), as: UTF8.self)
        #expect(kept.contains("/Jinja2-3.1.2.dist-info/METADATA\n"))
        #expect(!kept.contains("top_level.txt") && !kept.contains("__init__.py") && !kept.contains("/usr/share/doc") && !kept.contains("/.\n"))
    }

    /// A Go binary a package installed as `/bin/tool` in a merged-/usr image (`bin` → `usr/bin`), listed in a
    /// `<name>:<arch>.list`, and a Java archive with a nested one: every package read from them is owned.
    @Test func dpkgListThroughSymlinkedDirectoriesGoAndJava() async throws {
        let binary = BinaryCatalogerTests.goBinary(version: "go1.19.8", modinfo: "path\texample.com/tool\nmod\texample.com/tool\tv1.2.3\t\n")
        let fs = try await Self.filesystem {
            $0.file("var/lib/dpkg/status", "Package: gotool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.2.3-1\n\n")
            $0.directory("usr/bin")
            $0.symlink("bin", to: "usr/bin")
            $0.file("usr/bin/tool", binary, mode: 0o755)
            $0.file("usr/local/bin/other", binary, mode: 0o755)
            $0.file("var/lib/dpkg/info/gotool:amd64.list", "/bin\n/bin/tool\n")
        }
        let golang = Catalogers.catalog(fs).1.filter { $0.type == "golang" }
        #expect(golang.count == 4, "module and stdlib of each binary")
        for p in golang {
            let owned = p.locations == ["/usr/bin/tool"]
            #expect(p.metadata["osPackage"] == (owned ? "gotool" : nil), "\(p.name) in \(p.locations)")
            #expect(p.metadata["osPackageVersion"] == (owned ? "1.2.3-1" : nil))
        }
        #expect(Ownership.metadataFile("/usr/bin/tool", fs) == "usr/bin/tool")
        #expect(Ownership.metadataFile("/usr/bin/tool:inner.jar", fs) == nil, "not an archive")
        let jarFS = try await Self.filesystem { $0.file("usr/share/java/a:b.jar", [0]) }
        #expect(Ownership.metadataFile("/usr/share/java/a:b.jar:lib/inner.jar", jarFS) == "usr/share/java/a:b.jar")
    }

    /// Alpine: the `F:`/`R:` lines of the installed database own npm's package.json; an application's
    /// node_modules does not, nor does a record naming it through `..`.
    @Test func apkOwnsThePackageJSONItsRecordNames() async throws {
        let fs = try await Self.filesystem {
            $0.file("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")
            $0.file(
                "lib/apk/db/installed",
                """
                C:Q1abc=
                P:npm
                V:10.2.5-r0
                A:x86_64
                o:nodejs
                F:usr/lib/node_modules/npm
                R:package.json
                R:index.js

                P:busybox
                V:1.36.1-r15
                F:bin
                R:busybox
                F:usr/lib/node_modules/npm/../../../../app/node_modules/left-pad
                R:package.json
                R:../../app/node_modules/left-pad/package.json

                P:zlib
                V:1.3.1-r0
                R:app/node_modules/left-pad/package.json

                """)
            $0.file("usr/lib/node_modules/npm/package.json", #"{"name": "npm", "version": "10.2.5"}"#)
            $0.file("app/node_modules/left-pad/package.json", #"{"name": "left-pad", "version": "1.3.0"}"#)
        }
        let packages = Catalogers.catalog(fs).1
        let npm = try #require(packages.first { $0.type == "npm" && $0.name == "npm" })
        #expect(
            npm.metadata == [
                "osPackage": "npm", "osPackageType": "apk", "osPackageVersion": "10.2.5-r0", "osPackageSource": "nodejs",
                "osPackageSourceVersion": "10.2.5-r0",
            ])
        #expect(npm.purl == "pkg:npm/npm@10.2.5")
        // zlib's `R:` without an `F:` names a file in the root directory, which is the application's.
        let leftPad = try #require(packages.first { $0.name == "left-pad" })
        #expect(leftPad.metadata["osPackage"] == "zlib")
        #expect(leftPad.metadata["osPackageSource"] == "zlib", "no origin: the package is its own")
        let records = Ownership.apkRecords(Array("P:busybox\nV:1\nF:a/../b\nR:c\nF:d\nR:../e\nR:f\n".utf8)[...])
        #expect(records.map(\.1) == [["d", "d/f"]], "paths with `..` components name nothing")
    }

    /// RPM, from a database the real tools wrote: the dist-info of python3-foo (built from python-foo's source
    /// rpm) is owned, a pip-installed one is not.
    @Test func rpmOwnsTheDistInfoItsHeaderNames() async throws {
        let dir = try makeTemporaryDirectory()
        try #require(try await RPMTests.sh("command -v rpmbuild") == 0, "rpmbuild is missing: scripts/test.sh installs Debian's rpm package")
        let spec = """
            Name: python-foo
            Version: 1.0
            Release: 1.fc40
            Summary: t
            License: MIT
            BuildArch: noarch
            %description
            t
            %package -n python3-foo
            Summary: t
            %description -n python3-foo
            t
            %install
            mkdir -p %{buildroot}/usr/lib/python3.12/site-packages/foo-1.0.dist-info
            printf 'Metadata-Version: 2.1\\nName: foo\\nVersion: 1.0\\n' > %{buildroot}/usr/lib/python3.12/site-packages/foo-1.0.dist-info/METADATA
            %files -n python3-foo
            /usr/lib/python3.12/site-packages/foo-1.0.dist-info

            """
        try Data(spec.utf8).write(to: URL(fileURLWithPath: "\(dir)/python-foo.spec"))
        #expect(try await RPMTests.sh("rpmbuild --define '_topdir \(dir)/top' -bb \(dir)/python-foo.spec >/dev/null 2>&1") == 0)
        #expect(
            try await RPMTests.sh(
                "rpm --dbpath \(dir)/db --initdb && rpm --dbpath \(dir)/db -i --nodeps --justdb --ignorearch \(dir)/top/RPMS/noarch/*.rpm 2>/dev/null"
            )
                == 0)
        let db = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/db/rpmdb.sqlite")))
        let fs = try await Self.filesystem {
            $0.file("etc/os-release", "ID=fedora\nVERSION_ID=40\n")
            $0.file("usr/lib/sysimage/rpm/rpmdb.sqlite", db)
            $0.file("usr/lib/python3.12/site-packages/foo-1.0.dist-info/METADATA", Self.metadataFile("foo", "1.0"))
            $0.file("usr/local/lib/python3.12/site-packages/bar-2.0.dist-info/METADATA", Self.metadataFile("bar", "2.0"))
        }
        let packages = Catalogers.catalog(fs).1
        #expect(packages.map(\.name) == ["bar", "foo", "python3-foo"])
        let foo = try #require(packages.first { $0.name == "foo" })
        #expect(
            foo.metadata == [
                "osPackage": "python3-foo", "osPackageType": "rpm", "osPackageVersion": "1.0-1.fc40", "osPackageSource": "python-foo",
                "osPackageSourceVersion": "1.0-1.fc40",
            ])
        #expect(packages.first { $0.name == "bar" }?.metadata == [:])
    }

    /// The source rpm's name and version, from its file name; the package itself when the name is not one.
    @Test(
        arguments: [
            ("jinja2-3.1.2-1.el9.src.rpm", nil, "jinja2", "3.1.2-1.el9"),
            ("python-foo-bar-1.0-2.fc40.nosrc.rpm", nil, "python-foo-bar", "1.0-2.fc40"),
            ("glibc-2.34-100.el9.src.rpm", 2, "glibc", "2:2.34-100.el9"),
            ("broken.src.rpm", nil, "broken", "9-1"),
            ("--.src.rpm", nil, "--", "9-1"),
            ("", nil, "pkg", "9-1"),
        ] as [(String, Int?, String, String)])
    func rpmSource(srpm: String, epoch: Int?, source: String, version: String) throws {
        var h = RPM.Header(strings: [1000: ["pkg"], 1001: ["9"], 1002: ["1"], 1044: [srpm]])
        if let epoch { h.int32s[1003] = [epoch] }
        let owner = try #require(Ownership.rpmOwner(h))
        #expect(owner.source == source && owner.sourceVersion == version)
        #expect(owner.version == (epoch.map { "\($0):" } ?? "") + "9-1")
    }

    /// File names from a header: an index past the directories names nothing; old headers list whole names.
    @Test func rpmInstalledPaths() {
        let h = RPM.Header(strings: [1117: ["a", "b", "c"], 1118: ["/usr/", "/etc/"]], int32s: [1116: [1, 7, -1]])
        #expect(RPM.installedPaths(h) == ["/etc/a"])
        #expect(RPM.installedPaths(RPM.Header(strings: [1027: ["/usr/bin/x"]])) == ["/usr/bin/x"])
        #expect(RPM.installedPaths(RPM.Header()) == [])
    }

    /// Hostile lists: a large one keeps only the lines that matter (and still owns what it lists last); lines with
    /// `.`, `..` or empty components, relative lines, NUL bytes and a very long line own nothing; a list that is a
    /// directory, a symlink out of the image, an empty one, one for an unknown package, and listed files that are
    /// missing are all ignored.
    @Test func hostileListsDoNotCrashOrClaim() async throws {
        var huge = [UInt8]()
        huge.reserveCapacity(6 << 20)
        let filler = Array("/usr/share/doc/python3-jinja2/examples/some-file-with-a-long-name.txt.gz\n".utf8)
        while huge.count < 6 << 20 { huge += filler }
        huge += Array("/\(Self.jinja2)\n".utf8)
        let escapes = [
            "/usr/lib/python3/dist-packages/../../local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/METADATA",
            "/./" + Self.requests, "//" + Self.requests, Self.requests,
            "/usr/local/lib/python3.11/dist-packages/./requests-2.31.0.dist-info/METADATA",
            "/usr/local/lib/python3.11//dist-packages/requests-2.31.0.dist-info", "/" + Self.requests + "\u{0}",
            "/" + String(repeating: "a/", count: 200_000) + "METADATA", "/../../../../" + Self.requests, "\u{0}\u{0}\u{0}",
        ]
        let fs = try await Self.filesystem {
            $0.file("var/lib/dpkg/status", Self.jinja2Status + "Package: evil\nStatus: install ok installed\nVersion: 1\n\n")
            $0.file(Self.jinja2, Self.metadataFile("Jinja2", "3.1.2"))
            $0.file(Self.requests, Self.metadataFile("requests", "2.31.0"))
            $0.file("var/lib/dpkg/info/python3-jinja2.list", huge)
            $0.file("var/lib/dpkg/info/evil.list", escapes.joined(separator: "\n"))
            $0.directory("var/lib/dpkg/info/python3-markupsafe.list")
            $0.symlink("var/lib/dpkg/info/removed-pkg.list", to: "../../../../../../etc/shadow")
            $0.file("var/lib/dpkg/info/unknown.list", "/" + Self.requests + "\n")
            $0.file("var/lib/dpkg/info/python3-markupsafe:amd64.list", "")
            $0.file("var/lib/dpkg/info/.list", "/" + Self.requests + "\n")
            $0.file("var/lib/dpkg/info/evil:.list", "/usr/lib/python3/dist-packages/Missing-1.0.dist-info/METADATA\n")
        }
        let kept = try #require(fs.content("var/lib/dpkg/info/python3-jinja2.list"))
        #expect(kept.count < 200, "the documentation lines are not kept: \(kept.count) bytes")
        let packages = Catalogers.catalog(fs).1
        #expect(packages.first { $0.name == "jinja2" }?.metadata["osPackage"] == "python3-jinja2")
        #expect(packages.first { $0.name == "requests" }?.metadata == [:])
    }

    /// CycloneDX writes the owner as the component's properties, as it writes all metadata.
    @Test func cycloneDXCarriesTheOwner() throws {
        var p = Package(type: "pypi", name: "jinja2", version: "3.1.2", purl: "pkg:pypi/jinja2@3.1.2", locations: ["/" + Self.jinja2])
        p.metadata =
            Ownership.Owner(type: "deb", name: "python3-jinja2", version: "3.1.2-1+deb12u3", source: "jinja2", sourceVersion: "3.1.2-1+deb12u3")
            .metadata
        let inventory = Inventory(
            subject: .init(name: "x", digest: nil, manifestDigest: nil, platform: nil), distro: nil, layers: [], packages: [p])
        let data = try SBOMFormat.cyclonedxJSON.render(inventory, created: Date(timeIntervalSince1970: 0), serial: UUID())
        let doc = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let component = try #require((doc["components"] as? [[String: Any]])?.first)
        let properties = (component["properties"] as? [[String: String]] ?? []).map { ($0["name"] ?? "", $0["value"] ?? "") }
        #expect(properties.contains { $0 == ("warden:pypi:osPackage", "python3-jinja2") })
        #expect(properties.contains { $0 == ("warden:pypi:osPackageSourceVersion", "3.1.2-1+deb12u3") })
        #expect(component["purl"] as? String == "pkg:pypi/jinja2@3.1.2")
    }
}
