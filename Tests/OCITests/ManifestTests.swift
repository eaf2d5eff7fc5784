import Foundation
import OCI
import Testing

@Suite struct ManifestTests {
    static let ociManifest = """
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "artifactType": "application/vnd.example.sbom.v1",
          "config": { "mediaType": "application/vnd.oci.empty.v1+json",
                      "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2, "data": "e30=" },
          "layers": [ { "mediaType": "application/json",
                        "digest": "sha256:\(hex)", "size": 10, "annotations": {"org.opencontainers.image.title": "sbom.json"} } ],
          "subject": { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:\(String(repeating: "b", count: 64))", "size": 100 },
          "annotations": { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" }
        }
        """

    @Test func decodesArtifactWithSubjectKeepingExactBytes() throws {
        let bytes = Data(Self.ociManifest.utf8)
        let raw = try RawManifest(bytes: bytes, mediaType: nil)
        #expect(raw.mediaType == MediaType.imageManifest)
        // The digest is over the exact bytes (whitespace and key order included), not a re-encoding.
        #expect(raw.digest == Digest.compute(bytes))
        let m = try #require(try raw.parsed().imageManifest, "expected an image manifest")
        #expect(m.artifactType == "application/vnd.example.sbom.v1")
        #expect(m.config == .emptyJSON)
        #expect(m.subject?.digest.hex == String(repeating: "b", count: 64))
        #expect(m.layers[0].annotations?["org.opencontainers.image.title"] == "sbom.json")
        let ref = try referrerDescriptor(for: raw)
        #expect(ref.artifactType == "application/vnd.example.sbom.v1")
        #expect(ref.annotations?["org.opencontainers.image.created"] == "2026-01-01T00:00:00Z")
        #expect(try raw.children().count == 2)
    }

    @Test func emptyDescriptorIsTheSpecs() {
        #expect(Descriptor.of(Descriptor.emptyJSONBytes, mediaType: MediaType.emptyJSON).digest == Descriptor.emptyJSON.digest)
    }

    @Test func dockerSchema2AndManifestList() throws {
        let manifest = Data(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"sha256:\(hex)"},
             "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2,"digest":"sha256:\(hex)"}]}
            """.utf8)
        let raw = try RawManifest(bytes: manifest, mediaType: "text/plain")
        #expect(raw.mediaType == MediaType.dockerManifest)
        let list = Data(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
             {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":3,"digest":"sha256:\(hex)",
              "platform":{"architecture":"arm","os":"linux","variant":"v7","os.features":["x"]}}]}
            """.utf8)
        let rawList = try RawManifest(bytes: list)
        let idx = try #require(try rawList.parsed().imageIndex, "expected an index")
        #expect(idx.manifests[0].platform == Platform(os: "linux", architecture: "arm", variant: "v7").with(features: ["x"]))
    }

    @Test func indexWithoutMediaTypeIsSniffed() throws {
        let raw = try RawManifest(bytes: Data(#"{"schemaVersion":2,"manifests":[]}"#.utf8))
        #expect(raw.mediaType == MediaType.imageIndex)
    }

    @Test func rejectsGarbageAndSchema1() {
        #expect { try RawManifest(bytes: Data("not json".utf8)) } throws: { ($0 as? OCIError)?.code == .invalidManifest }
        #expect { try RawManifest(bytes: Data(#"{"schemaVersion":1,"fsLayers":[]}"#.utf8)) } throws: { ($0 as? OCIError)?.code == .unsupported }
        let bad = Data(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:12","size":1},"layers":[]}"#
                .utf8)
        #expect {
            try RawManifest(bytes: bad).parsed()
        } throws: { error in
            let reason = (error as? OCIError)?.reason ?? ""
            return reason.contains("needs 64 hex digits")
        }
    }
}

extension Platform {
    func with(features: [String]) -> Platform {
        var p = self
        p.osFeatures = features
        return p
    }
}
