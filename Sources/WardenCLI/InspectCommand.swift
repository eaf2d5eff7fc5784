import ArgumentParser
import CommandSupport
import Foundation
import OCI
import OCIRegistry
import WardenApp

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a manifest, its configuration summary and its referrers tree.")

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var reference: String

    @Flag(name: .long, help: "Print the manifest's exact bytes and nothing else.")
    var raw = false

    @OptionGroup var global: GlobalOptions

    struct Output: Encodable {
        struct ConfigSummary: Encodable {
            var os: String
            var architecture: String
            var variant: String?
            var created: String?
            var layers: Int
            var layersSize: Int64
        }
        var reference: String
        var digest: String
        var mediaType: String
        var size: Int64
        var artifactType: String?
        var config: ConfigSummary?
        var platforms: [String]?
        var subject: String?
        var referrers: [ReferrerNode]
        /// The referrers tree was cut at its depth or node limit.
        var referrersTruncated: Bool
    }

    func run() async throws {
        let location = try parseLocation(reference)
        try await withRegistries(global) { registries in
            let (store, ref) = try open(location, registries, create: false)
            let desc = try await store.resolve(ref)
            let manifest = try await store.fetchManifest(desc)
            if raw {
                FileHandle.standardOutput.write(manifest.bytes)
                return
            }
            let tree = try await referrerTree(of: desc, in: store)
            var out = Output(
                reference: location.description, digest: desc.digest.description, mediaType: manifest.mediaType, size: desc.size,
                referrers: tree.nodes, referrersTruncated: tree.truncated)
            let parsed = try manifest.parsed()
            out.artifactType =
                parsed.artifactType == MediaType.imageConfig || parsed.artifactType == MediaType.dockerConfig ? nil : parsed.artifactType
            out.subject = parsed.subject?.digest.description
            switch parsed {
            case .index(let idx):
                out.platforms = idx.manifests.map { "\($0.platform?.description ?? "unknown") \($0.digest)" }
            case .image(let m):
                if m.config.mediaType == MediaType.imageConfig || m.config.mediaType == MediaType.dockerConfig {
                    let bytes = try await store.fetchVerified(m.config).collect(limit: 16 << 20)
                    if let c = try? JSONDecoder().decode(ImageConfig.self, from: bytes) {
                        out.config = .init(
                            os: c.os, architecture: c.architecture, variant: c.variant, created: c.created, layers: m.layers.count,
                            layersSize: m.layers.reduce(0) { $0 + $1.size })
                    }
                }
            }
            switch global.output {
            case .json: try printJSON(out)
            case .text: printText(out)
            }
        }
    }

    func printText(_ o: Output) {
        print("Reference:  \(o.reference)")
        print("Digest:     \(o.digest)")
        print("Media type: \(o.mediaType)")
        print("Size:       \(o.size)")
        if let a = o.artifactType { print("Artifact:   \(a)") }
        if let s = o.subject { print("Subject:    \(s)") }
        if let c = o.config {
            print("Platform:   \(c.os)/\(c.architecture)\(c.variant.map { "/\($0)" } ?? "")")
            if let created = c.created { print("Created:    \(created)") }
            print("Layers:     \(c.layers) (\(formatBytes(c.layersSize)))")
        }
        if let p = o.platforms {
            print("Platforms:")
            for line in p { print("  \(line)") }
        }
        print("Referrers:" + (o.referrers.isEmpty ? " none" : ""))
        func walk(_ nodes: [ReferrerNode], _ indent: String) {
            for n in nodes {
                print("\(indent)└─ \(n.digest) \(n.artifactType ?? n.mediaType) (\(n.via))")
                walk(n.referrers, indent + "   ")
            }
        }
        walk(o.referrers, "  ")
        if o.referrersTruncated { print("  … more referrers not shown (the tree is cut at 8 levels and 500 nodes)") }
    }
}

struct TagsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tags", abstract: "List the tags of a repository or layout.")

    @Argument(help: "REGISTRY/REPO or oci-layout:PATH.")
    var repository: String

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let location = try parseLocation(repository)
        try await withRegistries(global) { registries in
            let (store, _) = try open(location, registries, create: false)
            let tags = try await store.listTags()
            switch global.output {
            case .json:
                struct Out: Encodable {
                    var repository: String
                    var tags: [String]
                }
                try printJSON(Out(repository: location.description, tags: tags))
            case .text: for t in tags { print(t) }
            }
        }
    }
}

struct DigestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest", abstract: "Print the manifest digest each reference resolves to (several are resolved in parallel).")

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var references: [String]

    @Option(name: .long, help: "References resolved at once.")
    var concurrency = 16

    @Flag(name: .long, help: "GET each manifest and compute its digest from the bytes, instead of trusting a HEAD's Docker-Content-Digest.")
    var fetch = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let locations = try references.map(parseLocation)
        let descriptors = try await withRegistries(global) { registries -> [Descriptor] in
            let box = OrderedResults<Descriptor>(count: locations.count)
            try await concurrentForEach(Array(locations.enumerated()), limit: max(1, concurrency)) { (i, location) in
                let (store, ref) = try open(location, registries, create: false)
                if fetch, let direct = store as? any ManifestByReference {
                    await box.set(i, try await direct.getManifest(ref).descriptor)
                } else if fetch {
                    await box.set(i, try await store.fetchManifest(store.resolve(ref)).descriptor)
                } else {
                    await box.set(i, try await store.resolve(ref))
                }
            }
            return await box.values
        }
        switch global.output {
        case .json: try printJSON(descriptors.count == 1 ? AnyEncodable(descriptors[0]) : AnyEncodable(descriptors))
        case .text: for d in descriptors { print(d.digest) }
        }
    }
}

struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "List the repositories of a registry (where it allows listing).")

    @Argument(help: "Registry host, e.g. localhost:5000.")
    var registry: String

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let host: String
        do {
            host = try Reference(parsing: "\(registry)/x").registry
        } catch let e as OCIError {
            throw ValidationError(e.reason)
        }
        try await withRegistries(global) { registries in
            let repositories = try await registries.client(host: host).catalog()
            switch global.output {
            case .json:
                struct Out: Encodable {
                    var registry: String
                    var repositories: [String]
                }
                try printJSON(Out(registry: host, repositories: repositories))
            case .text: for r in repositories { print(r) }
            }
        }
    }
}
