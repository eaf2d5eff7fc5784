import ArgumentParser
import CommandSupport
import Foundation
import OCI
import OCIRegistry
import OCITesting

/// Parses sizes like 512, 64KiB, 20MiB, 1GiB.
func parseSize(_ s: String) throws -> Int {
    let units: [(String, Int)] = [
        ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1),
    ]
    for (suffix, mult) in units where s.hasSuffix(suffix) {
        if let n = Int(s.dropLast(suffix.count)) { return n * mult }
    }
    if let n = Int(s) { return n }
    throw ValidationError("invalid size \"\(s)\": use a number with an optional unit (B, KiB, MiB, GiB)")
}

struct TestdataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testdata",
        abstract: "Generate random, valid images and artifacts (for tests, demos and benchmarks).",
        discussion: "Layers are real tar archives of random bytes; the same --seed gives the same digests.")

    @Argument(help: "Destination: REGISTRY/REPO:TAG or oci-layout:PATH:TAG.")
    var destination: String

    @Option(help: "Number of layers per image.") var layers = 3
    @Option(help: "Smallest layer size.") var minSize = "64KiB"
    @Option(help: "Largest layer size.") var maxSize = "1MiB"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Make an index over these platforms (comma-separated os/arch[/variant]).") var platforms: String?
    @Flag(help: "Attach an SBOM artifact (referrer) and a cosign-style .sig tag.") var withReferrers = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let location = try parseLocation(destination)
        guard let tag = location.tag else { throw ValidationError("the destination needs a tag") }
        let minBytes = try parseSize(minSize)
        let maxBytes = try parseSize(maxSize)
        guard minBytes <= maxBytes, layers >= 1 else { throw ValidationError("need --layers ≥ 1 and --min-size ≤ --max-size") }
        let platformList = try platforms.map { try $0.split(separator: ",").map { try Platform(parsing: String($0)) } }
        try await withRegistries(global) { registries in
            let (store, _) = try open(location, registries, create: true)
            var random = RandomContent(seed: seed)
            var sizeGen = SeededGenerator(seed: seed &* 31 &+ 7)
            let sizes = (0..<layers).map { _ in Int.random(in: minBytes...maxBytes, using: &sizeGen) }
            let root: RawManifest
            if let platformList {
                root = try await random.pushIndex(to: store, platforms: platformList, layerSizes: sizes)
            } else {
                root = try await random.pushImage(to: store, layerSizes: sizes)
            }
            if withReferrers {
                _ = try await random.pushArtifact(
                    to: store, subject: root.descriptor, artifactType: "application/spdx+json",
                    payload: Data(#"{"spdxVersion":"SPDX-2.3","name":"generated"}"#.utf8))
                let sig = try await random.pushCosignSignature(to: store, subject: root.descriptor, dockerReference: location.description)
                try await store.tag(sig.descriptor, as: "\(root.digest.tagSchema).sig")
            }
            try await store.tag(root.descriptor, as: tag)
            switch global.output {
            case .json: try printJSON(root.descriptor)
            case .text: print(root.digest)
            }
        }
    }
}

struct BenchIngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ingest",
        abstract: "Benchmark floor: upload every blob of a layout from memory to a registry with maximal parallelism.")

    @Argument(help: "oci-layout:PATH") var source: String
    @Argument(help: "REGISTRY/REPO") var destination: String
    @Option(help: "Uploads in flight.") var concurrency = 16

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        guard case .layout(let path, _, _) = try parseLocation(source) else { throw ValidationError("source must be an oci-layout") }
        guard case .registry(let ref) = try parseLocation(destination) else { throw ValidationError("destination must be a registry repository") }
        try await withRegistries(global) { registries in
            let dst = try registries.repository(ref)
            // Load every blob of the layout into memory first: the timed part moves bytes from memory only.
            let blobDir = path + "/blobs/sha256"
            var blobs: [(Descriptor, Data)] = []
            for name in try FileManager.default.contentsOfDirectory(atPath: blobDir) where name.count == 64 {
                let data = try Data(contentsOf: URL(fileURLWithPath: blobDir + "/" + name))
                let d = try Descriptor(mediaType: "application/octet-stream", digest: Digest(parsing: "sha256:" + name), size: Int64(data.count))
                blobs.append((d, data))
            }
            let total = blobs.reduce(0) { $0 + $1.1.count }
            let start = ContinuousClock.now
            try await concurrentForEach(blobs.map { Item(d: $0.0, data: $0.1) }, limit: concurrency) { item in
                try await dst.pushBlob(item.d, content: .bytes(item.data, chunkSize: 4 << 20))
            }
            let secs = start.duration(to: .now).seconds
            print(String(format: "ingest %d blobs, %@ in %.3f s", blobs.count, formatBytes(Int64(total)), secs))
        }
    }

    struct Item: Sendable {
        var d: Descriptor
        var data: Data
    }
}

struct TestProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-proxy",
        abstract: "Test harness: an HTTP proxy in front of a registry adding latency and 429 answers; prints its address, runs until killed.")

    @Option(help: "Registry to forward to (host:port).") var upstream: String
    @Option(help: "Delay added to every request, in milliseconds.") var latencyMs = 0
    @Option(help: "Answer every Nth request with 429 (0: never).") var throttleEvery = 0
    @Option(help: "Port to listen on (0: a free one).") var port = 0

    func run() async throws {
        let proxy = try await ThrottlingProxy.start(
            upstream: upstream, options: .init(latency: .milliseconds(Int64(latencyMs)), throttleEvery: throttleEvery), port: port)
        FileHandle.standardOutput.write(Data((proxy.host + "\n").utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
