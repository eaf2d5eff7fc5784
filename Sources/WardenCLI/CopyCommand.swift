import ArgumentParser
import CommandSupport
import Foundation
import OCI
import OCIRegistry
import Synchronization
import WardenApp

struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy an image, index or artifact with all its referrers between registries and OCI layouts.",
        discussion: """
            Blobs go before manifests, children before parents, and the tag last, so an interrupted copy never \
            leaves a tag pointing at missing content; running it again skips what the destination already has. \
            Referrers are found through the referrers API, the sha256-<hex> fallback index and cosign's \
            sha256-<hex>.sig/.att/.sbom tags.
            """)

    @Argument(help: "Source: REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var source: String

    @Argument(help: "Destination; without a tag or digest the source's tag is used.")
    var destination: String

    @Option(name: .long, help: "Copy only this platform of an index (os/arch[/variant]); repeatable.")
    var platform: [String] = []

    @Flag(name: .long, help: "Copy every platform of an index (the default).")
    var allPlatforms = false

    @Flag(name: .long, help: "Do not copy referrers (signatures, attestations, SBOMs).")
    var noReferrers = false

    @Option(name: .long, help: "Blob transfers in flight at once.")
    var concurrency = 8

    @Option(name: .long, help: "Source registry credentials USER:PASSWORD (visible in ps: prefer --src-creds-file).")
    var srcCreds: String?

    @Option(name: .long, help: "File holding the source registry credentials USER:PASSWORD.")
    var srcCredsFile: String?

    @Option(name: .long, help: "Destination registry credentials USER:PASSWORD (visible in ps: prefer --dest-creds-file).")
    var destCreds: String?

    @Option(name: .long, help: "File holding the destination registry credentials USER:PASSWORD.")
    var destCredsFile: String?

    @OptionGroup var global: GlobalOptions

    /// `USER:PASSWORD` from a file (its first line), so that the password is not on the command line.
    func readCredentialsFile(_ path: String?) throws -> String? {
        guard let path else { return nil }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 << 10 else {
            throw ValidationError("cannot read the credentials file \(path) (or it is larger than 64 KiB)")
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
    }

    func validate() throws {
        if srcCreds != nil && srcCredsFile != nil { throw ValidationError("--src-creds and --src-creds-file exclude each other") }
        if destCreds != nil && destCredsFile != nil { throw ValidationError("--dest-creds and --dest-creds-file exclude each other") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        if allPlatforms && !platform.isEmpty { throw ValidationError("--all-platforms and --platform exclude each other") }
        for p in platform {
            do { _ = try Platform(parsing: p) } catch let e as OCIError { throw ValidationError(e.reason) }
        }
    }

    func run() async throws {
        let src = try parseLocation(source)
        let dst = try parseLocation(destination)
        var creds: [String: Credentials] = [:]
        if case .registry(let r) = src, let c = try srcCreds ?? readCredentialsFile(srcCredsFile) { creds[r.registry] = try Credentials(parsing: c) }
        if case .registry(let r) = dst, let c = try destCreds ?? readCredentialsFile(destCredsFile) {
            creds[r.registry] = try Credentials(parsing: c)
        }
        let platforms = try platform.map { try Platform(parsing: $0) }
        let report = try await withRegistries(global, credentials: creds) { registries in
            var options = CopyOptions(platforms: platforms, referrers: !noReferrers, concurrency: concurrency)
            let progress = isatty(2) == 1 && global.output == .text ? ProgressDisplay() : nil
            if let progress { options.progress = { progress.handle($0) } }
            progress?.start()
            defer { progress?.finish() }
            return try await CopyJob.copy(from: src, to: dst, options: options, registries: registries, logger: global.logger())
        }
        switch global.output {
        case .json: try printJSON(report)
        case .text:
            let rate = report.seconds > 0 ? Double(report.bytesCopied) / report.seconds : 0
            print("Copied \(report.source) → \(report.destination)\(report.tag.map { ":\($0)" } ?? "")")
            print("  digest     \(report.root.digest)")
            print("  manifests  \(report.manifestsCopied) copied, \(report.manifestsSkipped) already present")
            print("  blobs      \(report.blobsCopied) copied, \(report.blobsMounted) mounted, \(report.blobsSkipped) already present")
            print("  bytes      \(formatBytes(report.bytesCopied)) in \(String(format: "%.2f", report.seconds)) s (\(formatBytes(Int64(rate)))/s)")
            print(
                "  referrers  \(report.referrers.count) found, \(report.referrersCopied) copied"
                    + (report.cosignTags.isEmpty ? "" : ", cosign tags: \(report.cosignTags.sorted().joined(separator: ", "))"))
            if !report.referrersRepaired.isEmpty {
                print(
                    "  repaired   \(report.referrersRepaired.count) referrer(s) present at the destination but missing from its listing, now listed: "
                        + report.referrersRepaired.map(\.digest.description).joined(separator: ", "))
            }
        }
    }
}

/// Bytes, rate and blobs done, redrawn on one stderr line while a copy runs (TTY only).
final class ProgressDisplay: Sendable {
    struct State {
        var bytes: Int64 = 0
        var blobsDone = 0
        var blobsStarted = 0
    }
    let state = Mutex(State())
    let started = ContinuousClock.now
    let ticker = Mutex<Task<Void, Never>?>(nil)

    func handle(_ event: CopyEvent) {
        state.withLock { s in
            switch event {
            case .bytes(let n): s.bytes += Int64(n)
            case .blobStarted: s.blobsStarted += 1
            case .blobDone: s.blobsDone += 1
            case .manifestDone: break
            }
        }
    }

    func start() {
        let task = Task { [self] in
            while !Task.isCancelled {
                draw()
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        ticker.withLock { $0 = task }
    }

    func draw() {
        let s = state.withLock { $0 }
        let secs = max(0.001, started.duration(to: .now).seconds)
        let line =
            "\r\u{1B}[K\(formatBytes(s.bytes)) at \(formatBytes(Int64(Double(s.bytes) / secs)))/s, blobs \(s.blobsDone) done, \(s.blobsStarted - min(s.blobsStarted, s.blobsDone)) in flight"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        ticker.withLock { $0?.cancel() }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
