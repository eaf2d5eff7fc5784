import ArgumentParser
import Foundation
import Trust
import Workflow

struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow", abstract: "Check workflow definitions and draw their step graph (docs/workflows.md).",
        subcommands: [Validate.self, Graph.self])

    static func load(_ file: String) throws -> WorkflowDefinition {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("error: \(file): cannot read the file")
            throw ExitCode(1)
        }
        do { return try WorkflowDefinition.parse(String(decoding: data, as: UTF8.self), file: file) } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a workflow and report the first error with its line and column (keys, actions and versions, cycles, references, CEL).")
        @Argument(help: "Workflow YAML file.") var file: String

        func run() async throws {
            let def = try WorkflowCommand.load(file)
            let levels = try def.levels()
            print("\(file): workflow \"\(def.name)\", \(def.steps.count) steps, \(def.inputs.count) inputs, \(levels.count) levels")
            for (i, level) in levels.enumerated() { print("  \(i + 1): \(level.joined(separator: ", "))") }
        }
    }

    struct Graph: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the step graph as a Mermaid flowchart or Graphviz DOT.")
        @Argument(help: "Workflow YAML file.") var file: String
        @Option(name: .long, help: "mermaid or dot.") var format = "mermaid"

        func validate() throws {
            guard ["mermaid", "dot"].contains(format) else { throw ValidationError("--format must be mermaid or dot") }
        }

        func run() async throws {
            print(try WorkflowCommand.load(file).graph(format: format), terminator: "")
        }
    }
}
