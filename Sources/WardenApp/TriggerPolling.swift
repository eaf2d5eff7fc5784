import CEL
import Crypto
import Documents
import Foundation
import OCI
import OCIRegistry
import Storage
import Triggers

/// What the pollers and the digest resolution of tag-only pushes (Docker Hub) ask of the outside world: a
/// registry's tags and manifests, and plain HTTP GETs. ``RegistryTriggerLookup`` is the real one.
public protocol TriggerLookup: Sendable {
    /// Every tag of `registry/repository`, following pagination.
    func tags(registry: String, repository: String) async throws -> [String]
    /// The digest and media type `registry/repository:tag` names now (a HEAD of the manifest).
    func resolve(registry: String, repository: String, tag: String) async throws -> (digest: String, mediaType: String)
    /// A GET of `url` with `headers`; the body is read up to `limit` bytes (more is an error).
    func get(url: String, headers: [(String, String)], limit: Int) async throws -> HTTPFetched
}

public struct HTTPFetched: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// What the trigger pipeline reports as it works (`warden serve` turns these into Prometheus metrics).
public protocol TriggerObserver: Sendable {
    /// An event's fate at one stage: `accepted`, `rejected`, `deduplicated`, `dispatched`, `retried`,
    /// `dead-lettered`, `rate-limited`.
    func triggerEvent(receiver: String, format: String, outcome: String)
    /// From an event's receipt to the creation of the run it started.
    func eventToRun(seconds: Double)
    /// From the time a registry says a change happened to its receipt (the sender's own delay).
    func notificationDelay(seconds: Double)
    /// How late a poll ran after it was due.
    func pollLag(seconds: Double)
    /// How late a schedule fired after its planned time.
    func scheduleLag(seconds: Double)
}

/// A poller's cursor keys that are not tags or item ids start with ":" (a tag or an `id:` key never does).
enum PollCursorKey {
    /// When the last poll ran (seconds since 1970).
    static let polled = ":polled"
    /// The poll source the cursor belongs to: a republished trigger polling something else starts afresh.
    static let source = ":source"
    /// The last poll's error, kept so that a failing poller is audited once per distinct error.
    static let error = ":error"
    static let etag = ":etag"
    static let lastModified = ":last-modified"
    static let itemPrefix = "id:"
}

extension TriggerPlane {
    /// The most tags one registry poll resolves (one HEAD each); a pattern admitting more is an error to fix.
    public static let maxPolledTags = 1000
    /// The largest HTTP poll response read, and the most items taken from it.
    public static let maxPollBody = 4 << 20
    public static let maxPollItems = 10_000
    static let maxItemID = 256

    /// What one poll round did.
    public struct PollReport: Sendable, Equatable {
        /// Pollers that ran (were due).
        public var polled = 0
        /// Events recorded, and the dispatches they made.
        public var events = 0
        public var dispatches = 0
        /// `workspace/trigger: error` for each poller that failed.
        public var errors: [String] = []
    }

    enum Poller {
        case registry(TriggerDocument.Poll)
        case http(TriggerDocument.HTTPPoll)

        var interval: Duration {
            switch self {
            case .registry(let p): p.interval
            case .http(let h): h.interval
            }
        }

        /// What the poller polls, as the cursor remembers it.
        var source: String {
            switch self {
            case .registry(let p): "registry \(p.registry)/\(p.repository) tags \(p.tags.joined(separator: ","))"
            case .http(let h): "http \(h.url) items \(h.items.source) id \(h.id.source)"
            }
        }
    }

    func poller(_ doc: TriggerDocument) -> Poller? {
        switch doc.source {
        case .poll(let p): .registry(p)
        case .http(let h): .http(h)
        case .receivers: doc.backstop.map(Poller.registry)
        case .schedule: nil
        }
    }

    /// One round of the pollers, as leader `holder` (the scheduler's lease: one server polls): each poller whose
    /// interval has passed (every one with `force`) lists its source, and records the changes it finds as events
    /// with their dispatches together with its moved cursor, fenced by the lease. A poller's first round (and the
    /// first after its source changed) only records what is there: it reports changes from then on.
    @discardableResult
    public func pollTick(holder: String, ttl: TimeInterval = 15, force: Bool = false) async throws -> PollReport {
        var report = PollReport()
        let now = control.now()
        let pollers = try await triggers().compactMap { t in poller(t.document).map { (t, $0) } }
        guard !pollers.isEmpty, let lookup,
            let epoch = try await store.acquireLease(name: "scheduler", holder: holder, ttl: ttl, now: now)
        else { return report }
        for (t, poller) in pollers {
            let key = "\(t.entry.workspace)/\(t.entry.name)"
            let cursor = try await store.pollCursor(trigger: key)
            let fresh = cursor[PollCursorKey.source] != poller.source
            // The interval holds after every round, a failed baseline included (only a republished source, whose
            // cursor names the old one, is polled at once).
            if !force, !fresh || cursor[PollCursorKey.source] == nil, let last = cursor[PollCursorKey.polled].flatMap(Double.init) {
                let due = last + seconds(poller.interval)
                guard now.timeIntervalSince1970 >= due else { continue }
                observer?.pollLag(seconds: now.timeIntervalSince1970 - due)
            }
            report.polled += 1
            let actor = "poller:\(key)"
            var changes: [String: String?] = [PollCursorKey.polled: String(now.timeIntervalSince1970), PollCursorKey.source: poller.source]
            if fresh {
                for k in cursor.keys where !k.hasPrefix(":") { changes[k] = .some(nil) }
            }
            var found: [TriggerEvent] = []
            var audit: [AuditEvent] = []
            do {
                let (events, moved) =
                    switch poller {
                    case .registry(let p): try await pollRegistry(p, lookup: lookup, cursor: fresh ? [:] : cursor)
                    case .http(let h): try await pollHTTP(h, lookup: lookup, cursor: fresh ? [:] : cursor)
                    }
                for (k, v) in moved { changes[k] = v }
                changes[PollCursorKey.error] = .some(nil)
                if fresh {
                    audit.append(
                        AuditEvent(
                            at: now, actor: actor, action: "poll.baseline", subject: "trigger/\(t.entry.name)", workspace: t.entry.workspace,
                            details: Value.object([("source", .string(poller.source)), ("entries", .int(Int64(moved.count)))]).jsonText(
                                sortedKeys: true)))
                } else {
                    found = events
                }
            } catch {
                let message = String("\(error)".prefix(2000))
                report.errors.append("\(key): \(message)")
                changes[PollCursorKey.error] = message
                // A poller that has not taken its baseline yet takes it at its next success (not reporting then
                // everything the source holds as new).
                if fresh { changes[PollCursorKey.source] = .some(nil) }
                if cursor[PollCursorKey.error] != message {
                    audit.append(
                        AuditEvent(
                            at: now, actor: actor, action: "poll.error", subject: "trigger/\(t.entry.name)", workspace: t.entry.workspace,
                            decision: "deny", details: Value.object([("error", .string(message))]).jsonText(sortedKeys: true)))
                }
            }
            var polled: [PolledEvent] = []
            for event in found {
                let selected: Bool
                switch t.document.selector.map({ $0.test(event.bindings) }) ?? .success(true) {
                case .success(let b): selected = b
                case .failure(let e):
                    selected = false
                    audit.append(
                        AuditEvent(
                            at: now, actor: actor, action: "trigger.selector-error", subject: "trigger/\(t.entry.name)", workspace: t.entry.workspace,
                            details: Value.object([("event", .string(event.id)), ("error", .string(e.description))]).jsonText()))
                }
                guard selected else { continue }
                let target = DispatchTarget(workspace: t.entry.workspace, trigger: t.entry.name, window: seconds(t.document.dedupWindow))
                let (record, entry) = try accepted(event, targets: [target], actor: actor, requestID: nil, now: now)
                polled.append(PolledEvent(event: record, targets: [target]))
                audit.append(entry)
            }
            guard
                let decisions = try await store.recordPoll(
                    trigger: key, lease: "scheduler", holder: holder, epoch: epoch, now: now, events: polled, cursor: changes, audit: audit)
            else { break }  // The lease went to another server: it polls from here on.
            report.events += polled.count
            for (event, ds) in zip(polled, decisions) {
                for d in ds {
                    if case .created = d {
                        report.dispatches += 1
                        observer?.triggerEvent(receiver: event.event.receiver, format: poller.format, outcome: "accepted")
                    } else {
                        observer?.triggerEvent(receiver: event.event.receiver, format: poller.format, outcome: "deduplicated")
                    }
                }
            }
        }
        return report
    }

    /// The tags `poll` admits, resolved: pushes for tags that are new or moved since `cursor`, and the cursor's
    /// changes (tags gone are forgotten).
    func pollRegistry(_ poll: TriggerDocument.Poll, lookup: any TriggerLookup, cursor: [String: String]) async throws
        -> ([TriggerEvent], [String: String?])
    {
        let tags = try await lookup.tags(registry: poll.registry, repository: poll.repository)
        let admitted = tags.filter { tag in poll.tags.isEmpty || poll.tags.contains { globMatch($0, tag) } }
        guard admitted.count <= Self.maxPolledTags else {
            throw ControlError(
                .invalid,
                "poll of \(poll.registry)/\(poll.repository): \(admitted.count) tags match, more than the \(Self.maxPolledTags) a poll resolves; narrow poll.tags"
            )
        }
        // One HEAD per admitted tag, 8 at a time. A tag deleted between the listing and its HEAD is skipped; when
        // every HEAD fails, the poll fails with the first error (credentials, a registry down).
        var resolved: [String: (digest: String, mediaType: String)] = [:]
        var firstError: (any Error)?
        try await withThrowingTaskGroup(of: (String, Result<(digest: String, mediaType: String), any Error>).self) { group in
            var next = admitted.makeIterator()
            func add() {
                guard let tag = next.next() else { return }
                group.addTask {
                    do { return (tag, .success(try await lookup.resolve(registry: poll.registry, repository: poll.repository, tag: tag))) } catch {
                        return (tag, .failure(error))
                    }
                }
            }
            for _ in 0..<8 { add() }
            while let (tag, result) = try await group.next() {
                switch result {
                case .success(let r): resolved[tag] = r
                case .failure(let e): if firstError == nil { firstError = e }
                }
                add()
            }
        }
        if resolved.isEmpty, let firstError { throw firstError }
        var events: [TriggerEvent] = []
        var changes: [String: String?] = [:]
        for tag in admitted.sorted() {
            guard let r = resolved[tag], cursor[tag] != r.digest else { continue }
            changes[tag] = r.digest
            var data: [(String, Value)] = [("action", .string("push"))]
            if let previous = cursor[tag] { data.append(("previous", .string(previous))) }
            events.append(
                TriggerEvent.registry(
                    kind: .registryPush,
                    subject: .init(registry: poll.registry, repository: poll.repository, tag: tag, digest: r.digest, mediaType: r.mediaType),
                    source: .init(receiver: "poll", format: "registry-poll", vendor: "warden"), data: .object(data)))
        }
        let present = Set(tags)
        for k in cursor.keys where !k.hasPrefix(":") && !present.contains(k) { changes[k] = .some(nil) }
        return (events, changes)
    }

    /// An HTTP resource's items (`items` over `response`, each identified by `id` over `item`): a `poll.change`
    /// for each id not in `cursor`. The validators (ETag, Last-Modified) are sent back, and a 304 is no change.
    func pollHTTP(_ h: TriggerDocument.HTTPPoll, lookup: any TriggerLookup, cursor: [String: String]) async throws
        -> ([TriggerEvent], [String: String?])
    {
        var headers = [("Accept", "application/json")]
        if let etag = cursor[PollCursorKey.etag] { headers.append(("If-None-Match", etag)) }
        if let modified = cursor[PollCursorKey.lastModified] { headers.append(("If-Modified-Since", modified)) }
        let response = try await lookup.get(url: h.url, headers: headers, limit: Self.maxPollBody)
        if response.status == 304 { return ([], [:]) }
        guard (200..<300).contains(response.status) else {
            throw ControlError(.invalid, "poll GET \(h.url) answered HTTP \(response.status)")
        }
        let document: Value
        do { document = try Value.parseJSON(response.body) } catch {
            throw ControlError(.invalid, "poll GET \(h.url): the body is not JSON: \(error)")
        }
        let items: [Value]
        switch h.items.value(["response": document]) {
        case .success(.list(let list)): items = list
        case .success(let other): throw ControlError(.invalid, "\(h.items.position): items gave \(other.typeName), not a list")
        case .failure(let e): throw ControlError(.invalid, e.description)
        }
        guard items.count <= Self.maxPollItems else {
            throw ControlError(.invalid, "poll GET \(h.url): \(items.count) items, more than the \(Self.maxPollItems) a poll takes")
        }
        var events: [TriggerEvent] = []
        var changes: [String: String?] = [:]
        var present: Set<String> = []
        for item in items {
            let id: String
            switch h.id.value(["item": item]) {
            case .success(.string(let s)): id = s
            case .success(.int(let i)): id = String(i)
            case .success(.uint(let u)): id = String(u)
            case .success(let other): throw ControlError(.invalid, "\(h.id.position): id gave \(other.typeName), not a string or an int")
            case .failure(let e): throw ControlError(.invalid, e.description)
            }
            guard !id.isEmpty, id.utf8.count <= Self.maxItemID else {
                throw ControlError(.invalid, "\(h.id.position): an item id is empty or longer than \(Self.maxItemID) bytes")
            }
            let key = PollCursorKey.itemPrefix + id
            guard present.insert(key).inserted else { continue }
            guard cursor[key] == nil else { continue }
            changes[key] = ""
            let eventID = "poll:" + SHA256.hash(data: Data("\(h.url)\n\(id)".utf8)).map { String(format: "%02x", $0) }.joined()
            events.append(
                TriggerEvent(
                    id: eventID, source: .init(receiver: "poll", format: "http-poll", vendor: URL(string: h.url)?.host ?? ""), kind: .pollChange,
                    data: .object([("id", .string(id)), ("url", .string(h.url)), ("item", item)])))
        }
        for k in cursor.keys where k.hasPrefix(PollCursorKey.itemPrefix) && !present.contains(k) { changes[k] = .some(nil) }
        changes[PollCursorKey.etag] = response.header("ETag")
        changes[PollCursorKey.lastModified] = response.header("Last-Modified")
        return (events, changes)
    }

    /// A tag-only push (Docker Hub's) with its digest, by a HEAD of the tag; nil when it cannot be resolved now.
    func resolveDigest(_ event: TriggerEvent) async -> Result<TriggerEvent, any Error> {
        guard let lookup else { return .failure(ControlError(.misconfigured, "no registry access to resolve \(event.subject.reference)")) }
        guard let tag = event.subject.tag else { return .success(event) }
        do {
            let r = try await lookup.resolve(registry: event.subject.registry, repository: event.subject.repository, tag: tag)
            var resolved = event.withDigest(r.digest)
            resolved.subject.mediaType = r.mediaType
            return .success(resolved)
        } catch {
            return .failure(error)
        }
    }
}

extension TriggerPlane.Poller {
    var format: String {
        switch self {
        case .registry: "registry-poll"
        case .http: "http-poll"
        }
    }
}

/// The real ``TriggerLookup``: registries through ``Registries`` (their credentials, TLS and plain-HTTP settings),
/// HTTP resources through its shared client.
public struct RegistryTriggerLookup: TriggerLookup {
    public let registries: Registries
    public init(registries: Registries) { self.registries = registries }

    /// A repository that does not exist (yet) has no tags: its first push is a change the poller reports.
    public func tags(registry: String, repository: String) async throws -> [String] {
        do {
            return try await RegistryRepository(client: try registries.client(host: registry), repository: repository).listTags()
        } catch let e as OCIError where e.code == .notFound {
            return []
        }
    }

    public func resolve(registry: String, repository: String, tag: String) async throws -> (digest: String, mediaType: String) {
        let d = try await RegistryRepository(client: try registries.client(host: registry), repository: repository).resolve(tag)
        return (d.digest.description, d.mediaType)
    }

    public func get(url: String, headers: [(String, String)], limit: Int) async throws -> HTTPFetched {
        let r = try await registries.get(url: url, headers: headers, limit: limit)
        return HTTPFetched(status: r.status, headers: r.headers, body: r.body)
    }
}
