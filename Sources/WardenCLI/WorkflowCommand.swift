import ArgumentParser
import CEL
import CommandSupport
import Foundation
import Trust
import WardenActions
import Workflow

struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow", abstract: "Check workflow definitions and draw their step graph (docs/workflows.md).",
        subcommands: [Validate.self, Graph.self, Instantiate.self, Publish.self])

    /// A template's workflow text for `--param NAME=VALUE` pairs.
    static func instantiate(_ text: String, file: String, params: [String]) throws -> String {
        let template = try WorkflowTemplate.parse(text, file: file)
        var values: [String: Value] = [:]
        for pair in params {
            guard let eq = pair.firstIndex(of: "=") else { throw WorkflowError("--param \(pair): expected NAME=VALUE") }
            values[String(pair[..<eq])] = try template.coerce(String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
        }
        return try template.instantiate(values)
    }

    struct Instantiate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "instantiate",
            abstract: "Write the workflow a WorkflowTemplate gives for its parameters (checked, then validated as a workflow).")
        @Argument(help: "WorkflowTemplate YAML file.") var file: String
        @Option(name: .long, help: "A parameter NAME=VALUE (typed as declared; lists and maps as JSON); repeatable.") var param: [String] = []
        @Option(name: [.short, .long], help: "Write the workflow to this file instead of standard output.") var outputFile: String?
        @Option(name: .long, help: "Directory of action manifests the workflow may use; repeatable.") var actions: [String] = []

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("error: \(file): cannot read the file")
                throw ExitCode(1)
            }
            let text: String
            do {
                text = try WorkflowCommand.instantiate(String(decoding: data, as: UTF8.self), file: file, params: param)
                _ = try WorkflowCommand.parse(text, file: file + " (instantiated)", actions: actions)
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            if let outputFile {
                try Data(text.utf8).write(to: URL(fileURLWithPath: outputFile), options: .atomic)
            } else {
                print(text, terminator: "")
            }
        }
    }

    static func load(_ file: String, actions: [String], params: [String] = []) throws -> WorkflowDefinition {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("error: \(file): cannot read the file")
            throw ExitCode(1)
        }
        do {
            var text = String(decoding: data, as: UTF8.self)
            var name = file
            if WorkflowTemplate.isTemplate(text) {
                // A template validates with the given parameters and the defaults (missing ones are reported).
                text = try instantiate(text, file: file, params: params)
                name += " (instantiated)"
            }
            return try parse(text, file: name, actions: actions)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    static func parse(_ text: String, file: String, actions: [String]) throws -> WorkflowDefinition {
        do {
            var versions = WorkflowDefinition.actions
            for dir in actions {
                var catalog = ActionCatalog()
                try catalog.load(directory: dir)
                versions.merge(catalog.versions) { Array(Set($0 + $1)).sorted() }
            }
            return try WorkflowDefinition.parse(text, file: file, actions: versions)
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Read a workflow and report the first error with its line and column (keys, actions and versions, cycles, references, CEL).")
        @Argument(help: "Workflow YAML file.") var file: String
        @Option(name: .long, help: "Directory of action manifests the workflow may use; repeatable.") var actions: [String] = []
        @Option(name: .long, help: "A template parameter NAME=VALUE, when FILE is a WorkflowTemplate; repeatable.") var param: [String] = []

        func run() async throws {
            let def = try WorkflowCommand.load(file, actions: actions, params: param)
            let levels = try def.levels()
            print("\(file): workflow \"\(def.name)\", \(def.steps.count) steps, \(def.inputs.count) inputs, \(levels.count) levels")
            for (i, level) in levels.enumerated() { print("  \(i + 1): \(level.joined(separator: ", "))") }
        }
    }

    struct Graph: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "graph", abstract: "Print the step graph as a Mermaid flowchart or Graphviz DOT.")
        @Argument(help: "Workflow YAML file.") var file: String
        @Option(name: .long, help: "mermaid or dot.") var format = "mermaid"
        @Option(name: .long, help: "Directory of action manifests the workflow may use; repeatable.") var actions: [String] = []

        func validate() throws {
            guard ["mermaid", "dot"].contains(format) else { throw ValidationError("--format must be mermaid or dot") }
        }

        func run() async throws {
            print(try WorkflowCommand.load(file, actions: actions).graph(format: format), terminator: "")
        }
    }
}

extension WorkflowCommand {
    /// `warden workflow publish FILE --server URL`: the server validates, hashes the canonical form and keeps the version.
    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish", abstract: "Publish a workflow (or template) to a control plane's catalogue; identical content keeps its version.")
        @Argument(help: "Workflow or WorkflowTemplate YAML file.") var file: String
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            guard let url = serverOptions.url else {
                printError("error: publish needs a server: --server URL or WARDEN_SERVER")
                throw ExitCode(64)
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("error: \(file): cannot read the file")
                throw ExitCode(1)
            }
            let collection = WorkflowTemplate.isTemplate(String(decoding: data, as: UTF8.self)) ? "templates" : "workflows"
            let answer = try await ServerClient(base: url).send(
                "POST", "/api/v1/workspaces/\(serverOptions.workspace)/\(collection)", body: data, contentType: "application/yaml")
            if global.output == .json { return print(String(decoding: answer, as: UTF8.self)) }
            let object = (try? JSONSerialization.jsonObject(with: answer)) as? [String: Any] ?? [:]
            print("\(object["kind"] ?? "workflow") \(object["name"] ?? "?")@\(object["version"] ?? "?") \(object["digest"] ?? "")")
        }
    }
}
