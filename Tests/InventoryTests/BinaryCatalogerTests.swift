import Foundation
import OCI
import OCITesting
import Testing

@testable import Inventory

/// Go build information and Java archives, from real files: Debian's Go-built docker-registry, a synthetic
/// module-mode build-info blob, and archives written by Python's zipfile (an independent zip implementation).
@Suite struct BinaryCatalogerTests {
    func filesystem(_ files: [(String, [UInt8], Int)]) async throws -> ImageFilesystem {
        let store = MemoryStore()
        let image = try await pushImage([tar { w in for (p, b, m) in files { w.file(p, b, mode: m) } }], to: store)
        return try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
    }

    /// An ELF-looking file whose `.go.buildinfo` is found by the 16-byte-aligned scan.
    static func goBinary(version: String, modinfo: String) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 4096)
        b[0] = 0x7F
        b[1] = UInt8(ascii: "E")
        b[2] = UInt8(ascii: "L")
        b[3] = UInt8(ascii: "F")
        b[4] = 2
        b[5] = 1
        var info: [UInt8] = [0xFF] + Array(" Go buildinf:".utf8) + [8, 2] + [UInt8](repeating: 0, count: 16)
        func varString(_ bytes: [UInt8]) {
            var n = bytes.count
            while n >= 0x80 {
                info.append(UInt8(n & 0x7F) | 0x80)
                n >>= 7
            }
            info.append(UInt8(n))
            info += bytes
        }
        varString(Array(version.utf8))
        let sentinelStart: [UInt8] = [0x30, 0x77, 0xAF, 0x0C, 0x92, 0x74, 0x08, 0x02, 0x41, 0xE1, 0xC1, 0x07, 0xE6, 0xD6, 0x18, 0xE6]
        let sentinelEnd: [UInt8] = [0xF9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xD8, 0xF2]
        varString(sentinelStart + Array(modinfo.utf8) + sentinelEnd)
        b.replaceSubrange(1024..<(1024 + info.count), with: info)
        return b
    }

    @Test func goModulesDependenciesReplacementsAndStdlib() async throws {
        let modinfo = """
            path\texample.com/app/cmd/server
            mod\texample.com/app\tv1.4.0\th1:abc=
            dep\tgithub.com/spf13/cobra\tv1.8.0\th1:def=
            dep\tgolang.org/x/sys\tv0.15.0\th1:ghi=
            =>\tgolang.org/x/sys\tv0.16.0\th1:jkl=
            build\tGOARCH=arm64

            """
        var files = [("usr/local/bin/server", Self.goBinary(version: "go1.21.5", modinfo: modinfo), 0o755)]
        files.append(("usr/local/bin/not-go", [0x7F] + Array("ELF".utf8) + [UInt8](repeating: 1, count: 2000), 0o755))
        let real = "/usr/bin/docker-registry"
        let haveReal = FileManager.default.fileExists(atPath: real)
        if haveReal { files.append(("usr/bin/docker-registry", [UInt8](try Data(contentsOf: URL(fileURLWithPath: real))), 0o755)) }
        let fs = try await filesystem(files)
        let packages = GoBinaries.catalog(fs)
        let server = packages.filter { $0.locations == ["/usr/local/bin/server"] }
        #expect(
            server.map(\.purl) == [
                "pkg:golang/example.com/app@v1.4.0", "pkg:golang/github.com/spf13/cobra@v1.8.0", "pkg:golang/golang.org/x/sys@v0.16.0",
                "pkg:golang/stdlib@1.21.5",
            ])
        #expect(server.first?.metadata["mainModule"] == "true" && server.first?.metadata["architecture"] == "arm64")
        #expect(server.last?.version == "go1.21.5")
        #expect(fs.versions["usr/local/bin/server"]?.last?.bytes.count ?? 0 < 400, "only the build information is kept")
        #expect(fs.versions["usr/local/bin/not-go"] == nil)
        if haveReal {
            // Debian builds Go programs outside module mode: only the main package path and the toolchain.
            let registry = packages.filter { $0.locations == ["/usr/bin/docker-registry"] }
            #expect(registry.map(\.name) == ["github.com/docker/distribution/cmd/registry", "stdlib"])
            #expect(registry.first?.version.hasPrefix("v2.") == true, "the release embedded in the binary")
            #expect(registry.first?.purl.hasPrefix("pkg:golang/github.com/docker/distribution@v2.") == true)
            #expect(registry.first?.purl.hasSuffix("#cmd/registry") == true)
        }
    }

    static func python(_ script: String, _ args: [String]) async throws {
        let result = try await runProgram("/usr/bin/env", ["python3", "-c", script] + args)
        #expect(result.status == 0, "\(result.errorOutput)")
    }

    @Test func javaArchivesWithPomManifestFileNamesAndNesting() async throws {
        let dir = try makeTemporaryDirectory()
        try await Self.python(
            """
            import sys, zipfile, io
            out = sys.argv[1]
            def jar(entries):
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                    for name, data in entries: z.writestr(name, data)
                return buf.getvalue()
            inner = jar([("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\\r\\nImplementation-Title: inner\\r\\n"),
                         ("META-INF/maven/org.example/inner-lib/pom.properties", "groupId=org.example\\nartifactId=inner-lib\\nversion=2.1.0\\n")])
            war = jar([("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\\r\\n"),
                       ("META-INF/maven/com.acme/shop/pom.properties", "#generated\\ngroupId=com.acme\\nartifactId=shop\\nversion=1.4.2\\n"),
                       ("WEB-INF/lib/inner-lib-2.1.0.jar", inner)])
            open(out + "/shop-1.4.2.war", "wb").write(war)
            open(out + "/commons-cli-1.5.0.jar", "wb").write(jar([("META-INF/MANIFEST.MF",
                "Manifest-Version: 1.0\\r\\nImplementation-Title: Apache Commons CLI\\r\\nImplementation-Version: 1.5.0\\r\\nBundle-License: Apache-2.0\\r\\n")]))
            open(out + "/broken.jar", "wb").write(b"PK\\x03\\x04 not really a zip")
            """, [dir])
        let read = { (name: String) in [UInt8](try! Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))) }
        let fs = try await filesystem([
            ("opt/shop/shop-1.4.2.war", read("shop-1.4.2.war"), 0o644),
            ("usr/share/java/commons-cli-1.5.0.jar", read("commons-cli-1.5.0.jar"), 0o644),
            ("usr/share/java/broken.jar", read("broken.jar"), 0o644),
        ])
        let packages = Java.catalog(fs)
        #expect(
            packages.map(\.purl) == [
                "pkg:maven/com.acme/shop@1.4.2", "pkg:maven/org.example/inner-lib@2.1.0", "pkg:maven/commons-cli/commons-cli@1.5.0",
            ])
        #expect(packages[1].locations == ["/opt/shop/shop-1.4.2.war:WEB-INF/lib/inner-lib-2.1.0.jar"])
        #expect(packages[2].licenses == ["Apache-2.0"])
    }
}

/// RPM's SQLite database, written by the real rpm tools (rpmbuild + rpm --justdb, from Debian's `rpm` package).
@Suite struct RPMTests {
    static func sh(_ script: String) async throws -> Int32 {
        try await runProgram("/bin/sh", ["-c", script]).status
    }

    @Test func rpmdbSQLiteFromTheRealTools() async throws {
        let dir = try makeTemporaryDirectory()
        try #require(try await Self.sh("command -v rpmbuild") == 0, "rpmbuild is missing: scripts/test.sh installs Debian's rpm package")
        for (name, epoch, license) in [("hello-warden", "Epoch: 2\n", "MIT AND Apache-2.0"), ("other-lib", "", "GPL-2.0-or-later")] {
            let spec =
                "Name: \(name)\nVersion: 1.2.3\nRelease: 4.fc40\n\(epoch)Summary: t\nLicense: \(license)\nBuildArch: x86_64\n%description\nt\n%files\n"
            try Data(spec.utf8).write(to: URL(fileURLWithPath: "\(dir)/\(name).spec"))
            #expect(try await Self.sh("rpmbuild --define '_topdir \(dir)/top' -bb \(dir)/\(name).spec") == 0)
        }
        #expect(
            try await Self.sh(
                "rpm --dbpath \(dir)/db --initdb && rpm --dbpath \(dir)/db -i --nodeps --justdb --ignorearch \(dir)/top/RPMS/x86_64/*.rpm")
                == 0)
        let db = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/db/rpmdb.sqlite")))
        let store = MemoryStore()
        let image = try await pushImage(
            [tar { $0.file("etc/os-release", "ID=fedora\nVERSION_ID=40\n") }, tar { $0.file("usr/lib/sysimage/rpm/rpmdb.sqlite", db) }], to: store)
        let fs = try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
        let packages = Catalogers.catalog(fs).1
        #expect(
            packages.map(\.purl) == [
                "pkg:rpm/fedora/hello-warden@1.2.3-4.fc40?arch=x86_64&distro=fedora-40&epoch=2&upstream=hello-warden-1.2.3-4.fc40.src.rpm",
                "pkg:rpm/fedora/other-lib@1.2.3-4.fc40?arch=x86_64&distro=fedora-40&upstream=other-lib-1.2.3-4.fc40.src.rpm",
            ])
        #expect(packages.map(\.version) == ["2:1.2.3-4.fc40", "1.2.3-4.fc40"])
        #expect(packages.map(\.licenses) == [["MIT AND Apache-2.0"], ["GPL-2.0-or-later"]])
        #expect(packages.allSatisfy { $0.layer == fs.layers[1].digest })
        // The same headers in Berkeley DB hash databases (RHEL 7/8, CentOS, Amazon Linux 2), written by db5.3_load:
        // page size 4096 keeps the headers in overflow chains, 16384 on the hash pages themselves.
        for pageSize in [4096, 16384] {
            let script = """
                import sqlite3, struct, sys
                rows = sqlite3.connect(sys.argv[1]).execute('SELECT hnum, blob FROM Packages').fetchall()
                with open(sys.argv[2], 'w') as f:
                    f.write('VERSION=3\\nformat=bytevalue\\ntype=hash\\ndb_pagesize=\(pageSize)\\nHEADER=END\\n')
                    f.write(' ' + struct.pack('<I', 0).hex() + '\\n ' + struct.pack('<I', len(rows) + 1).hex() + '\\n')
                    for hnum, blob in rows:
                        f.write(' ' + struct.pack('<I', hnum).hex() + '\\n ' + bytes(blob).hex() + '\\n')
                    f.write('DATA=END\\n')
                """
            try Data(script.utf8).write(to: URL(fileURLWithPath: "\(dir)/dump.py"))
            try #require(try await Self.sh("command -v db5.3_load") == 0, "db5.3_load is missing: scripts/test.sh installs db5.3-util")
            #expect(
                try await Self.sh(
                    "rm -f \(dir)/Packages && python3 \(dir)/dump.py \(dir)/db/rpmdb.sqlite \(dir)/dump.txt && db5.3_load -f \(dir)/dump.txt \(dir)/Packages"
                ) == 0)
            let bdb = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/Packages")))
            let old = try await pushImage(
                [
                    tar {
                        $0.file("etc/os-release", "ID=centos\nVERSION_ID=\"7\"\n"); $0.file("var/lib/rpm/Packages", bdb)
                    }
                ], to: store)
            let oldFS = try await ImageSource.filesystem(of: old, in: store, capture: Catalogers.capture).filesystem
            let found = Catalogers.catalog(oldFS).1
            #expect(found.map(\.name) == ["hello-warden", "other-lib"], "page size \(pageSize)")
            #expect(
                found.first?.purl
                    == "pkg:rpm/centos/hello-warden@1.2.3-4.fc40?arch=x86_64&distro=centos-7&epoch=2&upstream=hello-warden-1.2.3-4.fc40.src.rpm")
        }
        #expect(BerkeleyHash.values([UInt8](repeating: 0, count: 4096)) == nil)
        // A database that is not SQLite is skipped, not a crash.
        #expect(RPM.parse([0, 0, 0, 9, 0xFF]) == nil)
        #expect((try? RPM.read(Array("not sqlite".utf8))) == nil)
    }
}
