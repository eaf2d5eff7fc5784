/// Media types of the OCI image spec, Docker's v2 schema 2 and the artifacts Warden handles.
public enum MediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let imageLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let imageLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let imageLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let emptyJSON = "application/vnd.oci.empty.v1+json"
    public static let layoutHeader = "application/vnd.oci.layout.header.v1+json"

    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    /// Cosign's simple-signing layer and its legacy signature tag suffixes.
    public static let cosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
    public static let inTotoDSSE = "application/vnd.dsse.envelope.v1+json"
    public static let sigstoreBundleV03 = "application/vnd.dev.sigstore.bundle.v0.3+json"

    /// Manifest media types a client accepts, most specific first.
    public static let manifestAccept: [String] = [imageManifest, imageIndex, dockerManifest, dockerManifestList]

    /// Whether content of this media type is a manifest (stored under /manifests/) rather than a blob.
    public static func isManifest(_ mediaType: String) -> Bool {
        mediaType == imageManifest || mediaType == imageIndex || mediaType == dockerManifest
            || mediaType == dockerManifestList
    }

    public static func isIndex(_ mediaType: String) -> Bool {
        mediaType == imageIndex || mediaType == dockerManifestList
    }
}
