import Crypto
import Foundation
import Inventory
import OCI

/// A synthetic image pushed into `store`: each layer is a finished tar archive, gzip-compressed unless `plain`.
func pushImage(_ layers: [[UInt8]], to store: MemoryStore, plain: Bool = false, architecture: String = "amd64") async throws -> Descriptor {
    var descriptors: [Descriptor] = []
    var diffIDs: [OCI.Digest] = []
    for tar in layers {
        let blob = plain ? tar : try gzip(tar)
        let d = Descriptor(
            mediaType: plain ? MediaType.imageLayer : MediaType.imageLayerGzip, digest: OCI.Digest.compute(Data(blob)), size: Int64(blob.count))
        try await store.push(d, bytes: Data(blob))
        descriptors.append(d)
        diffIDs.append(OCI.Digest.compute(Data(tar)))
    }
    let config = try JSONEncoder().encode(ImageConfig(architecture: architecture, os: "linux", diffIDs: diffIDs, created: "2026-01-01T00:00:00Z"))
    let configDescriptor = Descriptor(mediaType: MediaType.imageConfig, digest: OCI.Digest.compute(config), size: Int64(config.count))
    try await store.push(configDescriptor, bytes: config)
    let manifest = try RawManifest.encode(ImageManifest(config: configDescriptor, layers: descriptors), mediaType: MediaType.imageManifest)
    try await store.push(manifest)
    return manifest.descriptor
}

func tar(_ build: (inout TarWriter) -> Void) -> [UInt8] {
    var w = TarWriter()
    build(&w)
    return w.finish()
}
