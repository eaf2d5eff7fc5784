import ArgumentParser
import CommandSupport
import Crypto
import Foundation
import Inventory
import OCI
import OCIRegistry
import Trust
import WardenApp

struct SBOMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sbom",
        abstract: "Inventory an image's packages and write an SBOM (CycloneDX 1.6, SPDX 2.3, Warden JSON or a table).",
        discussion: """
            SOURCE is a registry reference, oci-layout:PATH[:TAG|@DIGEST], docker-archive:PATH (a `docker save` \
            tarball), dir:PATH (a root filesystem) or sbom:FILE (a CycloneDX or SPDX JSON document from any tool, \
            converted). Layers stream through gzip and tar without being unpacked; \
            whiteouts are applied; each package names the layer that introduced it. Catalogers: os-release, dpkg \
            (status and status.d, copyright licenses), apk, RPM (rpmdb.sqlite and Berkeley DB Packages), Python (dist-info, egg-info), npm \
            (package.json), Go binaries (build information), Java archives (pom.properties, manifests, nesting).

            -o FORMAT writes to standard output, -o FORMAT=FILE to a file; repeat it for several documents.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Image reference, oci-layout:PATH, docker-archive:PATH or dir:PATH.") var source: String
    @Option(name: [.customShort("o"), .customLong("format")], help: "cyclonedx-json, spdx-json, warden-json or table, optionally =FILE.")
    var formats: [String] = []
    @Option(name: .long, help: "Write the (single) document to this file.") var outputFile: String?
    @Option(name: .long, help: "Platform of a multi-platform image (default: this machine's).") var platform: String?
    @Flag(name: .long, help: "Attach the SBOM to the image as a signed attestation (needs --key).") var attest = false
    @Option(name: .long, help: "Signing key for --attest.") var key: String?
    @Option(name: .long, help: "Attestation layout for --attest: legacy (.att tag) or bundle.") var attestFormat: SignatureFormatOption = .bundle
    @OptionGroup var password: PasswordOptions

    func validate() throws {
        let _: [(SBOMFormat, String?)] = try parseOutputs(formats)
        try validateAttestation(attest, key: key, source: source)
    }

    func run() async throws {
        var outputs: [(SBOMFormat, String?)] = try parseOutputs(formats)
        if outputs.isEmpty { outputs = [(.table, nil)] }
        if let outputFile {
            guard outputs.count == 1 else { throw ValidationError("--output-file takes one format; use -o FORMAT=FILE for several") }
            outputs[0].1 = outputFile
        }
        let wanted = try platform.map { p in
            do { return try Platform(parsing: p) } catch let e as OCIError { throw ValidationError(e.reason) }
        }
        let signingKey = try key.map { try loadKey($0, password) }

        let inventory: Inventory
        do {
            inventory = try await scan(wanted, signingKey: signingKey, outputs: outputs)
        } catch let e as InventoryError {
            throw failure(for: e)
        }
        for (format, file) in outputs {
            let data = try format.render(inventory)
            if let file {
                try data.write(to: URL(fileURLWithPath: file), options: .atomic)
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }

    func scan(_ wanted: Platform?, signingKey: P256.Signing.PrivateKey?, outputs: [(SBOMFormat, String?)]) async throws -> Inventory {
        let parsed: InventoryJob.Source
        do { parsed = try InventoryJob.Source(parsing: source) } catch let e as OCIError { throw ValidationError(e.reason) }
        return try await withRegistries(global) { registries in
            let result = try await InventoryJob.run(parsed, name: source, platform: wanted, registries: registries)
            for line in InventoryJob.describe(result.skipped) { printError("warning: \(line)") }
            if attest, let signingKey {
                // The predicate is the first JSON document asked for (CycloneDX by default).
                let format = outputs.map(\.0).first { $0 == .spdxJSON || $0 == .cyclonedxJSON } ?? .cyclonedxJSON
                let m = try await InventoryJob.attest(
                    result, of: parsed, format: format, key: signingKey, layout: attestFormat.format, registries: registries)
                printError("Attested \(m.digest) (\(m.predicateType)) in \(m.manifest)")
            }
            return result.inventory
        }
    }
}
