import CEL
import Foundation
import HummingbirdTesting
import OCI
import OCIRegistry
import OCITesting
import Storage
import Synchronization
import Testing
import Triggers
import WardenApp

@testable import WardenServer

/// The pollers (a real `docker-registry`'s tags, a real HTTP server's JSON), Docker Hub's tag-only pushes resolved
/// by a HEAD, rate limits and the trigger metrics.
@Suite(.serialized) struct TriggerPollingTests {
    func publish(_ f: Fixture, _ kind: ControlPlane.DocumentKind, _ text: String) async throws {
        _ = try await f.server.control.publish(
            kind, workspace: "main", text: text, caller: ControlPlane.Caller(Principal(name: "admin", method: "token")))
    }

    static func trigger(
        _ name: String, source: String, inputs: String = "'${{ event.subject.repository + \":\" + event.subject.tag }}'", extra: String = ""
    )
        -> String
    {
        """
        apiVersion: warden.dev/v1
        kind: Trigger
        metadata: {name: \(name), workspace: main}
        spec:
          source:
        \(source)
          workflow: on-push
          inputs:
            image: \(inputs)
          retry: {attempts: 2, backoff: 10ms}
        \(extra)
        """
    }

    func runs(_ f: Fixture, trigger: String? = nil) async throws -> [RunRecord] {
        try await f.server.store.runs(
            RunQuery(workspace: "main", workflow: "on-push", label: trigger.map { ("trigger", $0) }, limit: 10_000))
    }

    func waitForRuns(_ f: Fixture, _ count: Int) async throws -> [RunRecord] {
        var found: [RunRecord] = []
        for _ in 0..<400 {
            found = try await runs(f)
            if found.count >= count && found.allSatisfy(\.finished) { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        return found
    }

    func pushImage(to host: String, _ repository: String, tags: [String], seed: UInt64 = 1) async throws {
        let layout = try makeTemporaryDirectory()
        var random = RandomContent(seed: seed)
        let store = try LayoutStore(path: layout)
        try await store.tag(try await random.pushImage(to: store, layerSizes: [5_000]).descriptor, as: "v")
        for tag in tags {
            try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layout):v", "docker://\(host)/\(repository):\(tag)"])
        }
    }

    /// A registry whose notifications cannot be delivered, then restarted (distribution keeps its queue in memory):
    /// its pushes reach no receiver, and the poller backing the receiver still starts one run per tag. On a registry
    /// whose webhook works, the poller's report of the same push is the same event and makes no second run.
    @Test func aPollerCatchesWhatARestartedRegistryLostAndDedupesWithTheWebhook() async throws {
        let registries = try Registries()
        let f = try await Fixture.make(lookup: RegistryTriggerLookup(registries: registries)) {
            $0.receivers = [
                ReceiverConfig(name: "lossy", format: .distribution, secret: "s"),
                ReceiverConfig(name: "registry", format: .distribution, secret: "s3cret"),
            ]
        }
        try await publish(f, .workflow, TriggerTests.onPush)
        let nobody = try ReservedPort()
        defer { nobody.release() }
        let lossy = try await RegistryProcess.start(notify: (url: "http://127.0.0.1:\(nobody.port)/api/v1/hooks/lossy", authorization: "Bearer s"))
        defer { lossy.stop() }
        try await publish(
            f, .trigger,
            Self.trigger("lossy-push", source: "    receivers: [lossy]\n    poll: {registry: '\(lossy.host)', repository: team/app, interval: 1h}"))
        try await f.server.application(withServices: true).test(.live) { client in
            let live = try await RegistryProcess.start(
                notify: (url: "http://127.0.0.1:\(client.port!)/api/v1/hooks/registry", authorization: "Bearer s3cret"))
            defer { live.stop() }
            try await publish(
                f, .trigger,
                Self.trigger(
                    "live-push", source: "    receivers: [registry]\n    poll: {registry: '\(live.host)', repository: team/app, tags: ['v*']}"))
            let holder = f.server.triggerService.holder
            // The first round takes the baseline: the repositories do not exist yet, so nothing is there.
            let baseline = try await f.server.triggers.pollTick(holder: holder, force: true)
            #expect(baseline.errors.isEmpty && baseline.events == 0, "\(baseline)")
            try await pushImage(to: lossy.host, "team/app", tags: ["v1", "v2"])
            try await pushImage(to: live.host, "team/app", tags: ["v1", "latest"], seed: 2)
            lossy.kill()
            try await lossy.launch()
            // The webhook of the live registry starts v1's and latest's runs... but latest is not admitted by the
            // poll's tags, only by the receiver; the poller then finds lossy's v1 and v2, and live's v1 again.
            var live1: [RunRecord] = []
            for _ in 0..<200 {
                live1 = try await runs(f, trigger: "live-push")
                if live1.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(live1.count == 2)
            let report = try await f.server.triggers.pollTick(holder: holder, force: true)
            #expect(report.errors.isEmpty, "\(report)")
            #expect(report.events == 3 && report.dispatches == 2, "\(report)")
            let all = try await waitForRuns(f, 4)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await runs(f).count == 4)
            #expect(all.allSatisfy { $0.status == .succeeded })
            #expect(Set(try await runs(f, trigger: "lossy-push").map(\.inputs)) == [#"{"image":"team/app:v1"}"#, #"{"image":"team/app:v2"}"#])
            #expect(Set(live1.map(\.inputs)) == [#"{"image":"team/app:v1"}"#, #"{"image":"team/app:latest"}"#])
            // Nothing of lossy's reached its receiver; the poll's events carry the ids the webhook would have had.
            #expect(try await f.server.store.events(receiver: "lossy", before: nil, limit: 10).isEmpty)
            let digest = try await Skopeo.rawManifest("\(lossy.host)/team/app:v1").1
            let id = TriggerEvent.registryEventID(kind: .registryPush, registry: lossy.host, repository: "team/app", tag: "v1", digest: "\(digest)")
            #expect(try await f.server.store.event(id: id)?.receiver == "poll")
            // Nothing moved since: the next round reports nothing. A moved tag is a push again.
            let quiet = try await f.server.triggers.pollTick(holder: holder, force: true)
            #expect(quiet.events == 0 && quiet.polled == 2, "\(quiet)")
            try await pushImage(to: lossy.host, "team/app", tags: ["v2"], seed: 3)
            let moved = try await f.server.triggers.pollTick(holder: holder, force: true)
            #expect(moved.events == 1 && moved.dispatches == 1, "\(moved)")
            #expect(try await waitForRuns(f, 5).count == 5)
            // A round before the interval is up polls nothing.
            #expect(try await f.server.triggers.pollTick(holder: holder).polled == 0)
        }
        // Each poller took its baseline (the server's own poll loop may have taken one before the test's round).
        let baselines = try await f.server.store.auditEntries(AuditQuery(action: "poll.baseline", limit: 10))
        #expect(Set(baselines.map(\.subject)) == ["trigger/lossy-push", "trigger/live-push"])
        #expect(try await AuditJob.verify(f.server.store, publicKey: f.server.key.publicKey).ok)
        try await registries.shutdown()
    }

    /// Docker Hub names no digest: the receiver resolves the tag with a HEAD of the registry, so the event's id is
    /// the one every other reporter of that push derives and the run gets the digest. A tag that cannot be
    /// resolved is kept and retried by the dispatcher, then dead-lettered with the reason.
    @Test func aDockerHubPushIsResolvedToItsDigest() async throws {
        let reg = try await RegistryProcess.start()
        defer { reg.stop() }
        let registries = try Registries()
        let f = try await Fixture.make(lookup: RegistryTriggerLookup(registries: registries)) {
            $0.receivers = [ReceiverConfig(name: "hub", format: .dockerhub, registry: reg.host, secret: "hub-token", header: "X-Hub-Token")]
        }
        try await publish(f, .workflow, TriggerTests.onPush)
        try await publish(
            f, .trigger,
            Self.trigger("hub-push", source: "    receivers: [hub]", inputs: "'${{ event.subject.repository + \"@\" + event.subject.digest }}'"))
        try await pushImage(to: reg.host, "team/hub", tags: ["2.0"])
        let digest = "\(try await Skopeo.rawManifest("\(reg.host)/team/hub:2.0").1)"
        @Sendable func payload(_ tag: String) -> String {
            #"{"push_data":{"tag":"\#(tag)","pushed_at":1764500000,"pusher":"ci"},"repository":{"repo_name":"team/hub","namespace":"team","name":"hub"}}"#
        }
        try await f.test { client in
            let r = try await client.call(.post, "/api/v1/hooks/hub?token=hub-token", token: nil, json: payload("2.0"))
            #expect(r.status == 202, "\(r.text)")
            let id = TriggerEvent.registryEventID(kind: .registryPush, registry: reg.host, repository: "team/hub", tag: "2.0", digest: digest)
            #expect(r.json["events"]?.list.first?["id"]?.string == id, "\(r.text)")
            let found = try await waitForRuns(f, 1)
            #expect(found.map(\.inputs) == [#"{"image":"team/hub@\#(digest)"}"#])
            // Not in the registry: recorded as it came, retried, dead-lettered with the reason.
            let missing = try await client.call(.post, "/api/v1/hooks/hub?token=hub-token", token: nil, json: payload("9.9"))
            #expect(missing.status == 202)
            var dead: [DispatchRecord] = []
            for _ in 0..<200 {
                dead = try await f.server.store.dispatches(DispatchQuery(statuses: [.dead]))
                if !dead.isEmpty { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(dead.count == 1 && dead[0].attempts == 2, "\(dead)")
            #expect(dead.first?.error?.contains("team/hub:9.9 could not be resolved") == true, "\(dead)")
        }
        try await registries.shutdown()
    }

    /// A real HTTP server (Python's http.server, which answers If-Modified-Since with 304): the first round takes
    /// the baseline, an unchanged file is a 304 and no event, a new item is one `poll.change` and one run.
    @Test func anHTTPPollerReportsNewItemsOnceAndSendsItsValidators() async throws {
        let dir = try makeTemporaryDirectory()
        let file = dir + "/feed.json"
        try Data(#"{"items":[{"id":"a","title":"first"},{"id":"b","title":"second"}]}"#.utf8).write(to: URL(fileURLWithPath: file))
        let port = try ReservedPort()
        let number = port.port
        port.release()
        // The interpreter itself (not a launcher such as pyenv's shim, which would outlive a terminate()).
        let python = try await runProgram("/usr/bin/env", ["python3", "-c", "import sys; print(sys.executable)"]).checked().output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: python)
        server.arguments = ["-m", "http.server", "\(number)", "--bind", "127.0.0.1", "--directory", dir]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            // SIGKILL: a child started from a test thread may inherit a mask that blocks SIGTERM.
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        for _ in 0..<200 {
            if canConnect(port: number) { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let lookup = RecordingLookup(RegistryTriggerLookup(registries: try Registries()))
        let f = try await Fixture.make(lookup: lookup)
        try await publish(f, .workflow, TriggerTests.onPush)
        try await publish(
            f, .trigger,
            Self.trigger(
                "feed", source: "    http: {url: 'http://127.0.0.1:\(number)/feed.json', items: response.items, id: item.id}",
                inputs: "'${{ event.data.item.title }}'"))
        let holder = "test-holder"
        let first = try await f.server.triggers.pollTick(holder: holder, force: true)
        #expect(first.polled == 1 && first.events == 0 && first.errors.isEmpty, "\(first)")
        #expect(try await f.server.triggers.pollTick(holder: holder, force: true).events == 0)
        #expect(lookup.statuses == [200, 304])
        // A second later (http.server's validator has whole seconds), the feed gains an item and loses one.
        try await Task.sleep(for: .milliseconds(1100))
        try Data(#"{"items":[{"id":"b","title":"second"},{"id":"c","title":"third"}]}"#.utf8).write(to: URL(fileURLWithPath: file))
        let report = try await f.server.triggers.pollTick(holder: holder, force: true)
        #expect(report.polled == 1 && report.events == 1 && report.dispatches == 1, "\(report)")
        #expect(lookup.statuses == [200, 304, 200])
        let started = try await f.server.triggers.dispatchDue()
        #expect(started.map(\.inputs) == [#"{"image":"third"}"#])
        // A body that is not JSON fails the poll with the reason, audited once however often it repeats.
        try await Task.sleep(for: .milliseconds(1100))
        try Data("not json".utf8).write(to: URL(fileURLWithPath: file))
        for _ in 0..<2 {
            let failed = try await f.server.triggers.pollTick(holder: holder, force: true)
            #expect(failed.errors.first?.contains("the body is not JSON") == true, "\(failed)")
        }
        #expect(try await f.server.store.auditEntries(AuditQuery(action: "poll.error", limit: 10)).count == 1)
        // A new poller whose first round fails waits its interval like any other, not the loop's second.
        let closed = try ReservedPort()
        defer { closed.release() }
        try await publish(
            f, .trigger,
            Self.trigger("unreachable", source: "    http: {url: 'http://127.0.0.1:\(closed.port)/feed.json', items: response.items, id: item.id}"))
        let failing = try await f.server.triggers.pollTick(holder: holder)
        #expect(failing.polled == 1 && failing.errors.count == 1, "\(failing)")
        #expect(try await f.server.triggers.pollTick(holder: holder).polled == 0)
    }

    /// A trigger's rate limit holds the dispatches over it without spending their attempts; the metrics count each
    /// stage's outcome.
    @Test func aRateLimitDefersDispatchesAndTheMetricsCountOutcomes() async throws {
        let f = try await Fixture.make()
        try await publish(
            f, .workflow, TriggerTests.onPush.replacingOccurrences(of: "image: {type: string}", with: "image: {type: string, default: x}"))
        try await publish(
            f, .trigger,
            """
            apiVersion: warden.dev/v1
            kind: Trigger
            metadata: {name: limited, workspace: main}
            spec:
              source: {receivers: [by-hand]}
              workflow: on-push
              rateLimit: 2/h
            """)
        let caller = ControlPlane.Caller(Principal(name: "admin", method: "token"))
        for i in 0..<5 { _ = try await f.server.triggers.fire(workspace: "main", trigger: "limited", data: .map([]), id: "f\(i)", caller: caller) }
        let started = try await f.server.triggers.dispatchDue()
        #expect(started.count == 2)
        #expect(try await f.server.triggers.dispatchDue().isEmpty)
        let pending = try await f.server.store.dispatches(DispatchQuery(statuses: [.pending]))
        #expect(pending.count == 3 && pending.allSatisfy { $0.attempts == 0 && $0.nextAttemptAt > Date() + 1000 }, "\(pending)")
        let metrics = f.server.metrics.render()
        #expect(metrics.contains(#"warden_trigger_events_total{receiver="manual",format="manual",outcome="dispatched"} 2"#), "\(metrics)")
        #expect(metrics.contains(#"warden_trigger_events_total{receiver="manual",format="manual",outcome="rate-limited"} 3"#))
        #expect(metrics.contains("warden_trigger_event_to_run_seconds_count 2"))
    }
}

/// A lookup that records the status of each GET it passes on.
final class RecordingLookup: TriggerLookup {
    let inner: any TriggerLookup
    let recorded = Mutex<[Int]>([])
    init(_ inner: any TriggerLookup) { self.inner = inner }
    var statuses: [Int] { recorded.withLock { $0 } }

    func tags(registry: String, repository: String) async throws -> [String] { try await inner.tags(registry: registry, repository: repository) }
    func resolve(registry: String, repository: String, tag: String) async throws -> (digest: String, mediaType: String) {
        try await inner.resolve(registry: registry, repository: repository, tag: tag)
    }
    func get(url: String, headers: [(String, String)], limit: Int) async throws -> HTTPFetched {
        let r = try await inner.get(url: url, headers: headers, limit: limit)
        recorded.withLock { $0.append(r.status) }
        return r
    }
}
