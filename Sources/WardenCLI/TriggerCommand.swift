import ArgumentParser
import CEL
import CommandSupport
import Documents
import Foundation
import WardenApp

/// `warden trigger …`: the triggers of a server's workspace, their dispatches and the dead-letter queue
/// (docs/triggers.md): a server's (`--server URL` or `WARDEN_SERVER`), or those of its state directory (`--state DIR`)
/// with or without the server running — what is published or fired there is dispatched by the server.
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger", abstract: "A server's triggers: list, show, publish, fire, dispatches and the dead-letter queue.",
        subcommands: [Check.self, List.self, Show.self, Publish.self, Fire.self, Dispatches.self, Replay.self, Discard.self, Events.self])

    static func client(_ options: ServerOptions) throws -> (ServerClient, String) {
        guard let url = options.url else {
            printError(
                "error: triggers live in a server: --server URL or WARDEN_SERVER, or its state directory: --state DIR")
            throw ExitCode(64)
        }
        return (ServerClient(base: url), "/api/v1/workspaces/\(options.workspace)")
    }

    /// `--state DIR`: the triggers, dispatches, events and dead-letter queue of a server's state directory, read and
    /// changed without the server (a fired event or a replayed dispatch is started by the server when it runs).
    struct LocalOptions: ParsableArguments {
        @Option(name: .long, help: "A server's state directory, used in place of --server (the server need not run).") var state: String?

        /// Who a local change is audited as.
        static var caller: ControlPlane.Caller { ControlPlane.Caller(Principal(name: "local:\(ProcessInfo.processInfo.userName)", method: "local")) }

        func plane() throws -> TriggerPlane? {
            guard let state else { return nil }
            guard FileManager.default.fileExists(atPath: StateLayout(state).workflowsDatabase) else {
                printError("error: \(StateLayout(state).workflowsDatabase) does not exist")
                throw ExitCode(3)
            }
            return TriggerPlane(control: try AdminStore.open(state), receivers: [])
        }
    }

    /// Runs a local job, mapping its `ControlError` to a message and an exit status.
    static func local<T: Encodable>(_ body: () async throws -> T) async throws -> Data {
        do {
            return try RFC3339.encoder(pretty: false).encode(try await body())
        } catch let e as ControlError {
            printError("error: \(e.reason)")
            throw ExitCode(e.code == .notFound ? 3 : 1)
        }
    }

    /// Prints an answer: as it came with `--output json`, else the fields `line` picks from each item of `key`.
    static func show(_ data: Data, _ global: GlobalOptions, key: String?, line: ([String: Any]) -> String) {
        if global.output == .json { return print(String(decoding: data, as: UTF8.self)) }
        let object = try? JSONSerialization.jsonObject(with: data)
        let items: [[String: Any]] =
            if let key { (object as? [String: Any])?[key] as? [[String: Any]] ?? [] } else {
                (object as? [[String: Any]]) ?? [(object as? [String: Any]) ?? [:]]
            }
        for item in items { print(line(item)) }
    }

    /// Needs no server: the document as publishing reads it, and with `--event` what it makes of an event.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a trigger document (strictly, as publishing does); with --event, whether it selects that event and the inputs it gives.",
            discussion: """
                The event is JSON, as the `event` of an entry of GET /api/v1/events: {"id", "kind", "source": {"receiver", \
                "format", "vendor"}, "subject": {"registry", "repository", "tag", "digest"}, "data"}. Exit status 0: valid \
                (and, with --event, selected); 1: the event is not selected; 65: the document or the event is invalid.
                """)
        @Argument(help: "Trigger YAML file.") var file: String
        @Option(name: .long, help: "A normalised event, JSON (a file, or - for standard input).") var event: String?
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let text = try readTextFile(file, status: 66)
            do {
                guard let event else {
                    let (doc, _) = try TriggerPlane.parse(text, file: file)
                    print(global.output == .json ? Value.object([("valid", .bool(true)), ("name", .string(doc.name))]).jsonText() : "\(file): valid")
                    return
                }
                let bytes = event == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: event)
                guard let bytes else {
                    printError("error: \(event): cannot read the file")
                    throw ExitCode(66)
                }
                let (id, selected, inputs) = try TriggerPlane.check(text, file: file, event: bytes, eventName: event)
                if global.output == .json {
                    print(
                        Value.object([
                            ("selected", .bool(selected)), ("inputs", .object(inputs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })),
                        ]).jsonText())
                } else if selected {
                    print("selected: event \(id)")
                    for (k, v) in inputs.sorted(by: { $0.key < $1.key }) { print("  \(k): \(v.jsonText())") }
                } else {
                    print("not selected: event \(id)")
                }
                if !selected { throw ExitCode(1) }
            } catch let e as YAMLError {
                printError("error: \(e)")
                throw ExitCode(65)
            } catch let e as ControlError {
                printError("error: \(e.reason)")
                throw ExitCode(65)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The workspace's triggers (latest versions).")
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let data: Data
            if let plane = try local.plane() {
                data = try await TriggerCommand.local {
                    try await plane.control.catalog(.trigger, workspace: serverOptions.workspace, name: nil).map { CatalogView($0) }
                }
            } else {
                let (client, base) = try TriggerCommand.client(serverOptions)
                data = try await client.send("GET", base + "/triggers", body: nil)
            }
            TriggerCommand.show(data, global, key: nil) {
                "\($0["name"] ?? "?")@\($0["version"] ?? "?") \($0["deprecated"] as? Bool == true ? "deprecated" : "")"
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A trigger's latest version, its document included.")
        @Argument(help: "The trigger's name.") var name: String
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let data: Data
            if let plane = try local.plane() {
                data = try await TriggerCommand.local {
                    CatalogView(try await plane.control.entry(.trigger, workspace: serverOptions.workspace, name: name, version: nil), content: true)
                }
            } else {
                let (client, base) = try TriggerCommand.client(serverOptions)
                let versions = try await client.send("GET", base + "/triggers/\(ServerClient.query(name))", body: nil)
                let list = (try? JSONSerialization.jsonObject(with: versions)) as? [[String: Any]] ?? []
                guard let last = list.last?["version"] else { throw ExitCode(3) }
                data = try await client.send("GET", base + "/triggers/\(ServerClient.query(name))/versions/\(last)", body: nil)
            }
            TriggerCommand.show(data, global, key: nil) {
                "\($0["name"] ?? "?")@\($0["version"] ?? "?") \($0["digest"] ?? "")\n\($0["content"] ?? "")"
            }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a trigger document (kind: Trigger); identical content keeps its version.")
        @Argument(help: "Trigger YAML file.") var file: String
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let text = try readTextFile(file)
            let data: Data
            if let plane = try local.plane() {
                data = try await TriggerCommand.local {
                    CatalogView(
                        try await plane.control.publish(.trigger, workspace: serverOptions.workspace, text: text, caller: LocalOptions.caller).entry)
                }
            } else {
                let (client, base) = try TriggerCommand.client(serverOptions)
                data = try await client.send("POST", base + "/triggers", body: Data(text.utf8), contentType: "application/yaml")
            }
            TriggerCommand.show(data, global, key: nil) { "trigger \($0["name"] ?? "?")@\($0["version"] ?? "?") \($0["digest"] ?? "")" }
        }
    }

    struct Fire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fire a trigger by hand (a manual.fire event for it alone).")
        @Argument(help: "The trigger's name.") var name: String
        @Option(name: .long, help: "The event's id: the same id within the trigger's dedup window fires once.") var id: String?
        @Option(name: .long, help: "The event's data, JSON.") var data: String?
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            var fields: [(String, Value)] = []
            var value: Value = .object([])
            if let data {
                do { value = try Value.parseJSON(data) } catch {
                    printError("error: --data is not JSON: \(error)")
                    throw ExitCode(1)
                }
                fields.append(("data", value))
            }
            if let id { fields.append(("id", .string(id))) }
            let answer: Data
            if let plane = try local.plane() {
                answer = try await TriggerCommand.local {
                    try await plane.fire(workspace: serverOptions.workspace, trigger: name, data: value, id: id, caller: LocalOptions.caller)
                }
            } else {
                let (client, base) = try TriggerCommand.client(serverOptions)
                answer = try await client.send(
                    "POST", base + "/triggers/\(ServerClient.query(name))/fire", body: Data(Value.object(fields).jsonText().utf8))
            }
            TriggerCommand.show(answer, global, key: nil) { o in
                let dispatched = (o["dispatched"] as? [String]) ?? []
                return "event \(o["id"] ?? "?") " + (dispatched.isEmpty ? "deduplicated (fired within the window already)" : "dispatched")
            }
        }
    }

    struct Dispatches: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dispatches of events to the workspace's triggers, newest first; --dead for the dead-letter queue.")
        @Flag(name: .long, help: "Only dead-lettered dispatches.") var dead = false
        @Option(name: .long, help: "Only this trigger's.") var trigger: String?
        @Option(name: .long, help: "At most this many.") var limit = 50
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let data: Data
            if let plane = try local.plane() {
                data = try await TriggerCommand.local {
                    try await plane.dispatches(
                        workspace: serverOptions.workspace, statuses: dead ? [.dead] : nil, trigger: trigger, limit: limit, before: nil)
                }
            } else {
                let (client, base) = try TriggerCommand.client(serverOptions)
                var query = "limit=\(limit)"
                if dead { query += "&status=dead" }
                if let trigger { query += "&trigger=\(ServerClient.query(trigger))" }
                data = try await client.send("GET", base + "/dispatches?" + query, body: nil)
            }
            TriggerCommand.show(data, global, key: "dispatches") { d in
                "\(d["key"] ?? "?") \(d["trigger"] ?? "?") \(d["status"] ?? "?") attempts \(d["attempts"] ?? 0)"
                    + (d["run"].map { " run \($0)" } ?? "") + (d["error"].map { " error: \($0)" } ?? "")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replay a dead-lettered dispatch (the same key: the same run if one was made).")
        @Argument(help: "The dispatch's key.") var key: String
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await TriggerCommand.settle(key, "replay", local, serverOptions, global) }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Discard a dead-lettered dispatch.")
        @Argument(help: "The dispatch's key.") var key: String
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await TriggerCommand.settle(key, "discard", local, serverOptions, global) }
    }

    static func settle(_ key: String, _ verb: String, _ local: LocalOptions, _ options: ServerOptions, _ global: GlobalOptions) async throws {
        let data: Data
        if let plane = try local.plane() {
            data = try await TriggerCommand.local {
                DispatchView(
                    try await plane.settleDeadLetter(workspace: options.workspace, key: key, replay: verb == "replay", caller: LocalOptions.caller))
            }
        } else {
            let (client, base) = try client(options)
            data = try await client.send("POST", base + "/dispatches/\(ServerClient.query(key))/\(verb)", body: nil)
        }
        show(data, global, key: nil) { "\($0["key"] ?? "?") \($0["status"] ?? "?")" }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Received events, newest first (admins of every workspace).")
        @Option(name: .long, help: "Only this receiver's.") var receiver: String?
        @Option(name: .long, help: "At most this many.") var limit = 50
        @OptionGroup var local: LocalOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let data: Data
            if let plane = try local.plane() {
                data = try await TriggerCommand.local { try await plane.events(receiver: receiver, before: nil, cursor: nil, limit: limit) }
            } else {
                let (client, _) = try TriggerCommand.client(serverOptions)
                var query = "limit=\(limit)"
                if let receiver { query += "&receiver=\(ServerClient.query(receiver))" }
                data = try await client.send("GET", "/api/v1/events?" + query, body: nil)
            }
            show(data, global, key: "events") { "\($0["receivedAt"] ?? "?") \($0["receiver"] ?? "?") \($0["kind"] ?? "?") \($0["subject"] ?? "?")" }
        }
    }
}
