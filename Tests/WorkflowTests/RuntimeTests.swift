import CEL
import Foundation
import OCITesting
import Storage
import Testing
import Workflow

#if canImport(Glibc)
    import Glibc
#endif

/// The Python webhook receiver of Tests/Interop (HMAC checked with Python's hmac module), on a loopback port.
final class WebhookReceiver {
    let process = Process()
    let port: Int
    let log: String

    init(secret: String) throws {
        log = try makeTemporaryDirectory() + "/webhook.log"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/webhook_receiver.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, secret, log]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += byte
        }
        guard let p = Int(String(decoding: line, as: UTF8.self)) else { throw WorkflowError("the webhook receiver did not start") }
        port = p
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// The requests logged so far, as JSON objects.
    func entries() throws -> [Value] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try Value.parseJSON(String($0)) }
    }

    deinit {
        // SIGKILL: the receiver may have inherited a blocked SIGTERM from the test runner's thread.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite struct RuntimeTests {
    /// A server mounts the callback route on its own router: the URLs point at it, and what its route hands to
    /// `deliver` completes the waiting attempt — with the same signature check, once.
    @Test func aServerCanMountTheCallbackRoute() async throws {
        let callbacks = CallbackServer(endpoint: MountedCallbacks(baseURL: "https://warden.example/api/v1"))
        let (token, url) = try await callbacks.register(secret: "s3cret")
        #expect(url == "https://warden.example/api/v1/callbacks/" + token)
        let body = Array(#"{"status":"succeeded","outputs":{"ok":true}}"#.utf8)
        #expect(callbacks.deliver(token: token, body: body, signature: "sha256=00") == 401)
        #expect(callbacks.deliver(token: "unknown", body: body, signature: nil) == 404)
        #expect(callbacks.deliver(token: token, body: body, signature: webhookSignature(body, secret: "s3cret")) == 204)
        let result = try await callbacks.wait(token, timeout: .seconds(10))
        #expect(result.outputs.jsonText() == #"{"ok":true}"#)
        #expect(callbacks.deliver(token: token, body: body, signature: webhookSignature(body, secret: "s3cret")) == 410)
    }

    @Test func theHTTPRuntimeSignsRequestsAndTakesSynchronousAndCallbackResults() async throws {
        let receiver = try WebhookReceiver(secret: "s3cret")
        let h = try Harness(credentials: ["hook": "s3cret"])
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: sync
                    uses: http@v1
                    with: {url: "\(receiver.url)/sync", secret: hook, credentials: [hook], input: {image: "a@sha256:1"}}
                  - id: later
                    uses: http@v1
                    with: {url: "\(receiver.url)/async", secret: hook, credentials: [hook], callback: true, input: [1, 2]}
                  - id: flaky
                    uses: http@v1
                    with: {url: "\(receiver.url)/flaky", secret: hook, credentials: [hook]}
                    retry: {maxAttempts: 3, initialDelay: 10ms, jitter: 0}
                  - id: tell
                    uses: http/notify@v1
                    needs: [sync, later, flaky]
                    with: {url: "\(receiver.url)/notify", body: '${{ {"echo": steps.sync.outputs.echo, "tries": steps.flaky.outputs.tries} }}'}
                """)
        #expect(run.status == "succeeded", "\(run.error ?? "")")
        #expect(state.steps["sync"]?.outputs.jsonText() == #"{"echo":{"image":"a@sha256:1"},"attempt":1}"#)
        #expect(state.steps["later"]?.outputs.jsonText() == #"{"scanned":[1,2],"by":"receiver"}"#)
        #expect(state.steps["flaky"]?.outputs.jsonText() == #"{"tries":3}"# && state.steps["flaky"]?.units[0].attempt == 3)
        #expect(state.steps["tell"]?.outputs.jsonText() == #"{"status":204}"#)
        let log = try receiver.entries()
        // The receiver verified every signed request with its own HMAC implementation.
        #expect(log.filter { $0["path"] != nil && $0["path"]?.jsonText() != "\"/notify\"" }.allSatisfy { $0["valid"]?.jsonText() == "true" })
        // The callback URL is one-time: the replay got 410 Gone.
        let callback = log.first { $0["callback"] != nil }
        #expect(callback?["first"]?.jsonText() == "204" && callback?["replay"]?.jsonText() == "410")
        #expect(log.first { $0["path"]?.jsonText() == "\"/notify\"" }?["body"]?.jsonText() == #"{"echo":{"image":"a@sha256:1"},"tries":3}"#)
        #expect(log.first { $0["path"]?.jsonText() == "\"/sync\"" }?["key"]?.jsonText() == "\"\(run.id)/sync/1\"")
        // Each attempt handed the secret is audited with its start: the slot, never the value.
        let store = try #require(h.engine.store as? any ControlStore)
        let reads = try await store.auditEntries(AuditQuery(action: "credential.read", limit: 100))
        #expect(reads.count == 5 && reads.allSatisfy { $0.subject == "credential/hook" && $0.actor == "run/\(run.id)" })
        #expect(Set(reads.compactMap { try? Value.parseJSON($0.details)["step"]?.jsonText() }) == ["\"sync\"", "\"later\"", "\"flaky\""])
        #expect(!reads.contains { $0.details.contains("s3cret") })
    }

    @Test func webhookRefusalsArePermanentAndAWrongSecretIsRefused() async throws {
        let receiver = try WebhookReceiver(secret: "s3cret")
        let h = try Harness(credentials: ["hook": "s3cret", "wrong": "guess"])
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: refused
                    uses: http@v1
                    with: {url: "\(receiver.url)/reject", secret: hook, credentials: [hook]}
                    retry: {maxAttempts: 3, initialDelay: 10ms}
                    continueOnError: true
                  - id: forged
                    uses: http@v1
                    with: {url: "\(receiver.url)/sync", secret: wrong, credentials: [wrong]}
                    continueOnError: true
                """)
        #expect(run.status == "succeeded")
        #expect(state.steps["refused"]?.units[0].attempt == 1 && state.steps["refused"]?.units[0].errorClass == "permanent")
        #expect(state.steps["refused"]?.error?.contains("HTTP 422") == true)
        #expect(state.steps["forged"]?.error?.contains("HTTP 401") == true)
    }

    @Test func aProcessSeesOnlyItsDeclaredEnvironmentAndItsLimits() async throws {
        setenv("WARDEN_TEST_SECRET", "do-not-leak", 1)
        setenv("WARDEN_TEST_PASSED", "passed-on", 1)
        let h = try Harness(credentials: ["token": "t0ken"])
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: env
                    uses: process@v1
                    with:
                      command: ["python3", "-c", "import json, os, resource; print(json.dumps({'env': sorted(os.environ), 'passed': os.environ.get('WARDEN_TEST_PASSED'), 'declared': os.environ.get('MODE'), 'files': resource.getrlimit(resource.RLIMIT_NOFILE)[0], 'cwd': os.getcwd(), 'token': open(os.environ['WARDEN_CREDENTIALS'] + '/token').read()}))"]
                      env: {MODE: strict}
                      passEnv: [WARDEN_TEST_PASSED]
                      credentials: [token]
                      limits: {openFiles: 64}
                  - id: file
                    uses: process@v1
                    with:
                      command: 'cp "$WARDEN_INPUTS" "$WARDEN_OUTPUTS"; echo ignored'
                      input: {from: file}
                      output: file
                  - id: memory
                    uses: process@v1
                    with:
                      command: ["python3", "-c", "x = bytearray(512 * 1024 * 1024)"]
                      limits: {memory: 256Mi}
                    continueOnError: true
                """)
        #expect(run.status == "succeeded")
        let out = try #require(state.steps["env"]?.outputs)
        let names =
            (out["env"].map { v -> [String] in
                if case .list(let l) = v { l.compactMap { if case .string(let s) = $0 { s } else { nil } } } else { [] }
            }) ?? []
        #expect(!names.contains("WARDEN_TEST_SECRET"))
        let expected: Set<String> = [
            "HOME", "LANG", "MODE", "PATH", "TMPDIR", "WARDEN_ARTIFACTS_IN", "WARDEN_ARTIFACTS_OUT", "WARDEN_ATTEMPT", "WARDEN_ATTEMPT_KEY",
            "WARDEN_CREDENTIALS", "WARDEN_INPUTS", "WARDEN_ITEM", "WARDEN_OUTPUTS", "WARDEN_RUN", "WARDEN_STEP", "WARDEN_TEST_PASSED",
            "WARDEN_WORKDIR",
        ]
        #expect(Set(names).subtracting(["LC_CTYPE"]) == expected)
        #expect(out["passed"]?.jsonText() == "\"passed-on\"" && out["declared"]?.jsonText() == "\"strict\"")
        #expect(out["files"]?.jsonText() == "64" && out["token"]?.jsonText() == "\"t0ken\"")
        #expect(out["cwd"]?.jsonText().contains("/runs/\(run.id)/work/env-0-1") == true)
        #expect(state.steps["file"]?.outputs.jsonText() == #"{"from":"file"}"#)
        // 512 MiB cannot be allocated under a 256 MiB address-space limit: Python exits 1 (MemoryError).
        #expect(state.steps["memory"]?.status == .failed && state.steps["memory"]?.error?.contains("MemoryError") == true)
    }

    @Test func artifactsPassFromStepToStepByDigest() async throws {
        let h = try Harness()
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: make
                    uses: process@v1
                    with: {command: 'printf "report body" > $WARDEN_ARTIFACTS_OUT/report.txt; echo {}'}
                  - id: use
                    uses: process@v1
                    with:
                      command: 'printf "{\\"read\\": \\"%s\\"}" "$(cat $WARDEN_ARTIFACTS_IN/input.txt)"'
                      artifacts: {input.txt: '${{ steps.make.artifacts["report.txt"] }}'}
                """)
        #expect(run.status == "succeeded", "\(run.error ?? "")")
        #expect(state.steps["use"]?.outputs.jsonText() == #"{"read":"report body"}"#)
        let digest = try #require(state.steps["make"]?.units[0].artifacts.first?.1)
        #expect(digest.hasPrefix("sha256:") && digest.count == 71)
        #expect(try String(contentsOfFile: h.directory + "/artifacts/sha256/" + String(digest.dropFirst(7)), encoding: .utf8) == "report body")
    }

    @Test func manifestActionsDeclareSchemasThatAreEnforced() async throws {
        let h0 = try Harness()
        let dir = h0.directory + "/actions/scan"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        #!/bin/sh
        python3 -c 'import json, sys; i = json.load(sys.stdin); print(json.dumps({"findings": i["severity"] == "bad" and "many" or 0}))'
        """.write(toFile: dir + "/scan.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/scan.sh", 0o755)
        try """
        apiVersion: warden.dev/v1
        kind: Action
        name: acme/scan
        version: 2.1.0
        description: Counts findings.
        runtime: process
        timeout: 30s
        inputs:
          type: object
          required: [severity]
          properties:
            severity: {type: string, enum: [low, high, bad]}
          additionalProperties: false
        outputs:
          type: object
          required: [findings]
          properties:
            findings: {type: integer, minimum: 0}
        process:
          command: [./scan.sh]
        """.write(toFile: dir + "/action.yaml", atomically: true, encoding: .utf8)
        var catalog = ActionCatalog([NoopAction()])
        try catalog.load(directory: h0.directory + "/actions")
        let m = try #require(catalog.action("acme/scan", major: 2)?.manifest)
        #expect(m.version == "2.1.0" && m.runtime == "process" && m.timeout == .seconds(30))
        let engine = WorkflowEngine(store: MemoryWorkflowStore(), catalog: catalog, configuration: EngineConfiguration(stateDirectory: h0.directory))
        let yaml =
            head
            + "steps:\n  - id: ok\n    uses: acme/scan@v2\n    with: {severity: high}\n  - id: wrongIn\n    uses: acme/scan@v2\n    with: {severity: mild}\n    continueOnError: true\n  - id: wrongOut\n    uses: acme/scan@v2\n    with: {severity: bad}\n    continueOnError: true\n    retry: {maxAttempts: 3, initialDelay: 10ms}\n"
        let file = h0.directory + "/w.yaml"
        let run = try await engine.start(file: file, text: yaml, inputs: [:]).run
        let done = try await engine.drive(run.id)
        let state = try await engine.state(of: done).1
        #expect(state.steps["ok"]?.outputs.jsonText() == #"{"findings":0}"#)
        #expect(state.steps["wrongIn"]?.error == #"acme/scan@v2: invalid inputs: inputs.severity: "mild" is not one of ["low","high","bad"]"#)
        #expect(state.steps["wrongOut"]?.error == "acme/scan@v2: outputs break the declared schema: outputs.findings: expected integer, got string")
        // A schema violation is permanent: no retry.
        #expect(state.steps["wrongOut"]?.units[0].attempt == 1)
        // The catalogue decides what `uses:` may name.
        await #expect(throws: (any Error).self) {
            try await engine.start(file: file, text: head + "steps:\n  - id: a\n    uses: acme/scan@v1\n", inputs: [:])
        }
    }

    @Test(arguments: [
        ("kind: Action\nname: x\nversion: 1.0.0\nprocess: {command: [a]}\n", "apiVersion must be warden.dev/v1"),
        ("apiVersion: warden.dev/v1\nkind: Action\nname: x\nversion: 1.0\nprocess: {command: [a]}\n", "version must be MAJOR.MINOR.PATCH"),
        ("apiVersion: warden.dev/v1\nkind: Action\nname: x\nversion: 1.0.0\nruntime: docker\n", "runtime \"docker\" is not available"),
        ("apiVersion: warden.dev/v1\nkind: Action\nname: x\nversion: 1.0.0\nprocess: {cmd: [a]}\n", "command is missing"),
        ("apiVersion: warden.dev/v1\nkind: Action\nname: x\nversion: 1.0.0\nruntime: http\nhttp: {}\n", "http.url is missing"),
        ("apiVersion: warden.dev/v1\nkind: Action\nname: x\nversion: 1.0.0\nimage: y\nprocess: {command: [a]}\n", "unknown key \"image\""),
    ])
    func malformedManifestsAreRefusedWithTheirPosition(_ text: String, _ message: String) throws {
        let dir = try makeTemporaryDirectory()
        try text.write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        var catalog = ActionCatalog()
        do {
            try catalog.load(directory: dir)
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
            #expect("\(error)".hasPrefix(dir + "/a.yaml:"), "\(error)")
        }
    }

    @Test func aChildWorkflowRunsAsItsOwnRunOnce() async throws {
        let h = try Harness()
        try
            (head
            + "inputs:\n  n: {type: int}\nsteps:\n  - id: double\n    uses: noop@v1\n    with: {v: '${{ inputs.n * 2 }}'}\noutputs:\n  v: ${{ steps.double.outputs.v }}\n")
            .write(toFile: h.directory + "/child.yaml", atomically: true, encoding: .utf8)
        let (run, state) = try await h.run(
            head
                + "steps:\n  - id: sub\n    workflow: child.yaml\n    with: {n: 21}\n  - id: after\n    uses: noop@v1\n    with: {got: '${{ steps.sub.outputs.outputs.v }}'}\n"
        )
        #expect(run.status == "succeeded", "\(run.error ?? "")")
        #expect(state.steps["after"]?.outputs.jsonText() == #"{"got":42}"#)
        let runs = try await h.engine.store.runs(statuses: nil, limit: 10)
        let child = try #require(runs.first { $0.parent == "\(run.id)/sub" })
        #expect(child.status == "succeeded" && child.idempotencyKey == "child:\(run.id)/sub" && runs.count == 2)
    }
}
