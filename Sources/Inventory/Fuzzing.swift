import Foundation

/// Entry points for the fuzzing harness (`scripts/fuzz.sh`): each reads untrusted bytes exactly as the cataloger
/// that owns the format does, and returns whatever it finds. A crash or hang here is a defect.
public enum InventoryFuzzing {
    public static let targets: [String: @Sendable ([UInt8]) -> Void] = [
        "dpkg": { bytes in
            for p in Catalogers.paragraphs(bytes[...]) { _ = Dictionary(p, uniquingKeysWith: { a, _ in a }) }
            _ = Dpkg.keys(bytes[...])
            _ = Dpkg.licensesFromCopyright(bytes)
        },
        "apk": { bytes in _ = Apk.records(bytes[...]) },
        "rpm": { bytes in _ = RPM.parse(bytes) },
        "bdb": { bytes in _ = BerkeleyHash.values(bytes)?.compactMap(RPM.parse) },
        "go": { bytes in
            _ = GoBinaries.buildInfo(bytes)
            _ = GoBinaries.embeddedVersion(bytes)
        },
        "java": { bytes in
            var budget = Java.inflationBudget(archiveSize: bytes.count)
            _ = Java.packages(in: bytes, name: "fuzz.jar", nestedPath: [], depth: 0, budget: &budget)
            _ = Java.manifestFields(bytes)
            _ = Java.properties(bytes)
        },
        "sbom": { bytes in _ = try? SBOMReader.read(bytes, name: "fuzz") },
        "tar": { bytes in tar(bytes) },
    ]

    /// A layer (tar, or gzip/zstd-compressed tar) read and catalogued as `warden sbom` would.
    static func tar(_ bytes: [UInt8]) {
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            defer { done.signal() }
            guard let source = try? await ImageSource.decompressed(FuzzChunks(bytes), what: "fuzz layer") else { return }
            var builder = FilesystemBuilder(capture: Catalogers.capture)
            guard
                let listing = try? await FilesystemBuilder.read(
                    LayerInfo(index: 0, digest: "sha256:fuzz", mediaType: "", size: 0), tar: source, capture: Catalogers.capture)
            else { return }
            builder.apply(listing)
            _ = Catalogers.catalog(builder.filesystem)
        }
        done.wait()
    }

    struct FuzzChunks: ChunkSource {
        var rest: ArraySlice<UInt8>
        init(_ bytes: [UInt8]) { rest = bytes[...] }
        mutating func next() async throws -> [UInt8]? {
            guard !rest.isEmpty else { return nil }
            let chunk = Array(rest.prefix(4096))
            rest = rest.dropFirst(chunk.count)
            return chunk
        }
    }
}
