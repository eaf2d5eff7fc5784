import Foundation

/// The trigger tables of the in-memory twin.
struct MemoryTriggerState {
    var events: [String: EventRecord] = [:]
    var dispatches: [String: DispatchRecord] = [:]
    var leases: [String: (holder: String, epoch: Int64, expiresAt: Date)] = [:]
    var fires: [String: Set<Date>] = [:]
    var cursors: [String: [String: String]] = [:]

    mutating func record(_ event: EventRecord, _ targets: [DispatchTarget], now: Date) -> [DispatchDecision] {
        if events[event.id] == nil { events[event.id] = event }
        return targets.map { t in
            let last = dispatches.values.filter { $0.workspace == t.workspace && $0.trigger == t.trigger && $0.event == event.id }
                .max { $0.generation < $1.generation }
            if let last, now.timeIntervalSince(last.createdAt) < t.window { return .duplicate(last) }
            let d = DispatchRecord(workspace: t.workspace, trigger: t.trigger, event: event.id, generation: (last?.generation ?? 0) + 1, at: now)
            dispatches[d.key] = d
            return .created(d)
        }
    }
}

extension MemoryWorkflowStore {
    public func record(event: EventRecord, targets: [DispatchTarget], now: Date, audit: [AuditEvent]) async throws -> [DispatchDecision] {
        let out = triggers.record(event, targets, now: now)
        control.append(audit)
        return out
    }

    public func dueDispatches(now: Date, limit: Int) async throws -> [DispatchRecord] {
        Array(
            triggers.dispatches.values.filter { $0.status == .pending && $0.nextAttemptAt <= now }.sorted { $0.nextAttemptAt < $1.nextAttemptAt }
                .prefix(limit))
    }

    public func completeDispatch(key: String, run: String, at: Date, audit: [AuditEvent]) async throws {
        guard var d = triggers.dispatches[key] else { return }
        d.status = .dispatched
        d.run = run
        d.attempts += 1
        d.error = nil
        d.updatedAt = at
        triggers.dispatches[key] = d
        control.append(audit)
    }

    public func failDispatch(key: String, error: String, retryAt: Date?, at: Date, audit: [AuditEvent]) async throws {
        guard var d = triggers.dispatches[key], d.status == .pending else {
            control.append(audit)
            return
        }
        d.status = retryAt == nil ? .dead : .pending
        d.attempts += 1
        d.error = error
        if let retryAt { d.nextAttemptAt = retryAt }
        d.updatedAt = at
        triggers.dispatches[key] = d
        control.append(audit)
    }

    public func dispatch(key: String) async throws -> DispatchRecord? { triggers.dispatches[key] }

    public func dispatches(_ query: DispatchQuery) async throws -> [DispatchRecord] {
        let before = query.before.flatMap { triggers.dispatches[$0] }
        let sorted = triggers.dispatches.values.sorted { ($0.createdAt, $0.key) > ($1.createdAt, $1.key) }
        return Array(
            sorted.filter { d in
                (query.statuses.map { $0.contains(d.status) } ?? true) && (query.workspace.map { d.workspace == $0 } ?? true)
                    && (query.trigger.map { d.trigger == $0 } ?? true) && (before.map { (d.createdAt, d.key) < ($0.createdAt, $0.key) } ?? true)
            }.prefix(query.limit))
    }

    public func dispatchCount(status: DispatchRecord.Status) async throws -> Int { triggers.dispatches.values.filter { $0.status == status }.count }

    public func replayDispatch(key: String, at: Date, audit: [AuditEvent]) async throws -> Bool {
        guard var d = triggers.dispatches[key], d.status == .dead else { return false }
        d.status = .pending
        d.attempts = 0
        d.nextAttemptAt = at
        d.updatedAt = at
        triggers.dispatches[key] = d
        control.append(audit)
        return true
    }

    public func discardDispatch(key: String, at: Date, audit: [AuditEvent]) async throws -> Bool {
        guard var d = triggers.dispatches[key], d.status == .dead else { return false }
        d.status = .discarded
        d.updatedAt = at
        triggers.dispatches[key] = d
        control.append(audit)
        return true
    }

    public func event(id: String) async throws -> EventRecord? { triggers.events[id] }

    public func events(receiver: String?, before: (receivedAt: Date, id: String)?, limit: Int) async throws -> [EventRecord] {
        Array(
            triggers.events.values.filter { e in (receiver.map { e.receiver == $0 } ?? true) && (before.map { (e.receivedAt, e.id) < $0 } ?? true) }
                .sorted { ($0.receivedAt, $0.id) > ($1.receivedAt, $1.id) }.prefix(limit))
    }

    public func acquireLease(name: String, holder: String, ttl: TimeInterval, now: Date) async throws -> Int64? {
        guard let l = triggers.leases[name] else {
            triggers.leases[name] = (holder, 1, now + ttl)
            return 1
        }
        if l.holder == holder && l.expiresAt > now {
            triggers.leases[name] = (holder, l.epoch, now + ttl)
            return l.epoch
        }
        guard l.expiresAt <= now else { return nil }
        triggers.leases[name] = (holder, l.epoch + 1, now + ttl)
        return l.epoch + 1
    }

    public func releaseLease(name: String, holder: String) async throws {
        if let l = triggers.leases[name], l.holder == holder { triggers.leases[name] = (holder, l.epoch, Date(timeIntervalSince1970: 0)) }
    }

    public func recordFire(
        trigger: String, planned: Date, lease: String, holder: String, epoch: Int64, now: Date, event: EventRecord, targets: [DispatchTarget],
        audit: [AuditEvent]
    ) async throws -> [DispatchDecision]? {
        guard let l = triggers.leases[lease], l.holder == holder, l.epoch == epoch, l.expiresAt > now else { return nil }
        guard triggers.fires[trigger, default: []].insert(planned).inserted else { return nil }
        let out = triggers.record(event, targets, now: now)
        control.append(audit)
        return out
    }

    public func lastFire(trigger: String) async throws -> Date? { triggers.fires[trigger]?.max() }

    public func pollCursor(trigger: String) async throws -> [String: String] { triggers.cursors[trigger] ?? [:] }

    public func recordPoll(
        trigger: String, lease: String, holder: String, epoch: Int64, now: Date, events: [PolledEvent], cursor: [String: String?],
        audit: [AuditEvent]
    ) async throws -> [[DispatchDecision]]? {
        guard let l = triggers.leases[lease], l.holder == holder, l.epoch == epoch, l.expiresAt > now else { return nil }
        let out = events.map { triggers.record($0.event, $0.targets, now: now) }
        for (k, v) in cursor { triggers.cursors[trigger, default: [:]][k] = v }
        control.append(audit)
        return out
    }

    public func deferDispatch(key: String, until: Date, at: Date) async throws {
        guard var d = triggers.dispatches[key], d.status == .pending else { return }
        d.nextAttemptAt = until
        d.updatedAt = at
        triggers.dispatches[key] = d
    }

    public func dispatchedCount(workspace: String, trigger: String, since: Date) async throws -> Int {
        triggers.dispatches.values.filter { $0.workspace == workspace && $0.trigger == trigger && $0.status == .dispatched && $0.updatedAt >= since }
            .count
    }
}
