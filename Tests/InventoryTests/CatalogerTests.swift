import Foundation
import OCI
import Testing

@testable import Inventory

@Suite struct CatalogerTests {
    static let status1 = """
        Package: base-files
        Status: install ok installed
        Priority: required
        Architecture: amd64
        Version: 12.4+deb12u5
        Description: Debian base system miscellaneous files
         This package contains the basic filesystem hierarchy.

        Package: libc6
        Status: install ok installed
        Architecture: amd64
        Source: glibc
        Version: 2.36-9+deb12u4
        Description: GNU C Library: Shared libraries

        Package: removed-pkg
        Status: deinstall ok config-files
        Architecture: amd64
        Version: 1.0

        """
    static let status2 =
        status1 + "\n" + """
            Package: tzdata
            Status: install ok installed
            Architecture: all
            Version: 2024a-0+deb12u1
            Description: time zone and daylight-saving time data

            Package: libgcc-s1
            Status: install ok installed
            Architecture: amd64
            Source: gcc-12 (12.2.0-14)
            Version: 1:12.2.0-14
            Description: GCC support library

            """

    /// dpkg across layers: a package is attributed to the layer from which it stayed installed.
    @Test func dpkgWithLayerAttributionLicensesAndPURLs() async throws {
        let store = MemoryStore()
        let l0 = tar {
            $0.file("usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n")
            $0.symlink("etc/os-release", to: "../usr/lib/os-release")
            $0.file("var/lib/dpkg/status", Self.status1)
            $0.file(
                "usr/share/doc/libc6/copyright",
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: LGPL-2.1+\n\nFiles: x\nLicense: GPL-2 with exception\n"
            )
            $0.file("usr/share/doc/base-files/copyright", "This is free software; see /usr/share/common-licenses/GPL for details.\n")
        }
        let l1 = tar { $0.file("var/lib/dpkg/status", Self.status2) }
        let image = try await pushImage([l0, l1], to: store)
        let fs = try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
        let (distro, packages) = Catalogers.catalog(fs)
        #expect(
            distro
                == Distro(
                    id: "debian", versionID: "12", versionCodename: "bookworm", name: nil, prettyName: "Debian GNU/Linux 12 (bookworm)", idLike: []))
        #expect(packages.map(\.name) == ["base-files", "libc6", "libgcc-s1", "tzdata"], "deinstalled packages are not listed")
        let byName = Dictionary(uniqueKeysWithValues: packages.map { ($0.name, $0) })
        #expect(byName["libc6"]?.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc")
        #expect(byName["libgcc-s1"]?.purl == "pkg:deb/debian/libgcc-s1@1:12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12%4012.2.0-14")
        #expect(byName["tzdata"]?.purl == "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12")
        #expect(byName["libc6"]?.licenses == ["GPL-2", "LGPL-2.1+"])
        #expect(byName["base-files"]?.licenses == ["GPL"])
        #expect(byName["libc6"]?.locations == ["/var/lib/dpkg/status", "/usr/share/doc/libc6/copyright"])
        #expect(byName["libc6"]?.layer == fs.layers[0].digest)
        #expect(byName["tzdata"]?.layer == fs.layers[1].digest)
        #expect(byName["libgcc-s1"]?.metadata == ["architecture": "amd64", "source": "gcc-12", "sourceVersion": "12.2.0-14"])
    }

    @Test func distrolessStatusDirectory() async throws {
        let store = MemoryStore()
        let image = try await pushImage(
            [
                tar {
                    $0.file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
                    $0.file("var/lib/dpkg/status.d/base", "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n")
                    $0.file("var/lib/dpkg/status.d/base.md5sums", "d41d8cd98f00b204e9800998ecf8427e  etc/debian_version\n")
                    $0.file("var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a\nArchitecture: all\n")
                }
            ], to: store)
        let fs = try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
        let (_, packages) = Catalogers.catalog(fs)
        #expect(packages.map(\.name) == ["base-files", "tzdata"])
        #expect(packages.first?.locations == ["/var/lib/dpkg/status.d/base"])
    }

    @Test func pythonNPMAndApk() async throws {
        let store = MemoryStore()
        let image = try await pushImage(
            [
                tar {
                    $0.file(
                        "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA",
                        "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\nLicense: BSD-3-Clause\nClassifier: License :: OSI Approved :: BSD License\n\nLong description\nName: not-a-header\n"
                    )
                    $0.file(
                        "usr/local/lib/python3.11/site-packages/typing_extensions-4.9.0.dist-info/METADATA",
                        "Metadata-Version: 2.1\nName: typing_extensions\nVersion: 4.9.0\nClassifier: License :: OSI Approved :: Python Software Foundation License\n"
                    )
                    $0.file("usr/lib/python3/dist-packages/six-1.16.0.egg-info", "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nLicense: MIT\n")
                    $0.file("usr/lib/python3/dist-packages/broken.dist-info/METADATA", "Metadata-Version: 2.1\nName: broken\n")
                    $0.file("app/node_modules/@babel/core/package.json", #"{"name":"@babel/core","version":"7.23.0","license":"MIT"}"#)
                    $0.file("app/node_modules/left-pad/package.json", #"{"name":"left-pad","version":"1.3.0","licenses":[{"type":"WTFPL"}]}"#)
                    $0.file("app/node_modules/bad/package.json", "{not json")
                    $0.file("app/package.json", #"{"name":"app","version":"0.0.1"}"#)
                    $0.file(
                        "usr/share/nodejs/debian-mod/package.json",
                        #"{"name":"debian-mod","version":"3.0.0","license":"ISC","description":"\#(String(repeating: "x", count: 2000))"}"#,
                        mode: 0o755)
                    $0.file("srv/nameless/package.json", #"{"private":true}"#)
                }
            ], to: store)
        let fs = try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
        let (_, packages) = Catalogers.catalog(fs)
        try #require(packages.count == 7)
        #expect(
            packages.map(\.purl) == [
                "pkg:npm/%40babel/core@7.23.0", "pkg:npm/app@0.0.1", "pkg:npm/debian-mod@3.0.0", "pkg:npm/left-pad@1.3.0", "pkg:pypi/jinja2@3.1.2",
                "pkg:pypi/six@1.16.0", "pkg:pypi/typing-extensions@4.9.0",
            ])
        #expect(packages.map(\.licenses) == [["MIT"], [], ["ISC"], ["WTFPL"], ["BSD-3-Clause"], ["MIT"], ["Python Software Foundation License"]])
        #expect(packages[4].name == "jinja2" && packages[4].locations == ["/usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA"])
    }

    @Test(
        arguments: [
            (
                "deb", "debian", "libc6", "2.36-9+deb12u4", ["arch": "amd64", "distro": "debian-12"],
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
            ),
            ("npm", "@angular", "core", "16.0.0", [:], "pkg:npm/%40angular/core@16.0.0"),
            ("rpm", "fedora", "curl", "7.50.3-1.fc25", ["arch": "i386", "epoch": "1"], "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&epoch=1"),
            (
                "maven", "org.apache.xmlgraphics", "batik-anim", "1.9.1", ["packaging": "sources"],
                "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?packaging=sources"
            ),
            ("golang", "github.com/gorilla", "context", "v1.1.2", [:], "pkg:golang/github.com/gorilla/context@v1.1.2"),
            ("generic", "", "a b", "1.0 beta", ["x": ""], "pkg:generic/a%20b@1.0%20beta"),
        ] as [(String, String, String, String, [String: String], String)])
    func purls(_ type: String, _ namespace: String, _ name: String, _ version: String, _ qualifiers: [String: String], _ expected: String) {
        #expect(PURL.make(type: type, namespace: namespace, name: name, version: version, qualifiers: qualifiers) == expected)
    }
}
