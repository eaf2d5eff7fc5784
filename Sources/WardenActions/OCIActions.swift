import CEL
import Crypto
import Documents
import Foundation
import Inventory
import Logging
import OCI
import OCIRegistry
import Policy
import Replicate
import Storage
import Trust
import WardenApp
import Workflow

extension Value {
    func string(_ key: String) throws -> String {
        guard case .string(let s)? = self[key] else { throw ActionFailure(.permanent, "\(key) must be a string") }
        return s
    }
}

/// An OCI location from an action input.
func location(_ text: String) throws -> Location {
    do { return try Location(parsing: text) } catch let e as OCIError { throw ActionFailure(.permanent, e.reason) }
}

/// An error as a failed attempt: the retry class comes from `ErrorDisposition`, the table every surface uses.
func classify(_ error: Error) -> ActionFailure {
    if let f = error as? ActionFailure { return f }
    let d = ErrorDisposition(error)
    return ActionFailure(d.retryable ? .retryable : .permanent, d.reason)
}

/// `oci/copy@v1`: copies an image, index or artifact with its referrers (the graph copy of `warden copy`).
public struct CopyAction: WorkflowAction {
    let registries: Registries
    public init(registries: Registries) { self.registries = registries }
    public let manifest = ActionManifest(
        name: "oci/copy", version: "1.0.0",
        description: "Copies an artifact with its signatures, attestations and SBOMs between registries and layouts (tag last).",
        inputSchema: schema(["source", "destination"], [("source", "string"), ("destination", "string"), ("referrers", "boolean")]),
        outputSchema: schema(
            ["digest", "reference"],
            [
                ("digest", "string"), ("reference", "string"), ("manifests", "integer"), ("blobs", "integer"), ("bytes", "integer"),
                ("referrers", "integer"), ("referrersRepaired", "integer"),
            ]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let src = try location(inputs.string("source"))
            let dst = try location(inputs.string("destination"))
            var referrers = true
            if case .bool(false)? = inputs["referrers"] { referrers = false }
            let options = CopyOptions(referrers: referrers)
            context.log("copy \(try inputs.string("source")) → \(try inputs.string("destination"))")
            let report = try await CopyJob.copy(
                from: src, to: dst, options: options, registries: registries, logger: Logger(label: "warden.workflow"))
            if !report.referrersRepaired.isEmpty {
                context.log("listed \(report.referrersRepaired.count) referrer(s) present at the destination but missing from its listing")
            }
            return ActionResult(
                outputs: .object([
                    ("digest", .string(report.root.digest.description)), ("reference", .string(dst.digestReference(report.root.digest))),
                    ("manifests", .int(Int64(report.manifestsCopied))), ("blobs", .int(Int64(report.blobsCopied))),
                    ("bytes", .int(report.bytesCopied)), ("referrers", .int(Int64(report.referrersCopied + report.referrersRepaired.count))),
                    ("referrersRepaired", .int(Int64(report.referrersRepaired.count))),
                ]))
        } catch { throw classify(error) }
    }
}

/// The trust policy an action input names: `policy` (trust policy file) or `key` (public key file).
func trustPolicy(_ inputs: Value, _ context: ActionContext) throws -> TrustPolicy {
    let spec: AuthoritySpec
    if case .string(let p)? = inputs["policy"] {
        spec = AuthoritySpec(policy: context.resolve(p))
    } else if case .string(let k)? = inputs["key"] {
        spec = AuthoritySpec(key: context.resolve(k))
    } else {
        throw ActionFailure(.permanent, "give policy (a trust policy file) or key (a public key file)")
    }
    return try VerificationJob.trustPolicy(spec) { path, _ in
        guard let text = FileManager.default.contents(atPath: path) else { throw ActionFailure(.permanent, "key \(path): cannot read the file") }
        return String(decoding: text, as: UTF8.self)
    }
}

/// `trust/verify@v1`: verifies an image's signatures (and required attestations) against a trust policy or key.
/// A refusal is a permanent failure naming the reasons.
public struct VerifyAction: WorkflowAction {
    let registries: Registries
    public init(registries: Registries) { self.registries = registries }
    public let manifest = ActionManifest(
        name: "trust/verify", version: "1.0.0", description: "Verifies signatures and attestations against a trust policy or a key.",
        inputSchema: schema(["image"], [("image", "string"), ("policy", "string"), ("key", "string")]),
        outputSchema: schema(
            ["digest", "digestReference", "outcome"],
            [("digest", "string"), ("digestReference", "string"), ("outcome", "string"), ("policy", "string"), ("signatures", "array")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let policy = try trustPolicy(inputs, context)
            let location = try location(inputs.string("image"))
            let (subject, d) = try await VerificationJob.verify(location, policy: policy, registries: registries)
            for s in d.signatures { context.log("\(s.verified ? "verified" : "not verified") \(s.layout) \(s.location) \(s.reason ?? "")") }
            guard d.outcome == .allowed else {
                throw ActionFailure(
                    .permanent, "\(location.repositoryName)@\(subject.digest): \(d.outcome.rawValue): \(d.reasons.joined(separator: "; "))")
            }
            let signatures: [Value] = d.signatures.filter(\.verified).map {
                .object([
                    ("verified", .bool(true)), ("authority", $0.authority.map(Value.string) ?? .null),
                    ("identity", $0.identity.map(Value.string) ?? .null),
                    ("layout", .string($0.layout)), ("location", .string($0.location)),
                ])
            }
            return ActionResult(
                outputs: .object([
                    ("digest", .string(subject.digest.description)), ("digestReference", .string(location.digestReference(subject.digest))),
                    ("outcome", .string(d.outcome.rawValue)), ("policy", d.policy.map(Value.string) ?? .null), ("signatures", .list(signatures)),
                ]))
        } catch { throw classify(error) }
    }
}

/// `policy/eval@v1`: evaluates a policy document over facts — given (`facts`), gathered from the registry
/// (`image`, checked with `trustPolicy` or `key`), or both merged. The decision is an output, not a failure:
/// later steps branch on it.
public struct PolicyEvalAction: WorkflowAction {
    let registries: Registries
    public init(registries: Registries) { self.registries = registries }
    public let manifest = ActionManifest(
        name: "policy/eval", version: "1.0.0", description: "Evaluates a policy document (CEL rules) over an artifact's facts: allow, warn or deny.",
        inputSchema: schema(
            ["policy"], [("policy", "string"), ("facts", "object"), ("image", "string"), ("trustPolicy", "string"), ("key", "string")]),
        outputSchema: schema(
            ["decision"], [("decision", "string"), ("policy", "string"), ("messages", "array"), ("rules", "array")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let document = try PolicyDocument.load(path: context.resolve(try inputs.string("policy")))
            var request = PolicyJob.Request(image: nil, facts: inputs["facts"])
            if case .string(let image)? = inputs["image"] {
                var trustInputs: [(String, Value)] = []
                if let p = inputs["trustPolicy"] { trustInputs.append(("policy", p)) }
                if let k = inputs["key"] { trustInputs.append(("key", k)) }
                request = PolicyJob.Request(
                    image: try location(image), reference: image, trust: trustInputs.isEmpty ? nil : try trustPolicy(.object(trustInputs), context),
                    facts: inputs["facts"])
            }
            let result = try await PolicyJob.check(document, request, registries: registries).result
            var messages: [Value] = []
            var rules: [Value] = []
            for r in result.rules {
                if let m = r.message, r.outcome == .fired { messages.append(.string(m)) }
                rules.append(
                    .object([
                        ("name", .string(r.name)), ("effect", .string(r.effect.rawValue)), ("outcome", .string(r.outcome.rawValue)),
                        ("message", r.message.map(Value.string) ?? .null), ("error", r.error.map(Value.string) ?? .null),
                    ]))
                context.log("rule \(r.name): \(r.outcome.rawValue)\(r.message.map { " — \($0)" } ?? "")\(r.error.map { " — \($0)" } ?? "")")
            }
            return ActionResult(
                outputs: .object([
                    ("decision", .string(result.decision.rawValue)), ("policy", .string(result.policy)), ("messages", .list(messages)),
                    ("rules", .list(rules)),
                ]))
        } catch { throw classify(error) }
    }
}

/// A private key named by an action input; an encrypted key's password comes from the credential slot
/// `passwordSlot` (default `cosign_password`).
func signingKey(_ inputs: Value, _ context: ActionContext) throws -> P256.Signing.PrivateKey {
    let path = context.resolve(try inputs.string("key"))
    guard let text = FileManager.default.contents(atPath: path) else { throw ActionFailure(.permanent, "key \(path): cannot read the file") }
    let slot = inputs["passwordSlot"]?.stringValue ?? "cosign_password"
    return try loadSigningKey(String(decoding: text, as: UTF8.self), source: path) {
        guard let p = context.credentials[slot] else {
            throw ActionFailure(
                .permanent, "the key is encrypted: list \"\(slot)\" in with.credentials and set WARDEN_CREDENTIAL_\(slot.uppercased())")
        }
        return Data(p.utf8)
    }
}

/// `trust/sign@v1`: signs an image (cosign `.sig` layout or a sigstore bundle referrer).
public struct SignAction: WorkflowAction {
    let registries: Registries
    public init(registries: Registries) { self.registries = registries }
    public let manifest = ActionManifest(
        name: "trust/sign", version: "1.0.0", description: "Signs an image with a key (legacy .sig or sigstore bundle).",
        inputSchema: schema(["image", "key"], [("image", "string"), ("key", "string"), ("format", "string"), ("passwordSlot", "string")]),
        outputSchema: schema(["digest", "signature"], [("digest", "string"), ("signature", "string")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let key = try signingKey(inputs, context)
            var annotations: [String: String] = [:]
            if let given = inputs["annotations"] {
                guard case .map(let pairs) = given else { throw ActionFailure(.permanent, "annotations must be an object of strings") }
                for (k, v) in pairs {
                    guard case .string(let key) = k, case .string(let value) = v else {
                        throw ActionFailure(.permanent, "annotations must be an object of strings")
                    }
                    annotations[key] = value
                }
            }
            let request = SigningJob.SignRequest(
                location: try location(inputs.string("image")), format: try signatureFormat(inputs, default: .legacy), annotations: annotations)
            let report = try await SigningJob.sign(request, key: key, registries: registries)
            return ActionResult(
                outputs: .object([
                    ("digest", .string(report.subject.digest.description)), ("signature", .string(report.signature.digest.description)),
                ]))
        } catch { throw classify(error) }
    }
}

/// The `format` input: `legacy` or `bundle` (anything else is refused, not taken for the default).
func signatureFormat(_ inputs: Value, default: SignatureFormat) throws -> SignatureFormat {
    guard let given = inputs["format"] else { return `default` }
    guard case .string(let name) = given, let format = SignatureFormat(rawValue: name) else {
        throw ActionFailure(.permanent, "format must be legacy or bundle, not \(given.jsonText())")
    }
    return format
}

/// `trust/attest@v1`: attests an image with an in-toto statement (`predicateType`, `predicate` JSON).
public struct AttestAction: WorkflowAction {
    let registries: Registries
    public init(registries: Registries) { self.registries = registries }
    public let manifest = ActionManifest(
        name: "trust/attest", version: "1.0.0", description: "Signs an in-toto attestation about an image (.att or bundle referrer).",
        inputSchema: schema(
            ["image", "key", "predicateType", "predicate"],
            [
                ("image", "string"), ("key", "string"), ("predicateType", "string"), ("predicate", "any"), ("format", "string"),
                ("passwordSlot", "string"),
            ]),
        outputSchema: schema(["digest", "attestation"], [("digest", "string"), ("attestation", "string"), ("predicateType", "string")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let key = try signingKey(inputs, context)
            let request = SigningJob.AttestRequest(
                location: try location(inputs.string("image")), predicateType: try inputs.string("predicateType"),
                predicate: Data((inputs["predicate"] ?? .map([])).jsonText().utf8), format: try signatureFormat(inputs, default: .bundle))
            let report = try await SigningJob.attest(request, key: key, registries: registries)
            return ActionResult(
                outputs: .object([
                    ("digest", .string(report.digest)), ("attestation", .string(report.manifest)), ("predicateType", .string(report.predicateType)),
                ]))
        } catch { throw classify(error) }
    }
}

/// `sbom/generate@v1`: the packages of an image (the cataloguers of `warden sbom`); outputs the `sbom` fact of the
/// policy input schema and the CycloneDX document as the artifact `sbom.cdx.json`.
public struct SBOMAction: WorkflowAction {
    let registries: Registries
    public init(registries: Registries) { self.registries = registries }
    public let manifest = ActionManifest(
        name: "sbom/generate", version: "1.0.0", description: "Catalogues an image's packages: the sbom fact and a CycloneDX artifact.",
        inputSchema: schema(["image"], [("image", "string"), ("platform", "string")]),
        outputSchema: schema(["digest", "packages", "sbom"], [("digest", "string"), ("packages", "integer"), ("sbom", "object")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let image = try inputs.string("image")
            let source: InventoryJob.Source
            do { source = try InventoryJob.Source(parsing: image) } catch let e as OCIError { throw ActionFailure(.permanent, e.reason) }
            let platform = try inputs["platform"]?.stringValue.map { try Platform(parsing: $0) }
            let result = try await InventoryJob.run(source, name: image, platform: platform, registries: registries)
            for line in InventoryJob.describe(result.skipped) { context.log("warning: \(line)") }
            let inventory = result.inventory
            let packages = inventory.packages
            let file = context.workDirectory + "/sbom.cdx.json"
            try SBOMFormat.cyclonedxJSON.render(inventory).write(to: URL(fileURLWithPath: file))
            let components: [Value] = packages.map {
                .object([
                    ("type", .string($0.type)), ("name", .string($0.name)), ("version", .string($0.version)), ("purl", .string($0.purl)),
                    ("licenses", .list($0.licenses.map(Value.string))), ("layer", $0.layer.map(Value.string) ?? .null),
                ])
            }
            return ActionResult(
                outputs: .object([
                    ("digest", .string(result.subject?.digest.description ?? inventory.subject.digest ?? "")),
                    ("packages", .int(Int64(packages.count))),
                    ("sbom", .object([("format", .string("cyclonedx-json")), ("components", .list(components))])),
                ]), artifacts: [OutputArtifact(name: "sbom.cdx.json", path: file)])
        } catch { throw classify(error) }
    }
}

/// `replicate@v1`: runs a replication file (`warden replicate -f FILE`): verified copies into the internal registry
/// with their attachments. Items that failed (network, registry) make a retryable failure; items refused by
/// verification a permanent one; otherwise the per-item report is the output.
public struct ReplicateAction: WorkflowAction {
    let registries: Registries
    let stateDirectory: String?
    public init(registries: Registries, stateDirectory: String? = nil) {
        self.registries = registries
        self.stateDirectory = stateDirectory
    }
    public let manifest = ActionManifest(
        name: "replicate", version: "1.0.0", description: "Replicates the artifacts a replication file declares, verified, with their attachments.",
        inputSchema: schema(["file"], [("file", "string"), ("state", "boolean")]),
        outputSchema: schema(["copied", "unchanged", "items"], [("copied", "integer"), ("unchanged", "integer"), ("items", "array")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        let file: ReplicationFile
        do { file = try ReplicationFile.load(path: context.resolve(try inputs.string("file"))) } catch { throw ActionFailure(.permanent, "\(error)") }
        var state: (any ReplicationStateStore)?
        var keepState = true
        if case .bool(false)? = inputs["state"] { keepState = false }
        if let dir = stateDirectory, keepState { state = try StateStore(path: dir + "/replication.sqlite") }
        // The file's registries section applies here exactly as in `warden replicate`.
        let configured: Registries
        do {
            configured = try Registries(configuration: try ReplicationJob.configuration(for: file, base: registries.configuration))
        } catch { throw classify(error) }
        let reports = await ReplicationJob.run(file, registries: configured, state: state).items
        var items_: [Value] = []
        for r in reports {
            context.log("\(r.action.rawValue) \(r.source) → \(r.target)\(r.reasons.isEmpty ? "" : ": " + r.reasons.joined(separator: "; "))")
            items_.append(
                .object([
                    ("source", .string(r.source)), ("target", .string(r.target)), ("action", .string(r.action.rawValue)),
                    ("sourceDigest", r.sourceDigest.map(Value.string) ?? .null), ("reasons", .list(r.reasons.map(Value.string))),
                ]))
        }
        let failed = reports.filter { $0.action == .failed }
        if !failed.isEmpty {
            throw ActionFailure(
                .retryable,
                "\(failed.count) items failed: " + failed.map { "\($0.source): \($0.reasons.joined(separator: "; "))" }.joined(separator: "; "))
        }
        let refused = reports.filter { $0.action == .refused }
        if !refused.isEmpty {
            throw ActionFailure(
                .permanent,
                "\(refused.count) items refused: " + refused.map { "\($0.source): \($0.reasons.joined(separator: "; "))" }.joined(separator: "; "))
        }
        return ActionResult(
            outputs: .object([
                ("copied", .int(Int64(reports.filter { $0.action == .copied }.count))),
                ("unchanged", .int(Int64(reports.filter { $0.action == .unchanged }.count))), ("items", .list(items_)),
            ]))
    }
}
