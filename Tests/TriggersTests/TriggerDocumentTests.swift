import CEL
import Documents
import Foundation
import Testing

@testable import Triggers

@Suite struct TriggerDocumentTests {
    static let example = """
        apiVersion: warden.dev/v1
        kind: Trigger
        metadata:
          name: rebuild-on-push
          workspace: shop
          description: Gate every release tag of the shop images
        spec:
          source:
            receivers: [harbor-prod, registry]
          selector: event.kind == 'registry.push' && event.subject.repository.matches('^team/') && event.subject.tag.startsWith('1.')
          workflow: release-gate@3
          inputs:
            image: ${{ event.subject.reference }}
            strict: true
            platforms: [linux/amd64, linux/arm64]
          dedupWindow: 1h
          concurrencyPolicy: forbid
          rateLimit: 10/m
          retry: {attempts: 3, backoff: 2s}
        """

    func parse(_ text: String) throws -> TriggerDocument { try TriggerDocument.parse(text, file: "trigger.yaml") }

    /// The error `text` gives, as `file:line:col: message`.
    func failure(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "parsed"
        } catch let e as YAMLError {
            return e.description
        } catch {
            return "\(error)"
        }
    }

    func event(receiver: String, repository: String, tag: String?) -> TriggerEvent {
        TriggerEvent.registry(
            kind: .registryPush, subject: TriggerEvent.Subject(registry: "r.example", repository: repository, tag: tag, digest: manifestDigest),
            source: TriggerEvent.Source(receiver: receiver, format: "distribution", vendor: "push"))
    }

    @Test func theExampleReadsWhole() throws {
        let t = try parse(Self.example)
        #expect(t.name == "rebuild-on-push" && t.workspace == "shop" && t.description == "Gate every release tag of the shop images")
        guard case .receivers(let names) = t.source else { Issue.record("source \(t.source)"); return }
        #expect(names == ["harbor-prod", "registry"])
        #expect(t.workflow == TriggerDocument.WorkflowReference(name: "release-gate", version: 3))
        #expect(t.workflow.description == "release-gate@3")
        #expect(t.inputNames == ["image", "strict", "platforms"])
        #expect(t.dedupWindow == .seconds(3600))
        #expect(t.concurrencyPolicy == .forbid)
        #expect(t.rateLimit == TriggerDocument.RateLimit(count: 10, per: .seconds(60)))
        #expect(t.retry == TriggerDocument.Retry(attempts: 3, backoff: .seconds(2)))
        let inputs = try t.inputs()
        #expect(inputs.map(\.name) == ["image", "strict", "platforms"])
        #expect(try inputs[0].value.string() == "${{ event.subject.reference }}")
        #expect(inputs[0].value.position == "trigger.yaml:13:12")
        #expect(try inputs[2].value.stringList() == ["linux/amd64", "linux/arm64"])
    }

    @Test func theSelectorAndTheReceiversDecide() throws {
        let t = try parse(Self.example)
        #expect(try t.selects(event(receiver: "registry", repository: "team/shop", tag: "1.4.2")).get())
        #expect(try !t.selects(event(receiver: "other", repository: "team/shop", tag: "1.4.2")).get())
        #expect(try !t.selects(event(receiver: "registry", repository: "other/shop", tag: "1.4.2")).get())
        #expect(try !t.selects(event(receiver: "registry", repository: "team/shop", tag: "2.0")).get())
        #expect(try !t.selects(event(receiver: "registry", repository: "team/shop", tag: nil)).get())
        // Without a selector every event of the source is taken.
        let open = try parse(Self.example.replacingOccurrences(of: "  selector: ", with: "  # selector: "))
        #expect(open.selector == nil)
        #expect(try open.selects(event(receiver: "registry", repository: "x/y", tag: nil)).get())
        // A selector that fails at run time says where it is.
        let failing = try parse(Self.example.replacingOccurrences(of: "event.subject.tag.startsWith('1.')", with: "event.data.missing == 1"))
        guard case .failure(let e) = failing.selects(event(receiver: "registry", repository: "team/shop", tag: "1")) else {
            Issue.record("expected a failure")
            return
        }
        #expect(e.position.hasPrefix("trigger.yaml:10:"))
    }

    @Test func defaults() throws {
        let t = try parse(
            """
            apiVersion: warden.dev/v1
            kind: Trigger
            metadata: {name: nightly}
            spec:
              source:
                schedule: {cron: "0 3 * * *"}
              workflow: rescan
            """)
        #expect(t.workspace == "default")
        #expect(t.workflow == TriggerDocument.WorkflowReference(name: "rescan", version: nil))
        #expect(t.dedupWindow == .seconds(86_400) && t.concurrencyPolicy == .allow && t.rateLimit == nil && t.retry == nil)
        #expect(t.inputNames.isEmpty)
        #expect(try t.inputs().isEmpty)
        guard case .schedule(let s) = t.source else { Issue.record("source \(t.source)"); return }
        #expect(s.cron == "0 3 * * *" && s.timeZone == "UTC" && s.startingDeadline == nil)
        #expect(s.cronPosition == "trigger.yaml:6:22")
    }

    @Test func theOtherSources() throws {
        func source(_ yaml: String) throws -> TriggerDocument.Source {
            try parse("apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  workflow: w\n  source:\n" + yaml).source
        }
        guard case .schedule(let s) = try source("    schedule: {cron: '*/5 * * * *', timeZone: Europe/Berlin, startingDeadline: 10m}") else {
            Issue.record("schedule")
            return
        }
        #expect(s.timeZone == "Europe/Berlin" && s.startingDeadline == .seconds(600))
        guard
            case .poll(let p) = try source(
                "    poll: {registry: Registry.Example.com, repository: team/shop, interval: 1m, tags: ['v*', 'release-?']}")
        else {
            Issue.record("poll")
            return
        }
        #expect(p.registry == "registry.example.com" && p.repository == "team/shop" && p.interval == .seconds(60) && p.tags == ["v*", "release-?"])
        guard case .poll(let q) = try source("    poll: {registry: r.example, repository: a/b}") else { return }
        #expect(q.interval == .seconds(300) && q.tags.isEmpty)
        guard
            case .http(let h) = try source(
                "    http:\n      url: https://feeds.example.com/advisories.json\n      interval: 15m\n      items: response.advisories\n      id: item.id"
            )
        else {
            Issue.record("http")
            return
        }
        #expect(h.url == "https://feeds.example.com/advisories.json" && h.interval == .seconds(900))
        let items = try h.items.value(["response": try Value.parseJSON(#"{"advisories":[{"id":"A-1"}]}"#)]).get()
        #expect(items.celEquals(try Value.parseJSON(#"[{"id":"A-1"}]"#)))
        #expect(try h.id.value(["item": try Value.parseJSON(#"{"id":"A-1"}"#)]).get().celEquals(.string("A-1")))
    }

    /// Receivers may name a poller as their backstop: one trigger, so both reports of a push are one event.
    @Test func receiversWithAPollBackstop() throws {
        let t = try parse(
            "apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  workflow: w\n  source:\n"
                + "    receivers: [hub]\n    poll: {registry: reg.example, repository: team/app, tags: ['v*']}")
        guard case .receivers(let names) = t.source else { Issue.record("\(t.source)"); return }
        #expect(names == ["hub"])
        #expect(t.backstop?.registry == "reg.example" && t.backstop?.repository == "team/app" && t.backstop?.tags == ["v*"])
        #expect(throws: YAMLError.self) {
            try parse(
                "apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  workflow: w\n  source:\n"
                    + "    receivers: [hub]\n    poll: {registry: reg.example, repository: A}")
        }
        #expect(
            try parse("apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  workflow: w\n  source: {receivers: [a]}").backstop
                == nil)
    }

    /// Strict reading: each mistake is an error at its line and column.
    @Test(arguments: [
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  selectr: true", "trigger.yaml:7:3: unknown key \"selectr\""),
        (
            "spec:\n  source: {receivers: [r], schedule: {cron: x}}\n  workflow: w",
            "trigger.yaml:5:11: source needs exactly one of receivers, schedule, poll or http; found receivers and schedule"
        ),
        ("spec:\n  source: {}\n  workflow: w", "trigger.yaml:5:11: source needs exactly one"),
        ("spec:\n  workflow: w", "trigger.yaml:5:3: spec.source is missing"),
        ("spec:\n  source: {receivers: [r]}", "trigger.yaml:5:3: spec.workflow is missing"),
        ("spec:\n  source: {receivers: []}\n  workflow: w", "trigger.yaml:5:23: receivers is empty"),
        ("spec:\n  source: {receivers: [r, r]}\n  workflow: w", "trigger.yaml:5:27: receiver \"r\" is listed twice"),
        ("spec:\n  source: {receivers: [Bad_Name]}\n  workflow: w", "trigger.yaml:5:24: receiver name \"Bad_Name\" must match"),
        ("spec:\n  source: {receivers: r}\n  workflow: w", "trigger.yaml:5:23: expected a list, found a scalar"),
        (
            "spec:\n  source: {receivers: [r]}\n  workflow: w@latest",
            "trigger.yaml:6:13: workflow \"w@latest\": the version after @ must be a positive integer"
        ),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w@0", "trigger.yaml:6:13: workflow \"w@0\": the version"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: 'a b'", "trigger.yaml:6:13: workflow \"a b\" must be NAME or NAME@VERSION"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: [w]", "trigger.yaml:6:13: expected a string, found a list"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  selector: \"'yes'\"", "trigger.yaml:7:13: the condition must be a bool"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  selector: event.kind ==", "trigger.yaml:7:"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  dedupWindow: 1d", "trigger.yaml:7:16: \"1d\" is not a duration"),
        (
            "spec:\n  source: {receivers: [r]}\n  workflow: w\n  concurrencyPolicy: queue",
            "trigger.yaml:7:22: concurrencyPolicy \"queue\" is not one of: allow, forbid, replace"
        ),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  rateLimit: 10/d", "trigger.yaml:7:14: rateLimit \"10/d\" must be COUNT/UNIT"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  rateLimit: 0/s", "trigger.yaml:7:14: rateLimit \"0/s\""),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  retry: {attempts: 0}", "trigger.yaml:7:21: attempts must be between 1 and 100"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  retry: {tries: 2}", "trigger.yaml:7:11: unknown key \"tries\""),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  retry: {backoff: soon}", "trigger.yaml:7:20: \"soon\" is not a duration"),
        ("spec:\n  source: {schedule: {cron: ''}}\n  workflow: w", "trigger.yaml:5:29: cron is empty"),
        ("spec:\n  source: {schedule: {timeZone: UTC}}\n  workflow: w", "trigger.yaml:5:22: schedule.cron is missing"),
        (
            "spec:\n  source: {schedule: {cron: x, timeZone: Mars/Olympus}}\n  workflow: w",
            "trigger.yaml:5:42: timeZone \"Mars/Olympus\" is not an IANA time zone"
        ),
        (
            "spec:\n  source: {poll: {registry: 'bad host', repository: a/b}}\n  workflow: w",
            "trigger.yaml:5:29: registry \"bad host\" is not a host[:port]"
        ),
        (
            "spec:\n  source: {poll: {registry: r.example, repository: A/B}}\n  workflow: w",
            "trigger.yaml:5:52: repository \"A/B\" is not a repository name"
        ),
        (
            "spec:\n  source: {poll: {registry: r.example, repository: a/b, interval: 1s}}\n  workflow: w",
            "trigger.yaml:5:67: \"1s\" is shorter than the minimum, 10s"
        ),
        (
            "spec:\n  source: {http: {url: 'ftp://x', items: a, id: b}}\n  workflow: w",
            "trigger.yaml:5:24: url \"ftp://x\" is not an http or https URL"
        ),
        ("spec:\n  source: {http: {url: 'https://x.example', id: b}}\n  workflow: w", "trigger.yaml:5:18: http.items is missing"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  inputs: [a]", "trigger.yaml:7:11: expected a mapping, found a list"),
        ("spec:\n  source: {receivers: [r]}\n  workflow: w\n  workflow: v", "trigger.yaml: not valid YAML: Parser: expected all keys to be unique"),
    ])
    func strictErrorsHavePositions(spec: String, expected: String) {
        let text = "apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}\n" + spec
        let got = failure(text)
        #expect(got.hasPrefix(expected), "\(got)")
    }

    @Test(arguments: [
        ("kind: Trigger\nmetadata: {name: t}\nspec: {}", "trigger.yaml:1:1: apiVersion is missing"),
        ("apiVersion: warden.dev/v2\nkind: Trigger", "trigger.yaml:1:13: apiVersion must be warden.dev/v1"),
        ("apiVersion: warden.dev/v1\nkind: Workflow", "trigger.yaml:2:7: kind must be Trigger"),
        ("apiVersion: warden.dev/v1\nkind: Trigger\nspec: {}", "trigger.yaml:1:1: metadata is missing"),
        (
            "apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: Nightly}\nspec: {}",
            "trigger.yaml:3:18: name \"Nightly\" must match ^[a-z][a-z0-9-]{0,62}$"
        ),
        (
            "apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t, workspace: 'a b'}\nspec: {}",
            "trigger.yaml:3:32: workspace \"a b\" must match"
        ),
        ("apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t, labels: {}}\nspec: {}", "trigger.yaml:3:21: unknown key \"labels\""),
        ("apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}", "trigger.yaml:1:1: spec is missing"),
        ("apiVersion: warden.dev/v1\nkind: Trigger\nmetadata: {name: t}\nstatus: {}", "trigger.yaml:4:1: unknown key \"status\""),
        ("", "trigger.yaml:1:1: the document is empty"),
        ("a: &x 1\nb: *x", "trigger.yaml:1:4: YAML anchors and aliases"),
    ])
    func documentLevelErrors(text: String, expected: String) {
        let got = failure(text)
        #expect(got.hasPrefix(expected), "\(got)")
    }
}
