import ArgumentParser
import Documents
import Foundation
import Logging
import OCI
import OCIRegistry
import WardenApp

// Command-line plumbing every Warden executable shares (`warden`, `warden-dev`): the registry flags, output formats,
// error reporting through the one error table, and small parsers.

public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json

    /// `table` is accepted for `text`: the human form, which is a table where a command prints one.
    public init?(argument: String) {
        self.init(rawValue: argument == "table" ? "text" : argument)
    }
}

/// Flags every command that talks to registries shares.
public struct GlobalOptions: ParsableArguments, Sendable {
    public init() {}

    @Flag(name: .long, help: "Use plain HTTP for every registry (loopback registries use it by default).")
    public var plainHTTP = false

    @Option(name: .long, help: "Use plain HTTP for this registry host (repeatable).")
    public var insecureRegistry: [String] = []

    @Option(name: .long, help: "PEM file of CA certificates to trust for registry TLS.")
    public var caFile: String?

    @Flag(name: .long, help: "Send credentials to a Bearer token realm even when it is plain HTTP on another, non-loopback host.")
    public var insecureTokenRealm = false

    @Option(name: .long, help: "Credentials file (docker config.json or containers auth.json format).")
    public var authfile: String?

    @Option(name: .long, help: "Output format: text (or table) or json.")
    public var output: OutputFormat = .text

    @Flag(name: .shortAndLong, help: "Log each HTTP exchange (method, URL, status, time; never credentials).")
    public var verbose = false

    public func logger() -> Logger {
        var logger = Logger(label: "warden")
        logger.logLevel = verbose ? .debug : .warning
        return logger
    }

    public var registrySettings: RegistrySettings {
        RegistrySettings(
            plainHTTP: plainHTTP, insecureRegistries: insecureRegistry, caFile: caFile, insecureTokenRealm: insecureTokenRealm, authfile: authfile,
            verbose: verbose)
    }

    public func registryConfiguration(credentials: [String: Credentials] = [:]) -> RegistryConfiguration {
        registrySettings.configuration(credentials: credentials)
    }
}

/// Bootstraps logging once (`logging` makes the handlers, standard error's text lines by default), runs `body` with registries, and maps errors to documented exit codes.
public func withRegistries<T>(
    _ options: GlobalOptions, credentials: [String: Credentials] = [:], configuration: RegistryConfiguration? = nil,
    logging: (@Sendable (String) -> any LogHandler)? = nil, _ body: (Registries) async throws -> T
) async throws -> T {
    LoggingSystem.bootstrap(
        logging ?? { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = options.verbose ? .debug : .warning
            return h
        })
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
public func failure(for error: Error) -> Error {
    if error is ExitCode || error is CleanExit { return error }
    let d = ErrorDisposition(error)
    printError("error: \(d.reason)")
    return ExitCode(d.exitCode)
}

public func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// A file's text (UTF-8), or a message naming the file and `ExitCode(status)`.
public func readTextFile(_ path: String, status: Int32 = 1) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        printError("error: \(path): cannot read the file")
        throw ExitCode(status)
    }
    return String(decoding: data, as: UTF8.self)
}

/// One JSON document; times as RFC 3339 strings.
public func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try RFC3339.encoder().encode(value), as: UTF8.self))
}

/// A location's store and the reference resolved there (its digest, else its tag, else `latest`).
public func open(_ location: Location, _ registries: Registries, create: Bool) throws -> (any ContentStore, String) {
    (try registries.store(for: location, create: create), location.resolvedReference)
}

public func parseLocation(_ s: String) throws -> Location {
    do { return try Location(parsing: s) } catch let e as OCIError { throw ValidationError(e.reason) }
}

public func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024, i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}
