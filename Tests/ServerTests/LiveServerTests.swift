import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import OCITesting
import Storage
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A `warden serve` process over a state directory, reached over real sockets.
final class ServeProcess: Sendable {
    let dir: String
    let port: Int
    let scheme: String
    let pid = PidBox()
    let task: Task<ProcessResult, any Error>

    var base: String { "\(scheme)://127.0.0.1:\(port)" }
    var state: String { dir + "/state" }

    init(dir: String, config: String? = nil, tls: Bool = false, port: Int? = nil, extra: [String] = []) async throws {
        self.dir = dir
        self.port = try port ?? freeLoopbackPort()
        scheme = tls ? "https" : "http"
        let executable = try wardenExecutable()
        var args = ["serve", "--state", dir + "/state", "--listen", "127.0.0.1:\(self.port)"] + extra
        if let config { args += ["--config", config] }
        let box = pid
        task = Task { try await runProgram(executable, args, started: { p in box.value.withLock { $0 = p } }) }
    }

    /// Waits until `/healthz` answers.
    func ready(_ client: HTTPClient) async throws {
        let up = try await holdsWithin(.seconds(60), poll: .milliseconds(100)) {
            (try? await client.execute(HTTPClientRequest(url: self.base + "/readyz"), timeout: .seconds(2)).status.code) == 200
        }
        guard up else {
            kill(pid.value.withLock { $0 }, SIGKILL)
            let r = try? await task.value
            throw HarnessError(.programFailed, "warden serve did not become ready: \(r?.errorOutput.suffix(3000) ?? "")")
        }
    }

    func signal(_ s: Int32) { kill(pid.value.withLock { $0 }, s) }

    /// Stops with `s` and returns how the process ended.
    func stop(_ s: Int32 = SIGTERM) async throws -> ProcessResult {
        signal(s)
        return try await task.value
    }
}

final class PidBox: Sendable { let value = Mutex<Int32>(0) }

/// Creates an admin token in the state directory of `dir` (before the server starts, as an operator would).
func adminToken(_ dir: String) async throws -> String {
    let (rc, out, err) = try await runWarden(["admin", "token", "create", "--state", dir + "/state", "--name", "admin"])
    guard rc == 0, let token = out.split(separator: " ").last.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) else {
        throw HarnessError(.programFailed, "admin token create: \(err)")
    }
    return token
}

/// Runs `body` with an HTTP client that is shut down however `body` ends.
func withClient<T>(_ configuration: HTTPClient.Configuration = .init(), _ body: (HTTPClient) async throws -> T) async throws -> T {
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        let r = try await body(client)
        try await client.shutdown()
        return r
    } catch {
        try? await client.shutdown()
        throw error
    }
}

extension HTTPClient {
    func send(_ method: HTTPMethod, _ url: String, token: String?, json: String? = nil) async throws -> (Int, String) {
        var r = HTTPClientRequest(url: url)
        r.method = method
        if let token { r.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await execute(r, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}

@Suite(.serialized) struct LiveServerTests {
    static let workflow = """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: slow
        steps:
          - id: first
            uses: process@v1
            with: {command: "sleep 2"}
          - id: second
            needs: [first]
            uses: process@v1
            with: {command: "sleep 2"}
          - id: third
            needs: [second]
            uses: noop@v1
        """

    func publishAndStart(_ client: HTTPClient, _ server: ServeProcess, token: String, runs: Int) async throws -> [String] {
        let doc = Value.object([("document", .string(Self.workflow))]).jsonText()
        let (p, pb) = try await client.send(.POST, server.base + "/api/v1/workspaces/default/workflows", token: token, json: doc)
        #expect(p == 201 || p == 200, "\(pb)")
        var ids: [String] = []
        for _ in 0..<runs {
            let (s, body) = try await client.send(.POST, server.base + "/api/v1/workspaces/default/runs", token: token, json: #"{"workflow":"slow"}"#)
            #expect(s == 201, "\(body)")
            if let id = (try? Value.parseJSON(body))?["id"], case .string(let v) = id { ids.append(v) }
        }
        return ids
    }

    func statuses(_ state: String) async throws -> [String: String] {
        let store = try SQLiteWorkflowStore(path: state + "/workflows.sqlite")
        return Dictionary(uniqueKeysWithValues: try await store.runs(statuses: nil, limit: 1000).map { ($0.id, $0.status.rawValue) })
    }

    /// SIGTERM with runs in flight: a clean exit, the runs released; a restart resumes and finishes every one, and the
    /// audit log verifies (a checkpoint was signed at shutdown).
    @Test func sigtermWithRunsInFlightThenARestartFinishesThem() async throws {
        try await withClient { client in try await self.sigtermWithRunsInFlightThenARestartFinishesThemBody(client) }
    }

    func sigtermWithRunsInFlightThenARestartFinishesThemBody(_ client: HTTPClient) async throws {
        let dir = try makeTemporaryDirectory()
        let token = try await adminToken(dir)
        let first = try await ServeProcess(dir: dir)
        try await first.ready(client)
        let ids = try await publishAndStart(client, first, token: token, runs: 3)
        try await Task.sleep(for: .milliseconds(500))
        let ended = try await first.stop(SIGTERM)
        #expect(!ended.signalled && ended.status == 0, "\(ended.signalled ? "signal" : "exit") \(ended.status): \(ended.errorOutput.suffix(2000))")
        let after = try await statuses(first.state)
        // Each run takes four seconds of steps: at least one was in flight when the signal came (on a loaded machine the
        // first may already have finished).
        #expect(ids.allSatisfy { after[$0] != nil } && ids.contains { after[$0] != "succeeded" }, "\(after)")
        let store = try SQLiteWorkflowStore(path: first.state + "/workflows.sqlite")
        #expect(try await store.runs(statuses: nil, limit: 100).allSatisfy { $0.owner == nil }, "runs still owned after shutdown")
        // The log's last entries are covered by the shutdown checkpoint.
        let (vrc, vout, _) = try await runWarden(["audit", "verify", "--state", first.state, "--output", "json"])
        #expect(vrc == 0 && vout.contains(#""uncheckpointed" : 0"#), "\(vout)")

        let second = try await ServeProcess(dir: dir)
        try await second.ready(client)
        let done = try await holdsWithin(.seconds(60), poll: .milliseconds(200)) {
            let s = try await self.statuses(second.state)
            return ids.allSatisfy { s[$0] == "succeeded" }
        }
        let final = try await statuses(second.state)
        #expect(done, "\(final)")
        // No completed step ran twice: each step finished once per run.
        for id in ids {
            let journal = try await store.journal(run: id)
            for step in ["first", "second", "third"] {
                #expect(journal.filter { $0.type == "step.finished" && $0.step == step }.count == 1, "\(id) \(step)")
            }
        }
        _ = try await second.stop(SIGTERM)
    }

    /// SIGKILL mid-run: the restart takes the runs over from the dead process and no completed step runs again.
    @Test func sigkillMidRunThenARestartResumesWithoutRerunningCompletedSteps() async throws {
        try await withClient { client in try await self.sigkillMidRunThenARestartResumesWithoutRerunningCompletedStepsBody(client) }
    }

    func sigkillMidRunThenARestartResumesWithoutRerunningCompletedStepsBody(_ client: HTTPClient) async throws {
        let dir = try makeTemporaryDirectory()
        let token = try await adminToken(dir)
        let first = try await ServeProcess(dir: dir)
        try await first.ready(client)
        let ids = try await publishAndStart(client, first, token: token, runs: 2)
        let store = try SQLiteWorkflowStore(path: first.state + "/workflows.sqlite")
        let midway = try await holdsWithin(.seconds(30), poll: .milliseconds(50)) {
            for id in ids where try await store.journal(run: id).contains(where: { $0.type == "step.finished" && $0.step == "first" }) == false {
                return false
            }
            return true
        }
        #expect(midway)
        let killed = try await first.stop(SIGKILL)
        #expect(killed.signalled)
        let second = try await ServeProcess(dir: dir)
        try await second.ready(client)
        let done = try await holdsWithin(.seconds(60), poll: .milliseconds(200)) {
            let s = try await self.statuses(second.state)
            return ids.allSatisfy { s[$0] == "succeeded" }
        }
        let final = try await statuses(second.state)
        #expect(done, "\(final)")
        for id in ids {
            let journal = try await store.journal(run: id)
            #expect(journal.filter { $0.type == "step.finished" && $0.step == "first" }.count == 1, "\(id): first re-ran")
        }
        let result = try await second.stop(SIGTERM)
        #expect(result.status == 0)
        // No token ever reaches the logs.
        #expect(!result.errorOutput.contains(token) && !result.errorOutput.contains("wdn_"), "a token was logged")
        #expect(result.errorOutput.contains(#""message":"request""#), "no structured request log: \(result.errorOutput.prefix(500))")
    }

    /// TLS with HTTP/2 by ALPN (and HTTP/1.1 for clients that ask for it), from a configuration file.
    @Test func tlsServesHTTP2AndHTTP1() async throws {
        let dir = try makeTemporaryDirectory()
        let (rc, _, err) = try runProcess(
            "/usr/bin/env",
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir + "/server.key", "-out",
                dir + "/server.crt", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ])
        try #require(rc == 0, "\(err)")
        try "tls: {certificate: server.crt, key: server.key}\nlimits: {idleTimeout: 30s}\n".write(
            toFile: dir + "/warden.yaml", atomically: true, encoding: .utf8)
        let token = try await adminToken(dir)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(dir + "/server.crt")
        var config = HTTPClient.Configuration(tlsConfiguration: tls)
        config.httpVersion = .automatic
        let server = try await ServeProcess(dir: dir, config: dir + "/warden.yaml", tls: true)
        var r = HTTPClientRequest(url: server.base + "/api/v1/workspaces")
        r.headers.add(name: "Authorization", value: "Bearer \(token)")
        try await withClient(config) { client in
            try await server.ready(client)
            let h2 = try await client.execute(r, timeout: .seconds(10))
            #expect(h2.status.code == 200 && h2.version == .http2, "\(h2.version)")
        }
        var h1config = HTTPClient.Configuration(tlsConfiguration: tls)
        h1config.httpVersion = .http1Only
        try await withClient(h1config) { client in
            let h1 = try await client.execute(r, timeout: .seconds(10))
            #expect(h1.status.code == 200 && h1.version == .http1_1)
        }
        // Plain HTTP to the TLS port is refused, not answered.
        await #expect(throws: (any Error).self) {
            try await withClient { plain in
                _ = try await plain.execute(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/healthz"), timeout: .seconds(5))
            }
        }
        #expect(try await server.stop().status == 0)
    }

    /// The CLI as a client: publish, list, show, approve and verify through the server, with output identical to the
    /// same commands on the state directory; `warden login` keeps the token for later commands.
    @Test func theCLIAsAClient() async throws {
        try await withClient { client in try await self.theCLIAsAClientBody(client) }
    }

    func theCLIAsAClientBody(_ client: HTTPClient) async throws {
        let dir = try makeTemporaryDirectory()
        let token = try await adminToken(dir)
        let server = try await ServeProcess(dir: dir)
        try await server.ready(client)
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: gated
        steps:
          - id: build
            uses: noop@v1
          - id: gate
            needs: [build]
            approval: {required: 1}
        """.write(toFile: dir + "/gated.yaml", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["XDG_CONFIG_HOME"] = dir + "/config"
        env["WARDEN_TOKEN"] = nil
        env["WARDEN_SERVER"] = nil
        let warden = try wardenExecutable()
        // Without a token: 401, exit 4, and a hint.
        let anonymous = try await runProgram(warden, ["runs", "list", "--server", server.base], environment: env)
        #expect(anonymous.status == 4 && anonymous.errorOutput.contains("warden login"), "\(anonymous.errorOutput)")
        let login = try await runProgram(warden, ["login", server.base], environment: env, input: Data((token + "\n").utf8))
        #expect(login.succeeded, "\(login.errorOutput)")
        let publish = try await runProgram(warden, ["workflow", "publish", dir + "/gated.yaml", "--server", server.base], environment: env)
        #expect(publish.succeeded && publish.output.contains("gated@1"), "\(publish.output)\(publish.errorOutput)")
        let (s, body) = try await client.send(.POST, server.base + "/api/v1/workspaces/default/runs", token: token, json: #"{"workflow":"gated"}"#)
        #expect(s == 201)
        guard case .string(let id)? = (try? Value.parseJSON(body))?["id"] else { throw HarnessError(.programFailed, body) }
        let waiting = try await holdsWithin(.seconds(30), poll: .milliseconds(100)) {
            try await runProgram(warden, ["runs", "show", id, "--server", server.base], environment: env).output.contains(
                "waiting   for approval of gate")
        }
        #expect(waiting)
        let approve = try await runProgram(warden, ["runs", "approve", id, "gate", "--server", server.base, "--comment", "ok"], environment: env)
        #expect(approve.succeeded, "\(approve.errorOutput)")
        let done = try await holdsWithin(.seconds(30), poll: .milliseconds(100)) {
            try await runProgram(warden, ["runs", "show", id, "--server", server.base], environment: env).output.contains("status    succeeded")
        }
        #expect(done)
        let remote = try await runProgram(warden, ["runs", "show", id, "--server", server.base, "--output", "json"], environment: env)
        let verify = try await runProgram(warden, ["audit", "verify", "--server", server.base], environment: env)
        #expect(verify.succeeded && verify.output.contains("audit log intact"), "\(verify.output)\(verify.errorOutput)")
        // `warden run FILE --server`: published, started with inputs typed by the server as declared, watched to its end.
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: logged
        inputs:
          count: {type: int}
        steps:
          - id: say
            uses: process@v1
            with: {command: 'for i in $(seq ${{ inputs.count }}); do echo "line $i é" >&2; done; echo {}'}
        """.write(toFile: dir + "/logged.yaml", atomically: true, encoding: .utf8)
        let run = try await runProgram(warden, ["run", dir + "/logged.yaml", "--input", "count=3", "--server", server.base], environment: env)
        #expect(run.succeeded && run.output.hasPrefix("run ") && run.output.contains(" succeeded"), "\(run.output)\(run.errorOutput)")
        let ran = String(run.output.split(separator: " ")[1])
        let badInput = try await runProgram(
            warden, ["run", dir + "/logged.yaml", "--input", "count=many", "--server", server.base], environment: env)
        #expect(badInput.status == 1 && badInput.errorOutput.contains("count"), "\(badInput.errorOutput)")
        // Triggers through the CLI: publish, fire twice with one id (one dispatch), list the dispatches.
        try """
        apiVersion: warden.dev/v1
        kind: Trigger
        metadata: {name: by-hand}
        spec:
          source: {receivers: [nobody]}
          workflow: gated
        """.write(toFile: dir + "/trigger.yaml", atomically: true, encoding: .utf8)
        let published = try await runProgram(warden, ["trigger", "publish", dir + "/trigger.yaml", "--server", server.base], environment: env)
        #expect(published.succeeded && published.output.contains("trigger by-hand@1"), "\(published.output)\(published.errorOutput)")
        let fired = try await runProgram(warden, ["trigger", "fire", "by-hand", "--id", "x", "--server", server.base], environment: env)
        #expect(fired.succeeded && fired.output.contains("dispatched"), "\(fired.output)\(fired.errorOutput)")
        let refired = try await runProgram(warden, ["trigger", "fire", "by-hand", "--id", "x", "--server", server.base], environment: env)
        #expect(refired.output.contains("deduplicated"), "\(refired.output)")
        let listed = try await holdsWithin(.seconds(20), poll: .milliseconds(100)) {
            try await runProgram(warden, ["trigger", "dispatches", "--server", server.base], environment: env).output.contains(" dispatched ")
        }
        #expect(listed)
        let remoteDispatches = try await runProgram(warden, ["trigger", "dispatches", "--server", server.base, "--output", "json"], environment: env)
        let remoteEvents = try await runProgram(warden, ["trigger", "events", "--server", server.base], environment: env)
        #expect(remoteEvents.succeeded && remoteEvents.output.contains("manual manual.fire trigger/by-hand"), "\(remoteEvents.output)")
        let remoteLogs = try await runProgram(warden, ["runs", "logs", ran, "--server", server.base], environment: env)
        #expect(remoteLogs.output.contains("    | line 3 é"), "\(remoteLogs.output)\(remoteLogs.errorOutput)")
        let remoteAudit = try await runProgram(warden, ["audit", "list", "--action", "run.start", "--server", server.base], environment: env)
        #expect(remoteAudit.output.split(separator: "\n").count == 3, "\(remoteAudit.output)\(remoteAudit.errorOutput)")
        let remoteList = try await runProgram(warden, ["runs", "list", "--server", server.base], environment: env)
        let remoteTriggers = try await runProgram(warden, ["trigger", "list", "--server", server.base, "--output", "json"], environment: env)
        let remoteTrigger = try await runProgram(
            warden, ["trigger", "show", "by-hand", "--server", server.base, "--output", "json"], environment: env)
        #expect(try await server.stop().status == 0)
        let localLogs = try await runProgram(warden, ["runs", "logs", ran, "--state", server.state], environment: env)
        #expect(remoteLogs.succeeded && remoteLogs.output == localLogs.output, "\(remoteLogs.output)\n---\n\(localLogs.output)")
        let localAudit = try await runProgram(warden, ["audit", "list", "--action", "run.start", "--state", server.state], environment: env)
        #expect(remoteAudit.succeeded && remoteAudit.output == localAudit.output, "\(remoteAudit.output)\n---\n\(localAudit.output)")
        // The same commands on the state directory print the same.
        let local = try await runProgram(warden, ["runs", "show", id, "--state", server.state, "--output", "json"], environment: env)
        #expect(remote.succeeded && remote.output == local.output, "\(remote.output)\n---\n\(local.output)")
        #expect(remote.output.contains(#""by" : "admin""#), "the decider is the token's principal: \(remote.output)")
        let localList = try await runProgram(warden, ["runs", "list", "--state", server.state], environment: env)
        #expect(remoteList.output == localList.output, "\(remoteList.output)\n---\n\(localList.output)")
        let localDispatches = try await runProgram(warden, ["trigger", "dispatches", "--state", server.state, "--output", "json"], environment: env)
        #expect(
            remoteDispatches.succeeded && remoteDispatches.output == localDispatches.output,
            "\(remoteDispatches.output)\n---\n\(localDispatches.output)")
        let localEvents = try await runProgram(warden, ["trigger", "events", "--state", server.state], environment: env)
        #expect(remoteEvents.output == localEvents.output, "\(remoteEvents.output)\n---\n\(localEvents.output)")
        let localTriggers = try await runProgram(warden, ["trigger", "list", "--state", server.state, "--output", "json"], environment: env)
        #expect(remoteTriggers.succeeded && remoteTriggers.output == localTriggers.output, "\(remoteTriggers.output)\n---\n\(localTriggers.output)")
        let localTrigger = try await runProgram(
            warden, ["trigger", "show", "by-hand", "--state", server.state, "--output", "json"], environment: env)
        #expect(remoteTrigger.succeeded && remoteTrigger.output == localTrigger.output, "\(remoteTrigger.output)\n---\n\(localTrigger.output)")
        // Published and fired on the state directory with the server stopped: the dispatch waits for the server.
        try String(contentsOfFile: dir + "/trigger.yaml", encoding: .utf8).replacingOccurrences(of: "by-hand", with: "later")
            .write(toFile: dir + "/later.yaml", atomically: true, encoding: .utf8)
        let localPublish = try await runProgram(warden, ["trigger", "publish", dir + "/later.yaml", "--state", server.state], environment: env)
        #expect(localPublish.succeeded && localPublish.output.contains("trigger later@1"), "\(localPublish.output)\(localPublish.errorOutput)")
        let localFire = try await runProgram(warden, ["trigger", "fire", "later", "--id", "y", "--state", server.state], environment: env)
        #expect(localFire.succeeded && localFire.output.contains("dispatched"), "\(localFire.output)\(localFire.errorOutput)")
        let pending = try await runProgram(warden, ["trigger", "dispatches", "--trigger", "later", "--state", server.state], environment: env)
        #expect(pending.output.contains(" later pending attempts 0"), "\(pending.output)\(pending.errorOutput)")
        let unknown = try await runProgram(warden, ["trigger", "show", "nobody", "--state", server.state], environment: env)
        #expect(unknown.status == 3 && unknown.errorOutput.contains("no trigger nobody"), "\(unknown.errorOutput)")
        // Only a dead-lettered dispatch can be replayed; the answer names the state it is in.
        let key = try #require(((try? Value.parseJSON(localDispatches.output))?["dispatches"]?.list.first?["key"]?.string))
        let replay = try await runProgram(warden, ["trigger", "replay", key, "--state", server.state], environment: env)
        #expect(replay.status == 1 && replay.errorOutput.contains("not dead-lettered"), "\(replay.output)\(replay.errorOutput)")
    }

    /// A configuration file with a mistake names the file, line and column, and nothing starts.
    @Test func aBadConfigurationFileIsRefusedWithItsPosition() async throws {
        let dir = try makeTemporaryDirectory()
        try "listen: 127.0.0.1:8080\nlimits:\n  bodyBytez: 10\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let (rc, _, err) = try await runWarden(["serve", "--config", dir + "/bad.yaml", "--state", dir + "/state"])
        #expect(rc == 1 && err.contains("bad.yaml:3:3") && err.contains("bodyBytez"), "\(err)")
    }

    /// OIDC bearer tokens signed by an independent issuer (joserfc) authenticate principals whose groups hold roles.
    @Test func oidcTokensFromAConfiguredIssuerAuthenticate() async throws {
        try await withClient { client in try await self.oidcTokensFromAConfiguredIssuerAuthenticateBody(client) }
    }

    func oidcTokensFromAConfiguredIssuerAuthenticateBody(_ client: HTTPClient) async throws {
        let dir = try makeTemporaryDirectory()
        let issuer = try await OIDCTestIssuer.start(client: client)
        defer { issuer.stop() }
        try """
        oidc:
          - name: corp
            issuer: \(issuer.url)
            audiences: [warden]
        workspaces:
          - name: payments
            members: {"group:release": operator, "corp:carol": viewer}
        """.write(toFile: dir + "/warden.yaml", atomically: true, encoding: .utf8)
        let server = try await ServeProcess(dir: dir, config: dir + "/warden.yaml")
        try await server.ready(client)
        let now = Int(Date().timeIntervalSince1970)
        let dave = try await issuer.mint(["iss": issuer.url, "aud": "warden", "sub": "dave", "groups": ["release"], "exp": now + 300])
        let (s, body) = try await client.send(.GET, server.base + "/api/v1/whoami", token: dave)
        #expect(s == 200 && body.contains(#""principal":"corp:dave""#) && body.contains("release"), "\(body)")
        let (runs, _) = try await client.send(.GET, server.base + "/api/v1/workspaces/payments/runs", token: dave)
        #expect(runs == 200)
        let carol = try await issuer.mint(["iss": issuer.url, "aud": "warden", "sub": "carol", "exp": now + 300])
        let (denied, _) = try await client.send(.POST, server.base + "/api/v1/workspaces/payments/runs", token: carol, json: #"{"workflow":"x"}"#)
        #expect(denied == 403)
        let wrongAudience = try await issuer.mint(["iss": issuer.url, "aud": "other", "sub": "dave", "exp": now + 300])
        let (aud, audBody) = try await client.send(.GET, server.base + "/api/v1/whoami", token: wrongAudience)
        #expect(aud == 401 && audBody.contains("audience"), "\(audBody)")
        let expired = try await issuer.mint(["iss": issuer.url, "aud": "warden", "sub": "dave", "exp": now - 3600])
        #expect(try await client.send(.GET, server.base + "/api/v1/whoami", token: expired).0 == 401)
        let result = try await server.stop()
        #expect(!result.errorOutput.contains(dave), "a JWT was logged")
    }
}
