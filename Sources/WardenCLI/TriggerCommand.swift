import ArgumentParser
import CEL
import CommandSupport
import Documents
import Foundation

/// `warden trigger …`: the triggers of a server's workspace, their dispatches and the dead-letter queue
/// (docs/triggers.md). Triggers live in a server (`--server URL` or `WARDEN_SERVER`).
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger", abstract: "A server's triggers: list, show, publish, fire, dispatches and the dead-letter queue.",
        subcommands: [List.self, Show.self, Publish.self, Fire.self, Dispatches.self, Replay.self, Discard.self, Events.self])

    static func client(_ options: ServerOptions) throws -> (ServerClient, String) {
        guard let url = options.url else {
            printError("error: triggers live in a server: --server URL or WARDEN_SERVER")
            throw ExitCode(64)
        }
        return (ServerClient(base: url), "/api/v1/workspaces/\(options.workspace)")
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

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The workspace's triggers (latest versions).")
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (client, base) = try TriggerCommand.client(serverOptions)
            let data = try await client.send("GET", base + "/triggers", body: nil)
            TriggerCommand.show(data, global, key: nil) {
                "\($0["name"] ?? "?")@\($0["version"] ?? "?") \($0["deprecated"] as? Bool == true ? "deprecated" : "")"
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A trigger's latest version, its document included.")
        @Argument(help: "The trigger's name.") var name: String
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (client, base) = try TriggerCommand.client(serverOptions)
            let versions = try await client.send("GET", base + "/triggers/\(ServerClient.query(name))", body: nil)
            let list = (try? JSONSerialization.jsonObject(with: versions)) as? [[String: Any]] ?? []
            guard let last = list.last?["version"] else { throw ExitCode(3) }
            let data = try await client.send("GET", base + "/triggers/\(ServerClient.query(name))/versions/\(last)", body: nil)
            TriggerCommand.show(data, global, key: nil) {
                "\($0["name"] ?? "?")@\($0["version"] ?? "?") \($0["digest"] ?? "")\n\($0["content"] ?? "")"
            }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a trigger document (kind: Trigger); identical content keeps its version.")
        @Argument(help: "Trigger YAML file.") var file: String
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (client, base) = try TriggerCommand.client(serverOptions)
            guard let body = FileManager.default.contents(atPath: file) else {
                printError("error: \(file): cannot read the file")
                throw ExitCode(1)
            }
            let data = try await client.send("POST", base + "/triggers", body: body, contentType: "application/yaml")
            TriggerCommand.show(data, global, key: nil) { "trigger \($0["name"] ?? "?")@\($0["version"] ?? "?") \($0["digest"] ?? "")" }
        }
    }

    struct Fire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fire a trigger by hand (a manual.fire event for it alone).")
        @Argument(help: "The trigger's name.") var name: String
        @Option(name: .long, help: "The event's id: the same id within the trigger's dedup window fires once.") var id: String?
        @Option(name: .long, help: "The event's data, JSON.") var data: String?
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (client, base) = try TriggerCommand.client(serverOptions)
            var fields: [(String, Value)] = []
            if let data {
                do { fields.append(("data", try Value.parseJSON(data))) } catch {
                    printError("error: --data is not JSON: \(error)")
                    throw ExitCode(1)
                }
            }
            if let id { fields.append(("id", .string(id))) }
            let answer = try await client.send(
                "POST", base + "/triggers/\(ServerClient.query(name))/fire", body: Data(Value.object(fields).jsonText().utf8))
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
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (client, base) = try TriggerCommand.client(serverOptions)
            var query = "limit=\(limit)"
            if dead { query += "&status=dead" }
            if let trigger { query += "&trigger=\(ServerClient.query(trigger))" }
            let data = try await client.send("GET", base + "/dispatches?" + query, body: nil)
            TriggerCommand.show(data, global, key: "dispatches") { d in
                "\(d["key"] ?? "?") \(d["trigger"] ?? "?") \(d["status"] ?? "?") attempts \(d["attempts"] ?? 0)"
                    + (d["run"].map { " run \($0)" } ?? "") + (d["error"].map { " error: \($0)" } ?? "")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replay a dead-lettered dispatch (the same key: the same run if one was made).")
        @Argument(help: "The dispatch's key.") var key: String
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await TriggerCommand.settle(key, "replay", serverOptions, global) }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Discard a dead-lettered dispatch.")
        @Argument(help: "The dispatch's key.") var key: String
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await TriggerCommand.settle(key, "discard", serverOptions, global) }
    }

    static func settle(_ key: String, _ verb: String, _ options: ServerOptions, _ global: GlobalOptions) async throws {
        let (client, base) = try client(options)
        let data = try await client.send("POST", base + "/dispatches/\(ServerClient.query(key))/\(verb)", body: nil)
        show(data, global, key: nil) { "\($0["key"] ?? "?") \($0["status"] ?? "?")" }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Received events, newest first (admins of every workspace).")
        @Option(name: .long, help: "Only this receiver's.") var receiver: String?
        @Option(name: .long, help: "At most this many.") var limit = 50
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (client, _) = try TriggerCommand.client(serverOptions)
            var query = "limit=\(limit)"
            if let receiver { query += "&receiver=\(ServerClient.query(receiver))" }
            let data = try await client.send("GET", "/api/v1/events?" + query, body: nil)
            show(data, global, key: "events") { "\($0["receivedAt"] ?? "?") \($0["receiver"] ?? "?") \($0["kind"] ?? "?") \($0["subject"] ?? "?")" }
        }
    }
}
