import CEL
import Crypto
import Foundation
import HummingbirdTesting
import OCI
import OCITesting
import Storage
import Testing
import Triggers
import WardenApp

@testable import WardenServer

/// The trigger pipeline through the server: a real `docker-registry` notifying the server's receiver, bursts with
/// duplicates, manual fires and the dead-letter queue.
@Suite(.serialized) struct TriggerTests {
    static let onPush = """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: on-push
        inputs:
          image: {type: string}
        steps:
          - id: note
            uses: noop@v1
            with: {image: "${{ inputs.image }}"}
        """

    static func trigger(name: String = "verify-pushes", receivers: String = "[registry]", selector: String, workflow: String = "on-push") -> String {
        """
        apiVersion: warden.dev/v1
        kind: Trigger
        metadata:
          name: \(name)
          workspace: main
        spec:
          source:
            receivers: \(receivers)
          selector: \(selector)
          workflow: \(workflow)
          inputs:
            image: '${{ event.subject.repository + ":" + event.subject.tag }}'
          retry: {attempts: 2, backoff: 10ms}
        """
    }

    func publish(_ f: Fixture, _ kind: ControlPlane.DocumentKind, _ text: String) async throws {
        _ = try await f.server.control.publish(
            kind, workspace: "main", text: text, caller: ControlPlane.Caller(Principal(name: "admin", method: "token")))
    }

    func runs(_ f: Fixture) async throws -> [RunRecord] {
        try await f.server.store.runs(RunQuery(workspace: "main", workflow: "on-push", limit: 10_000))
    }

    @Test func aRealRegistryPushStartsOneRunPerTagAndDeletesAreEvents() async throws {
        let f = try await Fixture.make {
            $0.receivers = [ReceiverConfig(name: "registry", format: .distribution, secret: "s3cret", header: "Authorization")]
        }
        try await publish(f, .workflow, Self.onPush)
        try await publish(f, .trigger, Self.trigger(selector: "event.kind == 'registry.push' && event.subject.repository.matches('^team/')"))
        try await f.server.application(withServices: true).test(.live) { client in
            let reg = try await RegistryProcess.start(
                notify: (url: "http://127.0.0.1:\(client.port!)/api/v1/hooks/registry", authorization: "Bearer s3cret"))
            defer { reg.stop() }
            let layout = try makeTemporaryDirectory()
            var random = RandomContent(seed: 7)
            let store = try LayoutStore(path: layout)
            try await store.tag(try await random.pushImage(to: store, layerSizes: [10_000]).descriptor, as: "v1")
            for tag in ["v1", "v2"] {
                try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layout):v1", "docker://\(reg.host)/team/app:\(tag)"])
            }
            // Not selected: another repository.
            try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layout):v1", "docker://\(reg.host)/other/app:v1"])
            var found: [RunRecord] = []
            for _ in 0..<300 {
                found = try await runs(f)
                if found.count >= 2 && found.allSatisfy(\.finished) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            // Give late or repeated notifications time to arrive: still one run per pushed tag.
            try await Task.sleep(for: .seconds(1))
            found = try await runs(f)
            #expect(found.count == 2, "\(found.map(\.inputs))")
            #expect(Set(found.map(\.inputs)) == [#"{"image":"team/app:v1"}"#, #"{"image":"team/app:v2"}"#])
            #expect(found.allSatisfy { $0.status == .succeeded })
            // A tag delete reaches the server as registry.delete.
            let digest = try await Skopeo.rawManifest("\(reg.host)/team/app:v2").1
            _ = try await runProgram(
                "/usr/bin/curl", ["-s", "-X", "DELETE", "http://\(reg.host)/v2/team/app/manifests/\(digest)"])
            var deletes: [EventRecord] = []
            for _ in 0..<100 {
                deletes = try await f.server.store.events(receiver: "registry", before: nil, limit: 100).filter { $0.kind == "registry.delete" }
                if deletes.contains(where: { $0.subject.hasSuffix("/team/app@\(digest)") }) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            // Distribution reports the manifest's deletion by digest and each tag that pointed at it.
            #expect(deletes.contains { $0.subject.hasSuffix("/team/app@\(digest)") }, "\(deletes.map(\.subject))")
            // A wrong secret is refused (401) and audited with the reason; nothing of it is recorded.
            let ghost = """
                {"events":[{"id":"g","timestamp":"2026-12-01T10:00:00Z","action":"push","target":{"mediaType":
                "application/vnd.oci.image.manifest.v1+json","digest":"sha256:\(String(repeating: "1", count: 64))","repository":"ghost/app",
                "tag":"v1"},"request":{"host":"\(reg.host)"}}]}
                """
            let bad = try await client.call(
                .post, "/api/v1/hooks/registry", token: "wrong", json: ghost, contentType: "application/vnd.docker.distribution.events.v2+json")
            #expect(bad.status == 401, "\(bad.text)")
            #expect(try await f.server.store.events(receiver: nil, before: nil, limit: 1000).allSatisfy { !$0.subject.contains("ghost/") })
            let unknown = try await client.call(.post, "/api/v1/hooks/nobody", token: nil, json: "{}")
            #expect(unknown.status == 404)
            // A hostile receiver name is refused without being copied whole into the audit log.
            let long = try await client.call(.post, "/api/v1/hooks/" + String(repeating: "x", count: 2000), token: nil, json: "{}")
            #expect(long.status == 404)
        }
        let rejections = try await f.server.store.auditEntries(AuditQuery(action: "event.reject", limit: 10))
        #expect(rejections.count == 3 && rejections.allSatisfy { $0.decision == "deny" && !$0.details.contains("wrong") })
        #expect(rejections.allSatisfy { $0.subject.utf8.count <= 85 && $0.actor.utf8.count <= 89 && $0.details.utf8.count < 400 })
        #expect(try await AuditJob.verify(f.server.store, publicKey: f.server.key.publicKey).ok)
    }

    /// 1,000 deliveries, half of them repeats (the same push again, by webhook and by a generic sender with the
    /// derived id), make exactly 500 runs.
    @Test func aBurstWithHalfDuplicatesMakesExactlyOneRunPerEvent() async throws {
        let f = try await Fixture.make {
            $0.receivers = [ReceiverConfig(name: "registry", format: .distribution, registry: "reg.example", secret: "s3cret")]
            $0.concurrency = 16
        }
        try await publish(f, .workflow, Self.onPush)
        try await publish(f, .trigger, Self.trigger(selector: "event.kind == 'registry.push'"))
        @Sendable func envelope(_ i: Int) -> String {
            let digest = "sha256:" + hex(SHA256.hash(data: Data("image \(i)".utf8)))
            return """
                {"events":[{"id":"delivery-\(UUID().uuidString)","timestamp":"2026-12-01T10:00:00Z","action":"push",
                "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(digest)","size":500,"length":500,
                "repository":"team/app","url":"http://reg.example/v2/team/app/manifests/\(digest)","tag":"t\(i)"},
                "request":{"id":"r","addr":"127.0.0.1","host":"reg.example","method":"PUT","useragent":"skopeo"},
                "actor":{},"source":{"addr":"reg:5000","instanceID":"i"}}]}
                """
        }
        try await f.test { client in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var accepted = 0
                        for n in stride(from: worker, to: 1000, by: 8) {
                            let r = try await client.call(
                                .post, "/api/v1/hooks/registry", token: "s3cret", json: envelope(n % 500),
                                contentType: "application/vnd.docker.distribution.events.v2+json")
                            if r.status == 202 { accepted += 1 }
                        }
                        return accepted
                    }
                }
                var total = 0
                for try await n in group { total += n }
                #expect(total == 1000)
            }
            var found: [RunRecord] = []
            for _ in 0..<600 {
                found = try await runs(f)
                if found.count >= 500 && found.allSatisfy(\.finished) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(found.count == 500)
            #expect(Set(found.map(\.inputs)).count == 500)
            // Paged through the API, 64 at a time: every event once, though many share their receipt's instant.
            var ids: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.call(
                    .get, "/api/v1/events?receiver=registry&limit=64" + (cursor.map { "&cursor=\($0)" } ?? ""), token: f.admin)
                #expect(page.status == 200, "\(page.text)")
                ids += page.json["events"]?.list.compactMap { $0["id"]?.string } ?? []
                cursor = page.json["next"]?.string
            } while cursor != nil && ids.count <= 500
            #expect(ids.count == 500 && Set(ids).count == 500)
        }
        #expect(try await f.server.store.dispatchCount(status: .dispatched) == 500)
        #expect(try await f.server.store.events(receiver: "registry", before: nil, limit: 10_000).count == 500)
    }

    @Test func manualFiresDedupeByIdAndAFailingDispatchIsDeadLetteredThenReplayed() async throws {
        let f = try await Fixture.make()
        try await publish(f, .workflow, Self.onPush)
        // The trigger names a workflow that is not published yet: its dispatch fails, retries, is dead-lettered.
        try await publish(f, .trigger, Self.trigger(name: "by-hand", receivers: "[by-hand-only]", selector: "true", workflow: "later"))
        let op = f.tokens["operator"]!
        try await f.test { client in
            let fire = try await client.call(
                .post, "/api/v1/workspaces/main/triggers/by-hand/fire", token: op, json: #"{"id":"one","data":{"why":"test"}}"#)
            #expect(fire.status == 202, "\(fire.text)")
            #expect(fire.json["dispatched"]?.list.count == 1)
            let again = try await client.call(.post, "/api/v1/workspaces/main/triggers/by-hand/fire", token: op, json: #"{"id":"one"}"#)
            #expect(again.json["deduplicated"]?.list.count == 1 && again.json["dispatched"]?.list.isEmpty == true)
            let viewer = try await client.call(.post, "/api/v1/workspaces/main/triggers/by-hand/fire", token: f.tokens["viewer"]!)
            #expect(viewer.status == 403)
            var dead = Value.null
            for _ in 0..<200 {
                dead = try await client.call(.get, "/api/v1/workspaces/main/dispatches?status=dead", token: f.tokens["viewer"]!).json
                if dead["dispatches"]?.list.count == 1 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            let letter = try #require(dead["dispatches"]?.list.first, "\(dead)")
            #expect(letter["error"]?.string?.contains("no workflow later") == true, "\(letter)")
            let key = try #require(letter["key"]?.string)
            // Publish the workflow, replay: the same dispatch key makes the run.
            let later = Self.onPush.replacingOccurrences(of: "name: on-push", with: "name: later")
                .replacingOccurrences(of: "inputs:\n  image: {type: string}", with: "inputs:\n  image: {type: string, default: x}")
            _ = try await client.call(
                .post, "/api/v1/workspaces/main/workflows", token: f.tokens["author"]!, json: later, contentType: "application/yaml")
            let replay = try await client.call(.post, "/api/v1/workspaces/main/dispatches/\(key)/replay", token: op)
            #expect(replay.status == 202, "\(replay.text)")
            var status = ""
            for _ in 0..<200 {
                status = try await f.server.store.dispatch(key: key)?.status.rawValue ?? ""
                if status == "dispatched" { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(status == "dispatched")
            let twice = try await client.call(.post, "/api/v1/workspaces/main/dispatches/\(key)/discard", token: op)
            #expect(twice.status == 409)
        }
        let actions = try await f.server.store.auditEntries(AuditQuery(limit: 1000)).map(\.action)
        #expect(actions.contains("trigger.fire") && actions.contains("dispatch.dead-letter") && actions.contains("deadletter.replay"))
        #expect(actions.contains("dispatch.run"))
    }

    /// A schedule fires under the leader lease: of two schedulers on one state directory only the leader fires, each
    /// planned time once, and a scheduler whose lease was taken over fires nothing.
    @Test func twoSchedulersOnOneStoreFireEachPlannedTimeOnce() async throws {
        let f = try await Fixture.make()
        try await publish(f, .workflow, Self.onPush.replacingOccurrences(of: "image: {type: string}", with: "image: {type: string, default: tick}"))
        try await publish(
            f, .trigger,
            """
            apiVersion: warden.dev/v1
            kind: Trigger
            metadata: {name: every-second, workspace: main}
            spec:
              source:
                schedule: {cron: "@every 1s", timeZone: Europe/Berlin}
              workflow: on-push
            """)
        let planes = [f.server.triggers, TriggerPlane(control: f.server.control, receivers: [])]
        var fired = [0, 0]
        let start = Date()
        while Date().timeIntervalSince(start) < 3.5 {
            for (i, plane) in planes.enumerated() { fired[i] += try await plane.scheduleTick(holder: "scheduler-\(i)", ttl: 30) }
            try await Task.sleep(for: .milliseconds(100))
        }
        // The first holder leads for the whole time; about one fire a second, never two for one planned time.
        #expect(fired[1] == 0 && (2...4).contains(fired[0]), "\(fired)")
        let fires = try await f.server.store.events(receiver: "schedule", before: nil, limit: 100)
        #expect(fires.count == fired[0] && Set(fires.map(\.id)).count == fires.count)
        // The leader pauses past its lease: the other takes over under a new epoch; the old leader's fire is refused.
        let later = Date() + 60
        #expect(try await f.server.store.acquireLease(name: "scheduler", holder: "scheduler-1", ttl: 30, now: later) == 2)
        #expect(try await planes[0].scheduleTick(holder: "scheduler-0") == 0)
        let dispatched = try await planes[0].dispatchDue()
        #expect(dispatched.count == fired[0])
    }
}
