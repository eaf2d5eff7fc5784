import ArgumentParser
import CommandSupport
import Documents
import Foundation
import Logging
import Storage
import WardenActions
import WardenApp
import WardenServer
import Workflow

/// `warden serve`: the control plane.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the control plane: the authenticated, audited HTTP API over the durable engine (docs/api.md).",
        discussion: """
            Embedded defaults: one process, the state directory's SQLite file, nothing else to install. SIGTERM or \
            SIGINT stop accepting requests, stop driving runs at their next journal entry, sign a last audit \
            checkpoint and exit; the next start resumes every unfinished run.
            """)

    @Option(name: .long, help: "Address to listen on, HOST:PORT (port 0 picks a free one and prints it).") var listen: String?
    @Option(name: .long, help: "State directory (default .warden; with --demo a new temporary one).") var state: String?
    @Option(name: .long, help: "Configuration file (YAML: listen, tls, limits, concurrency, audit, oidc, workspaces).") var config: String?
    @Option(name: .long, help: "Runs driven at once.") var concurrency: Int?
    @Option(name: .long, help: "Directory of action manifests; repeatable.") var actions: [String] = []
    @Flag(name: [.customLong("init"), .long], help: "Create the first admin token of a fresh state directory and print it once.")
    var initialize = false
    @Flag(name: .long, help: "A new state directory with example workflows, an admin token and a run waiting for approval.") var demo = false
    @Option(name: .long, help: "Log format: json (one object per line) or text.") var logFormat: String = "json"
    @OptionGroup var global: GlobalOptions

    static var customConfiguration: CommandConfiguration { configuration }

    func validate() throws {
        guard ["json", "text"].contains(logFormat) else { throw ValidationError("--log-format is json or text") }
        if let concurrency, !(1...1024).contains(concurrency) { throw ValidationError("--concurrency must be 1 to 1024") }
    }

    func run() async throws {
        var settings: ServerSettings
        do {
            settings = try config.map { try ServerSettings.load(file: $0) } ?? ServerSettings()
            if let listen { try settings.setListen(listen, what: "--listen") }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if let concurrency { settings.concurrency = concurrency }
        let root = state ?? (demo ? NSTemporaryDirectory() + "warden-demo-\(ProcessInfo.processInfo.processIdentifier)" : StateLayout.defaultRoot)
        let layout = StateLayout(root)
        let format = logFormat
        let level: Logger.Level = global.verbose ? .debug : .info
        let logging: @Sendable (String) -> any LogHandler = { label in
            if format == "json" { return JSONLogHandler.standardError(label: label, level: level) }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        try await withRegistries(global, logging: logging) { registries in
            let logger = Logger(label: "warden.serve")
            let callbacks = CallbackServer(endpoint: StandaloneCallbackListener())
            var catalog = ActionCatalog.standard(registries: registries, stateDirectory: root, callbacks: callbacks)
            for dir in actions { try catalog.load(directory: dir, callbacks: callbacks) }
            let scanners: [any ArtefactScanner]
            do {
                scanners = try ArtefactScanners.standard(
                    names: settings.compliance.scanners, registries: registries, state: layout, clamd: settings.compliance.clamd)
            } catch {
                printError("error: compliance scanners: \(error)")
                throw ExitCode(1)
            }
            let server = try ControlServer(
                settings: settings, layout: layout, catalog: catalog, logger: logger, lookup: RegistryTriggerLookup(registries: registries),
                scanners: scanners)
            if initialize || demo {
                if !demo, try await !server.store.tokens().isEmpty {
                    printError("error: \(root) already has API tokens; create another with warden admin token create --state \(root)")
                    throw ExitCode(1)
                }
                let issued = try await server.bootstrapAdmin(name: demo ? "demo-admin" : "admin")
                say("admin token (shown once, keep it secret): \(issued.secret)")
                if demo {
                    let run = try await Demo.seed(server)
                    let scheme = settings.tls == nil ? "http" : "https"
                    say(
                        """
                        state directory: \(root)
                        a run of release-gate waits for approval: \(run)
                          export WARDEN_TOKEN=\(issued.secret)
                          curl -s -H "Authorization: Bearer $WARDEN_TOKEN" \(scheme)://HOST/api/v1/workspaces/default/runs/\(run)
                          curl -s -X POST -H "Authorization: Bearer $WARDEN_TOKEN" \(scheme)://HOST/api/v1/workspaces/default/runs/\(run)/steps/gate/approve
                          curl -sN -H "Authorization: Bearer $WARDEN_TOKEN" \(scheme)://HOST/api/v1/workspaces/default/runs/\(run)/events
                        """)
                }
            }
            let scheme = settings.tls == nil ? "http" : "https"
            let host = settings.host
            try await server.run { port in
                say("listening on \(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)")
            }
        }
    }
}

/// Writes a line to standard output at once (a server's output is read while it runs).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// `warden admin`: the control plane's administration on its state directory (works while the server is stopped
/// or running: the store is shared).
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Administer a control plane's state directory.", subcommands: [Token.self])

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "API tokens: create (shown once), list, revoke.", subcommands: [Create.self, List.self, Revoke.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create an API token and print it once.")
            @Option(name: .long, help: "State directory.") var state = StateLayout.defaultRoot
            @Option(name: .long, help: "The token's name.") var name = "admin"
            @Option(name: .long, help: "The principal it authenticates as (default: the name for admins, robot:NAME otherwise).")
            var subject: String?
            @Option(name: .long, help: "WORKSPACE=ROLE (viewer, author, operator, admin; * for every workspace); repeatable. Default *=admin.")
            var role: [String] = []
            @Option(name: .long, help: "Lifetime, like 720h (default: no expiry).") var expires: String?

            func run() async throws {
                do {
                    var roles: [String: Role] = [:]
                    for r in role {
                        guard let eq = r.firstIndex(of: "=") else { throw ValidationError("--role \(r): expected WORKSPACE=ROLE") }
                        roles[String(r[..<eq])] = try Role.named(String(r[r.index(after: eq)...]))
                    }
                    if roles.isEmpty { roles["*"] = .admin }
                    var lifetime: Double?
                    if let expires {
                        guard let d = Duration.parse(expires), d > .zero else {
                            throw ValidationError("--expires \(expires): not a duration like 720h")
                        }
                        lifetime = d.seconds
                    }
                    let plane = try AdminStore.open(state)
                    let caller = ControlPlane.Caller(Principal(name: "local-admin", method: "local"))
                    if try await plane.store.workspace(RunRecord.defaultWorkspace) == nil {
                        _ = try await plane.createWorkspace(RunRecord.defaultWorkspace, caller: caller)
                    }
                    let issued = try await plane.createToken(
                        name: name, subject: subject ?? (roles["*"] == .admin ? name : nil), roles: roles, lifetime: lifetime, caller: caller)
                    print("token \(issued.record.id) for \(issued.record.subject) (shown once, keep it secret): \(issued.secret)")
                } catch let e as ControlError {
                    printError("error: \(e.reason)")
                    throw ExitCode(1)
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List API tokens (never their secrets).")
            @Option(name: .long, help: "State directory.") var state = StateLayout.defaultRoot
            func run() async throws {
                let plane = try AdminStore.open(state)
                for t in try await plane.store.tokens() {
                    let status =
                        t.revokedAt != nil ? "revoked" : t.expiresAt.map { $0 <= Date() ? "expired" : "expires \(RFC3339.string($0))" } ?? "no expiry"
                    print("\(t.id)  \(t.name)  \(t.subject)  created \(RFC3339.string(t.createdAt)) by \(t.createdBy)  \(status)")
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke an API token by id.")
            @Argument(help: "Token id (warden admin token list).") var id: String
            @Option(name: .long, help: "State directory.") var state = StateLayout.defaultRoot
            func run() async throws {
                let plane = try AdminStore.open(state)
                do {
                    try await plane.revokeToken(id: id, caller: ControlPlane.Caller(Principal(name: "local-admin", method: "local")))
                    print("revoked \(id)")
                } catch let e as ControlError {
                    printError("error: \(e.reason)")
                    throw ExitCode(3)
                }
            }
        }
    }
}

/// The control plane's jobs over a state directory, without a server.
enum AdminStore {
    static func open(_ state: String) throws -> ControlPlane {
        let layout = StateLayout(state)
        try PrivateFiles.createDirectory(layout.root)
        let store = try SQLiteWorkflowStore(path: layout.workflowsDatabase)
        let engine = WorkflowEngine(store: store, catalog: ActionCatalog(), configuration: EngineConfiguration(stateDirectory: layout.root))
        return ControlPlane(store: store, engine: engine)
    }
}

/// `warden audit`: the audit log's checks.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The control plane's audit log.", subcommands: [List.self, Verify.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Audit entries, newest first, filtered in the store (a state directory, or a server with --server).",
            discussion: "Exit codes: 0 listed; 1 a bad filter; 3 no such state directory; 4 not allowed (server).")
        @Option(name: .long, help: "State directory of a (stopped or running) server.") var state = StateLayout.defaultRoot
        @Option(name: .long, help: "Only this actor (robot:NAME, oidc:SUBJECT, …).") var actor: String?
        @Option(name: .long, help: "Only this action (authz.decision, run.start, …).") var action: String?
        @Option(name: .long, help: "Only this subject (run/ID, POST /api/v1/…).") var subject: String?
        @Option(name: .long, help: "Only entries at or after this RFC 3339 time.") var since: String?
        @Option(name: .long, help: "Only entries before this RFC 3339 time.") var until: String?
        @Option(name: .long, help: "At most this many entries (1 to 1000).") var limit = 50
        @Option(name: .long, help: "Continue after a page (the cursor the previous page printed).") var cursor: String?
        @Flag(name: .long, help: "Only the entries of --workspace (with --server: that workspace's own audit route, for its admins).")
        var workspaceOnly = false
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let page: AuditPage
            if let url = serverOptions.url {
                var items: [String] = ["limit=\(limit)"]
                for (name, value) in [
                    ("actor", actor), ("action", action), ("subject", subject), ("since", since), ("until", until), ("cursor", cursor),
                ] {
                    if let value { items.append("\(name)=\(ServerClient.query(value))") }
                }
                let path = workspaceOnly ? "/api/v1/workspaces/\(serverOptions.workspace)/audit" : "/api/v1/audit"
                page = try await ServerClient(base: url).get(path + "?" + items.joined(separator: "&"), as: AuditPage.self)
            } else {
                let layout = StateLayout(state)
                guard FileManager.default.fileExists(atPath: layout.workflowsDatabase) else {
                    printError("error: \(layout.workflowsDatabase) does not exist")
                    throw ExitCode(3)
                }
                do {
                    let q = try AuditJob.query(
                        workspace: workspaceOnly ? serverOptions.workspace : nil, actor: actor, action: action, subject: subject, since: since,
                        until: until, limit: String(limit),
                        cursor: cursor)
                    page = try await AuditJob.page(try SQLiteWorkflowStore(path: layout.workflowsDatabase), q)
                } catch {
                    printError("error: \(error)")
                    throw ExitCode(1)
                }
            }
            if global.output == .json { return try printJSON(page) }
            for e in page.entries {
                var line = "\(e.seq) \(RFC3339.string(e.at)) \(e.actor) \(e.action) \(e.subject)"
                if let d = e.decision { line += " \(d)" }
                if let w = e.workspace { line += " [\(w)]" }
                let details = e.details.value.jsonText(sortedKeys: true)
                if details != "{}" { line += " \(details)" }
                print(line)
            }
            if let next = page.next { printError("more: --cursor \(next)") }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit log's hash chain and signed checkpoints; name the first bad entry.",
            discussion: "Exit codes: 0 intact; 1 tampering found (the report says where); 3 no such state directory.")
        @Option(name: .long, help: "State directory of a (stopped or running) server.") var state = StateLayout.defaultRoot
        @Option(name: .long, help: "The server's public key file (default STATE/server-key.pub; keep a copy elsewhere).") var key: String?
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let layout = StateLayout(state)
            let report: AuditJob.Report
            if let url = serverOptions.url {
                report = try await ServerClient(base: url).get("/api/v1/audit/verify", as: AuditJob.Report.self)
                return try show(report)
            }
            guard FileManager.default.fileExists(atPath: layout.workflowsDatabase) else {
                printError("error: \(layout.workflowsDatabase) does not exist")
                throw ExitCode(3)
            }
            do {
                let store = try SQLiteWorkflowStore(path: layout.workflowsDatabase)
                report = try await AuditJob.verify(store, publicKey: try AuditJob.publicKey(file: key ?? layout.serverPublicKey))
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            try show(report)
        }

        func show(_ report: AuditJob.Report) throws {
            if global.output == .json {
                print(String(decoding: try RFC3339.encoder().encode(report), as: UTF8.self))
            } else {
                print(
                    report.ok
                        ? "audit log intact: \(report.entries) entries, \(report.checkpoints) signed checkpoints, \(report.uncheckpointed) entries after the last"
                        : "audit log TAMPERED: first bad entry \(report.firstBadEntry.map(String.init) ?? "?")")
                for p in report.problems { print("  \(p)") }
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}

/// `warden login URL`: keeps a token for a server in the credentials file (private), for the client commands.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Keep an API token for a control plane (read from standard input, never from the command line).")
    @Argument(help: "The server, like https://warden.internal:8443.") var server: String

    func run() async throws {
        let token = (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces)
        guard APIToken.looksLikeToken(token) else {
            printError("error: standard input is not a Warden API token (wdn_…)")
            throw ExitCode(64)
        }
        let url = server.hasSuffix("/") ? String(server.dropLast()) : server
        setenv("WARDEN_TOKEN", token, 1)
        _ = try await ServerClient(base: url).send("GET", "/api/v1/whoami", body: nil)
        try ServerCredentials.save(server: url, token: token)
        print("logged in to \(url); the token is in \(ServerCredentials.file)")
    }
}
