import ArgumentParser
import Documents
import Foundation
import Logging
import OCI
import OCIRegistry
import Trust
import WardenApp
import Workflow

@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Supply-chain security for OCI artifacts: copy, verify and guard what you run.",
        discussion: """
            Locations are registry references (registry/repo:tag, registry/repo@sha256:...) or OCI image layouts \
            (oci-layout:PATH[:TAG|@DIGEST]).

            Exit codes: 0 success; 1 failure; 2 content integrity failure (digest or size mismatch); \
            3 not found; 4 authentication or authorization failure (or a wrong key password); \
            10 verify: no signature; 11 verify: signatures found, none valid; 12 verify: refused by the \
            trust policy; 13 replicate: some artifacts refused by verification; 64 usage error.
            """,
        version: "0.1.0",
        subcommands: [
            CopyCommand.self, InspectCommand.self, TagsCommand.self, KeyCommand.self, SignCommand.self, VerifyCommand.self, AttestCommand.self,
            VerifyAttestationCommand.self, PolicyCommand.self, ReplicateCommand.self, CELCommand.self, DigestCommand.self,
            CatalogCommand.self, SBOMCommand.self, WorkflowCommand.self, RunCommand.self, RunsCommand.self, ActionsCommand.self,
            DemoCommand.self,
            TestdataCommand.self, BenchIngestCommand.self, BenchPolicyCommand.self, BenchWorkflowCommand.self, TestProxyCommand.self,
            ReapCommand.self,
        ]
    )
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json

    /// `table` is accepted for `text`: the human form, which is a table where a command prints one.
    init?(argument: String) {
        self.init(rawValue: argument == "table" ? "text" : argument)
    }
}

/// Flags every command that talks to registries shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .long, help: "Use plain HTTP for every registry (loopback registries use it by default).")
    var plainHTTP = false

    @Option(name: .long, help: "Use plain HTTP for this registry host (repeatable).")
    var insecureRegistry: [String] = []

    @Option(name: .long, help: "PEM file of CA certificates to trust for registry TLS.")
    var caFile: String?

    @Flag(name: .long, help: "Send credentials to a Bearer token realm even when it is plain HTTP on another, non-loopback host.")
    var insecureTokenRealm = false

    @Option(name: .long, help: "Credentials file (docker config.json or containers auth.json format).")
    var authfile: String?

    @Option(name: .long, help: "Output format: text (or table) or json.")
    var output: OutputFormat = .text

    @Flag(name: .shortAndLong, help: "Log each HTTP exchange (method, URL, status, time; never credentials).")
    var verbose = false

    func logger() -> Logger {
        var logger = Logger(label: "warden")
        logger.logLevel = verbose ? .debug : .warning
        return logger
    }

    var registrySettings: RegistrySettings {
        RegistrySettings(
            plainHTTP: plainHTTP, insecureRegistries: insecureRegistry, caFile: caFile, insecureTokenRealm: insecureTokenRealm, authfile: authfile,
            verbose: verbose)
    }

    func registryConfiguration(credentials: [String: Credentials] = [:]) -> RegistryConfiguration {
        registrySettings.configuration(credentials: credentials)
    }
}

/// Bootstraps logging once, runs `body` with registries, and maps errors to documented exit codes.
func withRegistries<T>(
    _ options: GlobalOptions, credentials: [String: Credentials] = [:], configuration: RegistryConfiguration? = nil,
    _ body: (Registries) async throws -> T
) async throws -> T {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = options.verbose ? .debug : .warning
        return h
    }
    let configuration = configuration ?? options.registryConfiguration(credentials: credentials)
    let registries = try Registries(configuration: configuration, logger: options.logger())
    // No awaited shutdown: the process ends right after the command, which closes every connection; waiting
    // for the pool to close them one by one only delays the exit. `Registries.deinit` starts the shutdown.
    do {
        return try await body(registries)
    } catch {
        throw failure(for: error)
    }
}

/// The documented exit code for `error` (`ErrorDisposition`, the one table every surface uses), its reason printed.
func failure(for error: Error) -> Error {
    if error is ExitCode || error is CleanExit { return error }
    let d = ErrorDisposition(error)
    printError("error: \(d.reason)")
    return ExitCode(d.exitCode)
}

func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// One JSON document; times as RFC 3339 strings.
func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try RFC3339.encoder().encode(value), as: UTF8.self))
}

/// A location's store and the tag or digest inside it.
func open(_ location: Location, _ registries: Registries, create: Bool) throws -> (any ContentStore, String?) {
    let store = try registries.store(for: location, create: create)
    return (store, location.digest?.description ?? location.tag)
}

func parseLocation(_ s: String) throws -> Location {
    do { return try Location(parsing: s) } catch let e as OCIError { throw ValidationError(e.reason) }
}

func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024, i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}

/// The process runtime's reaper (`Reaper`): not for people to type.
struct ReapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: Reaper.command, shouldDisplay: false)
    @Argument(parsing: .captureForPassthrough) var command: [String] = []
    func run() throws {
        Reaper.run(command.first == "--" ? Array(command.dropFirst()) : command)
    }
}
