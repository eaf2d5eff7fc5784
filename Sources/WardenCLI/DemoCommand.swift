import ArgumentParser
import CommandSupport
import Foundation
import OCI
import SampleContent

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Self-contained demo: build a signed multi-platform image in one OCI layout and copy it to another.")

    @Option(help: "Working directory (default: a new temporary directory).") var directory: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let dir = directory ?? NSTemporaryDirectory() + "warden-demo-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let src = try LayoutStore(path: dir + "/upstream")
        let dst = try LayoutStore(path: dir + "/internal")
        var random = RandomContent(seed: 2026)
        print("1. Building a two-platform image with an SBOM referrer and a cosign signature in oci-layout:\(dir)/upstream")
        let index = try await random.pushIndex(
            to: src, platforms: [Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64", variant: "v8")],
            layerSizes: [256 << 10, 1 << 20, 64 << 10])
        _ = try await random.pushArtifact(
            to: src, subject: index.descriptor, artifactType: "application/spdx+json", payload: Data(#"{"spdxVersion":"SPDX-2.3"}"#.utf8))
        let sig = try await random.pushCosignSignature(to: src, subject: index.descriptor, dockerReference: "example.com/demo/app")
        try await src.tag(sig.descriptor, as: "\(index.digest.tagSchema).sig")
        try await src.tag(index.descriptor, as: "v1")
        print("   index \(index.digest)")

        print("2. warden copy oci-layout:\(dir)/upstream:v1 oci-layout:\(dir)/internal:v1")
        let first = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        print(
            "   \(first.manifestsCopied) manifests, \(first.blobsCopied) blobs, \(formatBytes(first.bytesCopied)), \(first.referrers.count) referrer(s), cosign tags: \(first.cosignTags.joined(separator: ", "))"
        )

        print("3. Copying again: nothing changed, nothing is transferred")
        let second = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        print("   \(second.blobsCopied) blobs copied, \(second.manifestsSkipped) manifests already present")

        let copied = try await dst.resolve("v1")
        guard copied.digest == index.digest else {
            printError("digest changed in the copy: \(index.digest) → \(copied.digest)")
            throw ExitCode(1)
        }
        let refs = try await dst.referrers(of: copied, artifactType: nil)
        print(
            "4. Destination has \(copied.digest) (same digest) with \(refs.count) referrer(s) and tags \(try await dst.listTags().joined(separator: ", "))"
        )
        print("Done. Inspect it with: warden inspect oci-layout:\(dir)/internal:v1")
    }
}
