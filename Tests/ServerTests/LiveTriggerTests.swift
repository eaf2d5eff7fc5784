import AsyncHTTPClient
import CEL
import Crypto
import Foundation
import NIOCore
import OCITesting
import Storage
import Synchronization
import Testing

/// The trigger pipeline of a real `warden serve` process killed in the middle of a burst.
@Suite(.serialized) struct LiveTriggerTests {
    /// 1,000 deliveries of 500 distinct pushes from 8 senders; the server is SIGKILLed after about 300 are
    /// acknowledged, and restarted on the same state directory and port. Every sender retries what was not
    /// acknowledged (as distribution does). Afterwards: exactly 500 events, 500 dispatches, 500 runs — none lost,
    /// none doubled.
    @Test func sigkillDuringABurstLosesNoEventAndStartsNoRunTwice() async throws {
        try await withClient { client in try await self.burst(client) }
    }

    func burst(_ client: HTTPClient) async throws {
        let dir = try makeTemporaryDirectory()
        let token = try await adminToken(dir)
        try Data("s3cret\n".utf8).write(to: URL(fileURLWithPath: dir + "/hook-secret"))
        try Data(
            """
            concurrency: 8
            limits: {writesPerMinute: 100000}
            receivers:
              - {name: registry, format: distribution, registry: reg.example, secretFile: hook-secret}
            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/warden.yaml"))
        let port = try freeLoopbackPort()
        let first = try await ServeProcess(dir: dir, config: dir + "/warden.yaml", port: port)
        try await first.ready(client)
        let workflow = TriggerTests.onPush
        let trigger = """
            apiVersion: warden.dev/v1
            kind: Trigger
            metadata: {name: every-push}
            spec:
              source: {receivers: [registry]}
              selector: event.kind == 'registry.push'
              workflow: on-push
              inputs:
                image: '${{ event.subject.repository + ":" + event.subject.tag }}'
            """
        for (path, doc) in [("workflows", workflow), ("triggers", trigger)] {
            let (s, body) = try await client.send(
                .POST, first.base + "/api/v1/workspaces/default/\(path)", token: token, json: Value.object([("document", .string(doc))]).jsonText())
            #expect(s == 201, "\(body)")
        }
        @Sendable func envelope(_ i: Int) -> String {
            let digest = "sha256:" + SHA256.hash(data: Data("image \(i)".utf8)).map { String(format: "%02x", $0) }.joined()
            return """
                {"events":[{"id":"delivery-\(UUID().uuidString)","timestamp":"2026-12-01T10:00:00Z","action":"push",
                "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(digest)","size":500,
                "repository":"team/app","tag":"t\(i)"},"request":{"host":"reg.example","method":"PUT"}}]}
                """
        }
        let counts = BurstCounts()
        let url = "http://127.0.0.1:\(port)/api/v1/hooks/registry"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for n in stride(from: worker, to: 1000, by: 8) {
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer s3cret")
                        request.headers.add(name: "Content-Type", value: "application/vnd.docker.distribution.events.v2+json")
                        request.body = .bytes(ByteBuffer(string: envelope(n % 500)))
                        // Until acknowledged: a refused connection or a reset while the server is down is retried.
                        while true {
                            if let r = try? await client.execute(request, timeout: .seconds(10)), r.status.code == 202 {
                                _ = try? await r.body.collect(upTo: 1 << 20)
                                break
                            }
                            counts.retried.add(1, ordering: .relaxed)
                            try await Task.sleep(for: .milliseconds(50))
                        }
                        counts.acknowledged.add(1, ordering: .relaxed)
                    }
                }
            }
            group.addTask {
                while counts.acknowledged.load(ordering: .relaxed) < 300 { try await Task.sleep(for: .milliseconds(2)) }
                let r = try await first.stop(SIGKILL)
                #expect(r.signalled)
                // Down for a moment (the senders' requests fail and are retried), then back on the same port.
                try await Task.sleep(for: .milliseconds(300))
                let second = try await ServeProcess(dir: dir, config: dir + "/warden.yaml", port: port)
                try await second.ready(client)
                counts.restarted.withLock { $0 = second }
            }
            try await group.waitForAll()
        }
        #expect(counts.acknowledged.load(ordering: .relaxed) == 1000)
        #expect(counts.retried.load(ordering: .relaxed) > 0, "no delivery met the server down")
        let second = try #require(counts.restarted.withLock { $0 })
        let store = try SQLiteWorkflowStore(path: second.state + "/workflows.sqlite")
        let settled = try await holdsWithin(.seconds(120), poll: .milliseconds(200)) {
            let runs = try await store.runs(RunQuery(workspace: "default", workflow: "on-push", limit: 10_000))
            return try await store.dispatchCount(status: .dispatched) == 500 && runs.count == 500 && runs.allSatisfy(\.finished)
        }
        let runs = try await store.runs(RunQuery(workspace: "default", workflow: "on-push", limit: 10_000))
        let dispatched = try await store.dispatchCount(status: .dispatched)
        #expect(settled, "runs \(runs.count), dispatched \(dispatched)")
        #expect(runs.count == 500 && Set(runs.map(\.inputs)).count == 500)
        #expect(runs.allSatisfy { $0.status == .succeeded })
        #expect(try await store.events(receiver: "registry", before: nil, limit: 10_000).count == 500)
        #expect(try await store.dispatchCount(status: .pending) == 0)
        #expect(try await store.dispatchCount(status: .dead) == 0)
        let result = try await second.stop(SIGTERM)
        #expect(result.status == 0)
    }
}

final class BurstCounts: Sendable {
    let acknowledged = Atomic<Int>(0)
    let retried = Atomic<Int>(0)
    let restarted = Mutex<ServeProcess?>(nil)
}

/// `warden trigger check`: a trigger document checked without a server, and what it makes of an event.
@Suite struct TriggerCheckTests {
    @Test func checkTellsWhetherATriggerSelectsAnEventAndTheInputsItGives() async throws {
        let dir = try makeTemporaryDirectory()
        let trigger = """
            apiVersion: warden.dev/v1
            kind: Trigger
            metadata: {name: releases}
            spec:
              source: {receivers: [hub]}
              selector: event.kind == 'registry.push' && event.subject.tag.startsWith('v')
              workflow: on-push
              inputs:
                image: '${{ event.subject.repository + ":" + event.subject.tag }}'
            """
        try Data(trigger.utf8).write(to: URL(fileURLWithPath: dir + "/trigger.yaml"))
        func event(_ tag: String, receiver: String = "hub") throws -> String {
            let path = dir + "/event-\(tag)-\(receiver).json"
            try Data(
                #"{"id":"e-\#(tag)","kind":"registry.push","source":{"receiver":"\#(receiver)","format":"distribution","vendor":"push"},"subject":{"registry":"r.example","repository":"team/app","tag":"\#(tag)"}}"#
                    .utf8
            ).write(to: URL(fileURLWithPath: path))
            return path
        }
        let valid = try await runWarden(["trigger", "check", dir + "/trigger.yaml"])
        #expect(valid.0 == 0 && valid.1.contains("valid"), "\(valid)")
        let selected = try await runWarden(["trigger", "check", dir + "/trigger.yaml", "--event", try event("v2")])
        #expect(selected.0 == 0 && selected.1.contains("selected: event e-v2") && selected.1.contains(#"image: "team/app:v2""#), "\(selected)")
        let json = try await runWarden(["trigger", "check", dir + "/trigger.yaml", "--event", try event("v3"), "--output", "json"])
        #expect(json.1.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"selected":true,"inputs":{"image":"team/app:v3"}}"#, "\(json)")
        let other = try await runWarden(["trigger", "check", dir + "/trigger.yaml", "--event", try event("latest")])
        #expect(other.0 == 1 && other.1.contains("not selected"), "\(other)")
        // Another receiver's event is not this trigger's, whatever the selector says.
        let elsewhere = try await runWarden(["trigger", "check", dir + "/trigger.yaml", "--event", try event("v2", receiver: "quay")])
        #expect(elsewhere.0 == 1)
        // A broken selector is refused with its position, as publishing would.
        try Data(trigger.replacingOccurrences(of: "startsWith('v')", with: "startsWith('v'").utf8).write(to: URL(fileURLWithPath: dir + "/bad.yaml"))
        let bad = try await runWarden(["trigger", "check", dir + "/bad.yaml"])
        #expect(bad.0 == 65 && bad.2.contains("bad.yaml:6:"), "\(bad)")
        try Data("{\"id\": 1}".utf8).write(to: URL(fileURLWithPath: dir + "/not-an-event.json"))
        let notEvent = try await runWarden(["trigger", "check", dir + "/trigger.yaml", "--event", dir + "/not-an-event.json"])
        #expect(notEvent.0 == 65 && notEvent.2.contains("not a normalised event"), "\(notEvent)")
    }
}
