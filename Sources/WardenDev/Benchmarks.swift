import ArgumentParser
import CEL
import CommandSupport
import Documents
import Foundation
import Policy
import Storage
import Workflow

struct BenchPolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-policy", abstract: "Benchmark policy evaluation.")
    @Option(name: .long) var policy: String
    @Option(name: .long) var input: String
    @Option(name: .long) var iterations = 10_000
    @Option(name: .long) var parses = 1_000

    struct Output: Encodable {
        var rules: Int
        var iterations: Int
        var decision: String
        var fired: [String]
        var parseSecondsPerPolicy: Double
        var inputParseSeconds: Double
        var evaluateSeconds: Double
        var evaluationsPerSecond: Double
    }

    func run() async throws {
        let text = try String(contentsOfFile: policy, encoding: .utf8)
        let clock = ContinuousClock()
        var doc = try PolicyDocument.parse(text, file: policy)
        let parseTime = try clock.measure {
            for _ in 0..<parses { doc = try PolicyDocument.parse(text, file: policy) }
        }
        var facts: Value = .null
        let inputTime = try clock.measure {
            facts = try Value.parseJSON([UInt8](FileManager.default.contents(atPath: input) ?? Data()))
        }
        var result = doc.evaluate(facts)
        let evalTime = clock.measure {
            for _ in 0..<iterations { result = doc.evaluate(facts) }
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        try printJSON(
            Output(
                rules: doc.rules.count, iterations: iterations, decision: result.decision.rawValue,
                fired: result.rules.filter { $0.outcome != .pass }.map { "\($0.name): \($0.outcome.rawValue)" + ($0.error.map { " \($0)" } ?? "") },
                parseSecondsPerPolicy: seconds(parseTime) / Double(parses), inputParseSeconds: seconds(inputTime),
                evaluateSeconds: seconds(evalTime), evaluationsPerSecond: Double(iterations) / seconds(evalTime)))
    }
}

struct BenchWorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-workflow", abstract: "Benchmark the workflow engine.")
    @Option(name: .long, help: "noop or process.") var runtime = "noop"
    @Option(name: .long) var runs = 1000
    @Option(name: .long) var parallel = 100
    @Option(name: .long) var state: String
    @Option(name: .long, help: "A workflow without inputs to run instead of the built-in 3-step one (--runtime is then ignored).")
    var definition: String?

    struct Output: Encodable {
        var runtime: String
        var runs: Int
        var succeeded: Int
        var seconds: Double
        var runsPerSecond: Double
        var journalEntries: Int
        var transitionsPerSecond: Double
        var stepLatencyP50Milliseconds: Double
        var stepLatencyP95Milliseconds: Double
        var stepLatencyP99Milliseconds: Double
    }

    func run() async throws {
        try PrivateFiles.createDirectory(state)
        let store = try SQLiteWorkflowStore(path: state + "/workflows.sqlite")
        let engine = WorkflowEngine(
            store: store, catalog: ActionCatalog([NoopAction(), ProcessAction()]),
            configuration: EngineConfiguration(stateDirectory: state, globalConcurrency: 64))
        let step =
            runtime == "process"
            ? "uses: process@v1\n    with: {command: [\"/bin/true\"]}" : "uses: noop@v1\n    with: {n: '${{ inputs.n }}'}"
        let yaml = """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: bench
            inputs:
              n: {type: int}
            steps:
              - id: a
                \(step)
              - id: b
                needs: [a]
                \(step)
              - id: c
                needs: [b]
                \(step)
            """
        let file = definition ?? state + "/bench.yaml"
        let text = try definition.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? yaml
        if definition == nil { try yaml.write(toFile: file, atomically: true, encoding: .utf8) }
        let numbered = definition == nil
        let clock = ContinuousClock()
        let start = clock.now
        let succeeded = try await withThrowingTaskGroup(of: Bool.self) { group in
            var next = 0
            var ok = 0
            func add() {
                let n = next
                next += 1
                group.addTask {
                    let run = try await engine.start(file: file, text: text, inputs: numbered ? ["n": .int(Int64(n))] : [:]).run
                    return try await engine.drive(run.id).status == "succeeded"
                }
            }
            while next < min(parallel, runs) { add() }
            for try await r in group {
                if r { ok += 1 }
                if next < runs { add() }
            }
            return ok
        }
        let seconds = (clock.now - start).seconds
        let latencies = engine.stats.latencies.sorted()
        func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000 }
        try printJSON(
            Output(
                runtime: numbered ? runtime : "definition", runs: runs, succeeded: succeeded, seconds: seconds, runsPerSecond: Double(runs) / seconds,
                journalEntries: engine.stats.entries, transitionsPerSecond: Double(engine.stats.entries) / seconds,
                stepLatencyP50Milliseconds: pct(0.5), stepLatencyP95Milliseconds: pct(0.95), stepLatencyP99Milliseconds: pct(0.99)))
    }
}
