import ArgumentParser
import Foundation
import Trust
import Workflow

struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow", abstract: "Check workflow definitions and draw their step graph (docs/workflows.md).",
        subcommands: [Validate.self, Graph.self])

    static func load(_ file: String, actions: [String]) throws -> WorkflowDefinition {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("error: \(file): cannot read the file")
            throw ExitCode(1)
        }
        do {
            var versions = WorkflowDefinition.actions
            for dir in actions {
                var catalog = ActionCatalog()
                try catalog.load(directory: dir)
                versions.merge(catalog.versions) { Array(Set($0 + $1)).sorted() }
            }
            return try WorkflowDefinition.parse(String(decoding: data, as: UTF8.self), file: file, actions: versions)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a workflow and report the first error with its line and column (keys, actions and versions, cycles, references, CEL).")
        @Argument(help: "Workflow YAML file.") var file: String
        @Option(name: .long, help: "Directory of action manifests the workflow may use; repeatable.") var actions: [String] = []

        func run() async throws {
            let def = try WorkflowCommand.load(file, actions: actions)
            let levels = try def.levels()
            print("\(file): workflow \"\(def.name)\", \(def.steps.count) steps, \(def.inputs.count) inputs, \(levels.count) levels")
            for (i, level) in levels.enumerated() { print("  \(i + 1): \(level.joined(separator: ", "))") }
        }
    }

    struct Graph: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the step graph as a Mermaid flowchart or Graphviz DOT.")
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
