import AsyncHTTPClient
import Foundation
import OCITesting
import Testing

@testable import WardenServer

#if canImport(Glibc)
    import Glibc
#endif

/// The real `warden serve` (the binary built in `.build`), checked by schemathesis (PyPI, installed by
/// scripts/test.sh) against the OpenAPI document it serves: no 5xx, every status documented, every body as the
/// document says.
@Suite struct SchemathesisTests {
    /// The checks schemathesis runs on every answer.
    static let checks = [
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
        "response_headers_conformance",
    ]

    @Test(.timeLimit(.minutes(10))) func theServerKeepsItsDocument() async throws {
        let schemathesis = try await runProgram("/usr/bin/env", ["schemathesis", "--version"])
        try #require(schemathesis.succeeded, "schemathesis is missing: run scripts/test.sh (or pip install schemathesis)")

        try await withTemporaryDirectory(prefix: "warden-schemathesis") { dir in
            // The write limit (120 a minute by default) would answer most of the generated writes with 429.
            try Data("limits: {writesPerMinute: 100000}\n".utf8).write(to: URL(fileURLWithPath: dir + "/config.yaml"))
            let server = try await ServedWarden.start(state: dir + "/state", config: dir + "/config.yaml", logs: dir)
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            var failure: (any Error)?
            do { try await Self.check(server, client, dir: dir) } catch { failure = error }
            await server.stop()
            try await client.shutdown()
            if let failure { throw failure }
        }
    }

    /// Something of every kind to find, all named `hello` (and a workflow `gate` that waits for an approval).
    static let documents = [
        (
            "workflows",
            """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: hello
            inputs:
              who: {type: string, default: world}
            steps:
              - id: greet
                uses: noop@v1
                with: {who: "${{ inputs.who }}"}
            """
        ),
        (
            "workflows",
            """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: gate
            steps:
              - id: gate
                approval: {required: 1}
              - id: after
                needs: [gate]
                uses: noop@v1
            """
        ),
        (
            "templates",
            """
            apiVersion: warden.dev/v1
            kind: WorkflowTemplate
            name: hello
            parameters:
              team: {type: string, default: core}
            workflow:
              name: hello-[[ team ]]
              steps:
                - id: one
                  uses: noop@v1
            """
        ),
        (
            "policies",
            """
            apiVersion: warden.dev/v1
            kind: Policy
            name: hello
            rules:
              - name: small
                deny: image.layers > 50
            """
        ),
        (
            "trust-policies?name=hello",
            """
            apiVersion: warden.dev/v1
            kind: TrustPolicy
            policies:
              - name: anything
                images: ["**"]
                allowUnsigned: true
            """
        ),
        (
            "replications?name=hello",
            """
            apiVersion: warden.dev/v1
            kind: Replication
            artifacts:
              - {source: upstream.example/app, target: mirror.example/app}
            """
        ),
    ]

    static func check(_ server: ServedWarden, _ client: HTTPClient, dir: String) async throws {
        for (collection, text) in documents {
            let (status, answer) = try await server.call(
                client, "POST", "/api/v1/workspaces/default/" + collection, body: Data(text.utf8), type: "application/yaml")
            try #require(status == 201, "publishing to \(collection): \(answer)")
        }
        func start(_ workflow: String) async throws -> String {
            let (status, run) = try await server.call(
                client, "POST", "/api/v1/workspaces/default/runs",
                body: Data(#"{"workflow": "\#(workflow)", "labels": {"suite": "schemathesis"}}"#.utf8))
            try #require(status == 201, "\(run)")
            return try #require(run["id"] as? String)
        }
        // A finished run and one that waits for its approval.
        let finished = try await start("hello")
        let waiting = try await start("gate")
        for (id, status) in [(finished, "succeeded"), (waiting, "waiting")] {
            try await waitFor("run \(id) to be \(status)", timeout: .seconds(60), poll: .milliseconds(100)) {
                try await server.call(client, "GET", "/api/v1/workspaces/default/runs/\(id)").1["status"] as? String == status
            }
        }

        // Path parameters and the workflow to start are mostly what exists, sometimes anything. The events of the
        // waiting run never end: they are read for 3 s or 5 events.
        let configuration = """
            [dictionaries.workspace]
            values = ["default"]
            [dictionaries.run]
            values = ["\(finished)", "\(waiting)"]
            [dictionaries.name]
            values = ["hello"]
            [dictionaries.step]
            values = ["gate"]
            [dictionaries.workflow]
            values = ["hello", "gate"]
            [parameters]
            "path.workspace" = { dictionary = "workspace", probability = 0.9 }
            "path.run" = { dictionary = "run", probability = 0.7 }
            "path.name" = { dictionary = "name", probability = 0.6 }
            "path.step" = { dictionary = "step", probability = 0.5 }
            "body.workflow" = { dictionary = "workflow", probability = 0.6 }

            [[operations]]
            include-operation-id = "streamRunEvents"
            request-timeout = 3
            max-stream-events = 5
            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: dir + "/schemathesis.toml"))
        // One worker: with two, Hypothesis (under Python 3.11) sometimes fails in `ast.parse` ("AST constructor
        // recursion depth mismatch"), which schemathesis reports as errors of its own.
        func schemathesis(_ selection: [String], examples: Int) async throws -> ProcessResult {
            try await runProgram(
                "/usr/bin/env",
                [
                    "schemathesis", "--config-file", dir + "/schemathesis.toml", "run", server.base + "/api/v1/openapi.json", "--url", server.base,
                    "--header", "Authorization: Bearer \(server.token)", "--checks", Self.checks.joined(separator: ","),
                    "--max-examples", String(examples), "--workers", "1", "--request-timeout", "20", "--generation-database", "none",
                    "--no-color",
                ] + selection, environment: ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 },
                currentDirectory: dir)
        }
        // Every operation but revoking a token: stateful testing learns token ids from the answers and would
        // revoke the one it calls with. Then revocation alone, last.
        let all = try await schemathesis(["--exclude-operation-id", "revokeToken"], examples: 25)
        #expect(all.succeeded, "schemathesis found problems:\n\(all.output)\(all.errorOutput)\(server.failures())")
        // Every operation of the document but the excluded one and the document's own (schemathesis leaves out the
        // operation that serves the schema).
        let operations = OpenAPIDocument.json.components(separatedBy: "\"operationId\"").count - 1
        #expect(all.output.contains("Tested: \(operations - 2)"), "\(all.output)")
        let revoke = try await schemathesis(["--include-operation-id", "revokeToken", "--phases", "examples,coverage,fuzzing"], examples: 8)
        #expect(revoke.succeeded, "schemathesis found problems in revokeToken:\n\(revoke.output)\(revoke.errorOutput)\(server.failures())")
    }
}

/// `warden serve --initialize` on a fresh state directory and port 0, its admin token and address read from its
/// standard output (standard error, the request log, goes to a file).
final class ServedWarden: @unchecked Sendable {
    let process: Process
    let base: String
    let token: String
    let errorLog: String

    private init(process: Process, base: String, token: String, errorLog: String) {
        self.process = process
        self.base = base
        self.token = token
        self.errorLog = errorLog
    }

    static func start(state: String, config: String, logs: String) async throws -> ServedWarden {
        let out = logs + "/serve.out"
        let err = logs + "/serve.err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try wardenExecutable())
        process.arguments = ["serve", "--initialize", "--listen", "127.0.0.1:0", "--state", state, "--config", config]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var base = ""
        var token = ""
        do {
            try await waitFor("warden serve to listen", timeout: .seconds(120), poll: .milliseconds(50)) {
                let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                for line in text.split(separator: "\n") {
                    if let r = line.range(of: "keep it secret): ") { token = String(line[r.upperBound...]) }
                    if let r = line.range(of: "listening on ") { base = String(line[r.upperBound...]) }
                }
                guard process.isRunning else {
                    throw HarnessError(.peerDidNotStart, "warden serve exited: \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
                }
                return !base.isEmpty && token.hasPrefix("wdn_")
            }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
        return ServedWarden(process: process, base: base, token: token, errorLog: err)
    }

    /// Calls the API as the admin; the status and the JSON object answered (empty when it is not one).
    func call(_ client: HTTPClient, _ method: String, _ path: String, body: Data? = nil, type: String = "application/json") async throws -> (
        Int, [String: Any]
    ) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: type)
            request.body = .bytes(body)
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any]
        return (Int(response.status.code), object ?? [:])
    }

    /// The server's log lines about requests that failed (5xx), for a failure's message.
    func failures() -> String {
        let log = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n").filter { $0.contains("request failed") }
        return lines.isEmpty ? "" : "\nthe server's log of failed requests:\n" + lines.prefix(20).joined(separator: "\n")
    }

    /// SIGTERM, and SIGKILL when it has not exited within 15 s.
    func stop() async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if (try? await holdsWithin(.seconds(15), poll: .milliseconds(50), { !process.isRunning })) != true {
            kill(process.processIdentifier, SIGKILL)
        }
    }
}
