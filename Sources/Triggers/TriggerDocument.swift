import CEL
import Documents
import Foundation

/// A trigger (YAML, `kind: Trigger`): where its events come from, which of them it selects, and the workflow it
/// starts with which inputs. Read strictly: unknown keys, wrong types and bad values are ``YAMLError``s with file,
/// line and column.
///
/// ```yaml
/// apiVersion: warden.dev/v1
/// kind: Trigger
/// metadata:
///   name: rebuild-on-push
///   workspace: default             # default "default"
/// spec:
///   source:                        # exactly one of receivers, schedule, poll, http (receivers may add a poll)
///     receivers: [harbor-prod]
///     poll: {registry: harbor.example.com, repository: team/app, interval: 5m}   # optional backstop
///   selector: event.kind == 'registry.push' && event.subject.repository.matches('^team/')
///   workflow: release-gate@3       # a name (its latest version when fired) or name@version
///   inputs:
///     image: ${{ event.subject.reference }}
///   dedupWindow: 24h               # default 24h; 0s keeps no memory of events
///   concurrencyPolicy: forbid      # allow (default), forbid, replace
///   rateLimit: 10/m                # runs per s, m or h
///   retry: {attempts: 5, backoff: 1s}
/// ```
public struct TriggerDocument: Sendable {
    /// The workflow a trigger starts: `name`, meaning the latest version at the time the trigger fires, or
    /// `name@version`, pinned.
    public struct WorkflowReference: Sendable, Equatable, CustomStringConvertible {
        public var name: String
        public var version: Int?
        public init(name: String, version: Int? = nil) {
            self.name = name
            self.version = version
        }
        public var description: String { version.map { "\(name)@\($0)" } ?? name }
    }

    public enum Source: Sendable {
        /// Events from these receivers (`POST /api/v1/hooks/{name}`).
        case receivers([String])
        case schedule(Schedule)
        /// A poller of one repository's tags (it reports `registry.push` and `registry.tag` events, whose ids match
        /// a webhook's for the same change).
        case poll(Poll)
        /// A poller of an HTTP resource (it reports `poll.change` events).
        case http(HTTPPoll)
    }

    public struct Schedule: Sendable {
        /// The cron expression as written (parsed by the scheduler).
        public var cron: String
        /// `file:line:col` of the cron expression, for the scheduler's errors.
        public var cronPosition: String
        /// An IANA zone (`Europe/Berlin`); `UTC` by default.
        public var timeZone: String
        /// How late a missed tick may still fire (after downtime); nil: missed ticks are skipped.
        public var startingDeadline: Duration?
        /// A fixed-hour time the clocks sprang over: fired just after the gap (default) or not that day.
        public var skippedTimes: Triggers.Schedule.SkippedTimes = .fireAfterGap
    }

    public struct Poll: Sendable {
        public var registry: String
        public var repository: String
        public var interval: Duration
        /// Tag globs (`v*`, `release-?.*`); empty: every tag.
        public var tags: [String]
    }

    public struct HTTPPoll: Sendable {
        public var url: String
        public var interval: Duration
        /// Evaluated with `response` (the body as JSON) to the list of items.
        public var items: CELCondition
        /// Evaluated with `item` to the item's id (the event's id: an item seen before is not reported again).
        public var id: CELCondition
    }

    public enum ConcurrencyPolicy: String, Sendable, CaseIterable {
        /// Start a run for every event.
        case allow
        /// Skip an event while a run of this trigger is unfinished.
        case forbid
        /// Cancel the unfinished run and start one for the new event.
        case replace
    }

    /// At most `count` runs started per `per`.
    public struct RateLimit: Sendable, Equatable {
        public var count: Int
        public var per: Duration
    }

    public struct Retry: Sendable, Equatable {
        /// Attempts to start the run, the first included.
        public var attempts: Int
        /// The wait before the second attempt, doubling after each one.
        public var backoff: Duration
    }

    public var name: String
    public var workspace: String
    public var description: String?
    public var source: Source
    /// A poller beside a `receivers` source (`source: {receivers: […], poll: {…}}`): it reports the changes a
    /// receiver's registry failed to deliver, under the same derived event ids, so both reports make one run.
    public var backstop: Poll?
    /// Which events start a run (bound as `event`, see ``TriggerEvent/celValue``); nil: every event of the source.
    public var selector: CELCondition?
    public var workflow: WorkflowReference
    /// The names under `inputs`, in document order (their values: ``inputs()``).
    public var inputNames: [String]
    public var dedupWindow: Duration
    public var concurrencyPolicy: ConcurrencyPolicy
    public var rateLimit: RateLimit?
    public var retry: Retry?
    /// The document's text and file name, from which ``inputs()`` are read.
    public let text: String
    public let file: String

    static let topKeys = ["apiVersion", "kind", "metadata", "spec"]
    static let metadataKeys = ["name", "workspace", "description"]
    static let specKeys = ["source", "selector", "workflow", "inputs", "dedupWindow", "concurrencyPolicy", "rateLimit", "retry"]
    static let sourceKeys = ["receivers", "schedule", "poll", "http"]
    static let scheduleKeys = ["cron", "timeZone", "startingDeadline", "skippedTimes"]
    static let pollKeys = ["registry", "repository", "interval", "tags"]
    static let httpKeys = ["url", "interval", "items", "id"]
    static let retryKeys = ["attempts", "backoff"]
    /// The shortest poll interval: a poller must not hammer a registry or an HTTP service.
    public static let minimumInterval: Duration = .seconds(10)
    static let defaultInterval: Duration = .seconds(300)

    /// The inputs as written, each a YAML value with its position: `${{ }}` expressions in them are the workflow
    /// engine's to parse. (They are read again from ``text``: a YAML node is not `Sendable`, the document is.)
    public func inputs() throws -> [(name: String, value: YAMLValue)] {
        let root = try YAMLValue.parse(text, file: file)
        guard let spec = try root.fields(allowed: Self.topKeys)["spec"], let inputs = try spec.fields(allowed: Self.specKeys)["inputs"] else {
            return []
        }
        return try inputs.mapping(allowed: nil).map { (name: $0.key, value: $0.value) }
    }

    /// Whether the trigger starts a run for `event`: a receiver trigger takes events of its receivers only, and the
    /// selector (if any) must hold. A selector that fails to evaluate is a failure with its position.
    public func selects(_ event: TriggerEvent) -> Result<Bool, YAMLError> {
        if case .receivers(let names) = source, !names.contains(event.source.receiver) { return .success(false) }
        guard let selector else { return .success(true) }
        return selector.test(event.bindings)
    }

    /// Reads a trigger document; errors are ``YAMLError``s positioned at the offending key or value.
    public static func parse(_ text: String, file: String) throws -> TriggerDocument {
        let root = try YAMLValue.parse(text, file: file)
        let top = try root.fields(allowed: topKeys)
        guard let api = top["apiVersion"] else { throw root.error("apiVersion is missing (expected warden.dev/v1)") }
        guard try api.string() == "warden.dev/v1" else { throw api.error("apiVersion must be warden.dev/v1") }
        guard let kind = top["kind"] else { throw root.error("kind is missing (expected Trigger)") }
        guard try kind.string() == "Trigger" else { throw kind.error("kind must be Trigger") }

        guard let metadataValue = top["metadata"] else { throw root.error("metadata is missing: a trigger needs metadata.name") }
        let metadata = try metadataValue.fields(allowed: metadataKeys)
        guard let nameValue = metadata["name"] else { throw metadataValue.error("metadata.name is missing") }
        let name = try nameValue.string()
        guard ReceiverConfig.isName(name) else { throw nameValue.error("name \(Names.quoted(name)) must match ^[a-z][a-z0-9-]{0,62}$") }
        var workspace = "default"
        if let w = metadata["workspace"] {
            workspace = try w.string()
            guard ReceiverConfig.isName(workspace) else { throw w.error("workspace \(Names.quoted(workspace)) must match ^[a-z][a-z0-9-]{0,62}$") }
        }

        guard let specValue = top["spec"] else { throw root.error("spec is missing: a trigger needs spec.source and spec.workflow") }
        let spec = try specValue.fields(allowed: specKeys)
        guard let sourceValue = spec["source"] else { throw specValue.error("spec.source is missing (receivers, schedule, poll or http)") }
        let (source, backstop) = try parseSource(sourceValue)

        let selector = try spec["selector"].map { try CELCondition($0, boolean: true) }
        guard let workflowValue = spec["workflow"] else { throw specValue.error("spec.workflow is missing (name or name@version)") }
        let workflow = try parseWorkflow(workflowValue)

        var inputNames: [String] = []
        if let inputs = spec["inputs"] {
            for (key, _) in try inputs.mapping(allowed: nil) {
                guard !key.isEmpty else { throw inputs.error("an input name is empty") }
                inputNames.append(key)
            }
        }
        let dedupWindow = try spec["dedupWindow"].map { try duration($0, minimum: .zero) } ?? .seconds(24 * 3600)
        var policy = ConcurrencyPolicy.allow
        if let p = spec["concurrencyPolicy"] {
            let text = try p.string()
            guard let parsed = ConcurrencyPolicy(rawValue: text) else {
                throw p.error("concurrencyPolicy \(Names.quoted(text)) is not one of: allow, forbid, replace")
            }
            policy = parsed
        }
        let rateLimit = try spec["rateLimit"].map(parseRateLimit)
        var retry: Retry?
        if let r = spec["retry"] {
            let f = try r.fields(allowed: retryKeys)
            var attempts = 5
            if let a = f["attempts"] {
                attempts = try a.int()
                guard (1...100).contains(attempts) else { throw a.error("attempts must be between 1 and 100, not \(attempts)") }
            }
            retry = Retry(attempts: attempts, backoff: try f["backoff"].map { try duration($0, minimum: .milliseconds(1)) } ?? .seconds(1))
        }
        return TriggerDocument(
            name: name, workspace: workspace, description: try metadata["description"]?.string(), source: source, backstop: backstop,
            selector: selector,
            workflow: workflow, inputNames: inputNames, dedupWindow: dedupWindow, concurrencyPolicy: policy, rateLimit: rateLimit, retry: retry,
            text: text, file: file)
    }

    static func parseSource(_ v: YAMLValue) throws -> (Source, Poll?) {
        let f = try v.fields(allowed: sourceKeys)
        // Receivers with a poller of the same repository as their backstop: one trigger, so a push reported by both
        // is one event id and one run.
        if f.count == 2, let receivers = f["receivers"], let poll = f["poll"] {
            guard case .receivers(let names) = try parseSource(one: "receivers", receivers),
                case .poll(let p) = try parseSource(one: "poll", poll)
            else { throw v.error("unreachable") }
            return (.receivers(names), p)
        }
        guard f.count == 1, let (key, value) = f.first.map({ ($0.key, $0.value) }) else {
            let given = f.keys.sorted()
            throw v.error(
                "source needs exactly one of receivers, schedule, poll or http\(given.isEmpty ? "" : "; found \(given.joined(separator: " and "))")")
        }
        return (try parseSource(one: key, value), nil)
    }

    static func parseSource(one key: String, _ value: YAMLValue) throws -> Source {
        switch key {
        case "receivers":
            let list = try value.list()
            guard !list.isEmpty else { throw value.error("receivers is empty: name at least one receiver") }
            var names: [String] = []
            for item in list {
                let n = try item.string()
                guard ReceiverConfig.isName(n) else { throw item.error("receiver name \(Names.quoted(n)) must match ^[a-z][a-z0-9-]{0,62}$") }
                guard !names.contains(n) else { throw item.error("receiver \(Names.quoted(n)) is listed twice") }
                names.append(n)
            }
            return .receivers(names)
        case "schedule":
            let s = try value.fields(allowed: scheduleKeys)
            guard let cronValue = s["cron"] else { throw value.error("schedule.cron is missing (for example \"0 3 * * *\")") }
            let cron = try cronValue.string().trimmingCharacters(in: .whitespaces)
            guard !cron.isEmpty else { throw cronValue.error("cron is empty") }
            var zone = "UTC"
            if let z = s["timeZone"] {
                zone = try z.string()
                guard TimeZone(identifier: zone) != nil else {
                    throw z.error("timeZone \(Names.quoted(zone)) is not an IANA time zone (like Europe/Berlin)")
                }
            }
            let deadline = try s["startingDeadline"].map { try duration($0, minimum: .seconds(1)) }
            var skipped = Triggers.Schedule.SkippedTimes.fireAfterGap
            if let v = s["skippedTimes"] {
                switch try v.string() {
                case "fireAfterGap": skipped = .fireAfterGap
                case "skip": skipped = .skip
                case let other: throw v.error("skippedTimes \(Names.quoted(other)) must be fireAfterGap or skip")
                }
            }
            return .schedule(
                Schedule(cron: cron, cronPosition: cronValue.position, timeZone: zone, startingDeadline: deadline, skippedTimes: skipped))
        case "poll":
            let p = try value.fields(allowed: pollKeys)
            guard let r = p["registry"] else { throw value.error("poll.registry is missing") }
            let registry = try r.string()
            guard Names.isHost(registry) else { throw r.error("registry \(Names.quoted(registry)) is not a host[:port]") }
            guard let repo = p["repository"] else { throw value.error("poll.repository is missing") }
            let repository = try repo.string()
            guard Names.isRepository(repository) else {
                throw repo.error("repository \(Names.quoted(repository)) is not a repository name (lower-case components joined by /)")
            }
            var tags: [String] = []
            for t in try p["tags"]?.list() ?? [] {
                let glob = try t.string()
                guard !glob.isEmpty else { throw t.error("a tag pattern is empty") }
                tags.append(glob)
            }
            let interval = try p["interval"].map { try duration($0, minimum: minimumInterval) } ?? defaultInterval
            return .poll(Poll(registry: registry.lowercased(), repository: repository, interval: interval, tags: tags))
        default:
            let h = try value.fields(allowed: httpKeys)
            guard let u = h["url"] else { throw value.error("http.url is missing") }
            let url = try u.string()
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host?.isEmpty == false else {
                throw u.error("url \(Names.quoted(url)) is not an http or https URL")
            }
            guard let items = h["items"] else { throw value.error("http.items is missing (a CEL expression over response giving the list of items)") }
            guard let id = h["id"] else { throw value.error("http.id is missing (a CEL expression over item giving its id)") }
            let interval = try h["interval"].map { try duration($0, minimum: minimumInterval) } ?? defaultInterval
            return .http(
                HTTPPoll(url: url, interval: interval, items: try CELCondition(items, boolean: false), id: try CELCondition(id, boolean: false)))
        }
    }

    /// `name` or `name@version`: name `[A-Za-z0-9._-]{1,128}`, version a positive integer.
    static func parseWorkflow(_ v: YAMLValue) throws -> WorkflowReference {
        let text = try v.string()
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard !name.isEmpty, name.utf8.count <= 128,
            name.utf8.allSatisfy({ Names.isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { throw v.error("workflow \(Names.quoted(text)) must be NAME or NAME@VERSION (NAME of letters, digits, . _ -)") }
        guard parts.count == 2 else { return WorkflowReference(name: name) }
        guard let version = Int(parts[1]), version >= 1, parts[1].allSatisfy(\.isASCII) else {
            throw v.error("workflow \(Names.quoted(text)): the version after @ must be a positive integer (omit it for the latest)")
        }
        return WorkflowReference(name: name, version: version)
    }

    /// `N/s`, `N/m` or `N/h` (also `second`, `minute`, `hour`).
    static func parseRateLimit(_ v: YAMLValue) throws -> RateLimit {
        let text = try v.string()
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let per: [String: Duration] = [
            "s": .seconds(1), "second": .seconds(1), "m": .seconds(60), "minute": .seconds(60), "h": .seconds(3600), "hour": .seconds(3600),
        ]
        guard parts.count == 2, let count = Int(parts[0]), count >= 1, parts[0].allSatisfy(\.isASCII), let unit = per[parts[1]] else {
            throw v.error("rateLimit \(Names.quoted(text)) must be COUNT/UNIT with a positive COUNT and UNIT s, m or h (like 10/m)")
        }
        return RateLimit(count: count, per: unit)
    }

    static func duration(_ v: YAMLValue, minimum: Duration) throws -> Duration {
        let text = try v.string()
        guard let d = Duration.parse(text) else { throw v.error("\(Names.quoted(text)) is not a duration (like 30s, 5m, 1h30m)") }
        guard d >= minimum else {
            let shortest = minimum < .seconds(1) ? "\(minimum.components.attoseconds / 1_000_000_000_000_000)ms" : "\(minimum.components.seconds)s"
            throw v.error("\(Names.quoted(text)) is shorter than the minimum, \(shortest)")
        }
        return d
    }
}
