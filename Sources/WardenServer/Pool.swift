import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Storage
import Synchronization
import WardenApp
import Workflow

/// Writes per principal per minute (a token bucket refilled continuously), answered with the draft RateLimit
/// headers.
final class RateLimiter: Sendable {
    let perMinute: Int
    let buckets = Mutex<[String: (tokens: Double, at: Double)]>([:])
    init(perMinute: Int) { self.perMinute = perMinute }

    /// Takes one write for `principal` at `now` (seconds): allowed, tokens left, seconds until one more.
    func take(_ principal: String, now: Double) -> (allowed: Bool, remaining: Int, reset: Int) {
        let rate = Double(perMinute) / 60
        return buckets.withLock { b in
            if b.count > 10_000 { b = b.filter { now - $0.value.at < 120 } }
            var (tokens, at) = b[principal] ?? (Double(perMinute), now)
            tokens = min(Double(perMinute), tokens + (now - at) * rate)
            at = now
            let allowed = tokens >= 1
            if allowed { tokens -= 1 }
            b[principal] = (tokens, at)
            let reset = tokens >= 1 ? 0 : Int(((1 - tokens) / rate).rounded(.up))
            return (allowed, Int(tokens), max(reset, allowed ? 0 : 1))
        }
    }
}

/// Drives the runs the server is asked to, at most `concurrency` at a time: runs started through the API, and at
/// start every unfinished run no live process drives (a restart resumes them). A run is driven only after the
/// store's claim makes this process its driver, so a CLI driving the same state directory and the server never
/// drive one run twice. On graceful shutdown driving stops at the next journal entry and the runs are released.
final class RunPool: Service, Sendable {
    let engine: WorkflowEngine
    let concurrency: Int
    let logger: Logger
    let metrics: ServerMetrics
    let state = Mutex<(queue: [String], queued: Set<String>, active: Set<String>, continuation: AsyncStream<Void>.Continuation?)>(
        ([], [], [], nil))
    let started = Atomic<Bool>(false)

    let times: RunTimes

    init(engine: WorkflowEngine, concurrency: Int, metrics: ServerMetrics, times: RunTimes, logger: Logger) {
        self.times = times
        self.engine = engine
        self.concurrency = concurrency
        self.metrics = metrics
        self.logger = logger
    }

    /// True once the pool is taking runs (`/readyz`).
    var running: Bool { started.load(ordering: .relaxed) }

    /// Queues `run` to be driven (once; a run already queued or driven here is not queued again).
    func submit(_ run: String) {
        let depth: Int? = state.withLock { s in
            guard !s.queued.contains(run), !s.active.contains(run) else { return nil }
            s.queue.append(run)
            s.queued.insert(run)
            s.continuation?.yield()
            return s.queue.count
        }
        if let depth { metrics.setQueueDepth(depth) }
    }

    var activeRuns: Int { state.withLock { $0.active.count } }

    func run() async throws {
        let (wakeups, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.continuation = continuation }
        // Every unfinished run nobody drives: a restart resumes what was in flight.
        for r in try await engine.store.runs(statuses: [.queued, .running, .waiting], limit: Int.max)
        where r.parent == nil && (r.owner == nil || EngineConfiguration.ownerIsGone(r.owner!)) {
            submit(r.id)
        }
        started.store(true, ordering: .relaxed)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                var iterator = wakeups.makeAsyncIterator()
                while !Task.isCancelled {
                    while let id = self.next() {
                        group.addTask { await self.drive(id) }
                    }
                    guard await iterator.next() != nil else { break }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
        started.store(false, ordering: .relaxed)
    }

    /// The next queued run when a slot is free.
    func next() -> String? {
        let r: (String, Int)? = state.withLock { s in
            guard s.active.count < concurrency, !s.queue.isEmpty else { return nil }
            let id = s.queue.removeFirst()
            s.queued.remove(id)
            s.active.insert(id)
            return (id, s.queue.count)
        }
        if let r { metrics.setQueueDepth(r.1) }
        return r?.0
    }

    func drive(_ id: String) async {
        do {
            if let r = try await engine.store.run(id: id) { times.name(id, r.workflow) }
            let record = try await engine.drive(id)
            logger.info("run finished", metadata: ["run": "\(id)", "status": "\(record.status)"])
        } catch let e as WorkflowError where e.code == .conflict {
            logger.debug("run driven elsewhere", metadata: ["run": "\(id)"])
        } catch  where error is CancellationError || Task.isCancelled {
            logger.notice("run released at shutdown", metadata: ["run": "\(id)"])
        } catch {
            logger.error("driving failed", metadata: ["run": "\(id)", "error": "\(error)"])
        }
        state.withLock { s in
            s.active.remove(id)
            s.continuation?.yield()
        }
    }
}

/// Signs an audit checkpoint every `interval` seconds when the log grew, and once more at shutdown.
struct CheckpointService: Service {
    let store: any ControlStore
    let key: Curve25519.Signing.PrivateKey
    let interval: Double
    let logger: Logger

    func run() async throws {
        let last = Mutex<Int64>(try await store.checkpoints().last?.count ?? -1)
        let (store, key, logger) = (self.store, self.key, self.logger)
        @Sendable func sign() async {
            do {
                let count = try await store.auditCount()
                guard count != last.withLock({ $0 }) else { return }
                try await AuditJob.checkpoint(store, key: key)
                last.withLock { $0 = count }
            } catch {
                logger.error("audit checkpoint failed", metadata: ["error": "\(error)"])
            }
        }
        await sign()
        let interval = self.interval
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(interval))
                await sign()
            }
        }
        await sign()
    }
}

/// The trigger pipeline's background work: dispatches due (woken at once by a delivery, otherwise every 250 ms, so
/// retries and a restart's leftovers are picked up), and the scheduler's tick once a second under the leader lease.
final class TriggerService: Service, Sendable {
    let triggers: TriggerPlane
    let pool: RunPool
    let holder: String
    let logger: Logger
    let kicked = Atomic<Bool>(false)

    init(triggers: TriggerPlane, pool: RunPool, logger: Logger) {
        self.triggers = triggers
        self.pool = pool
        self.logger = logger
        holder = ProcessInfo.processInfo.hostName + ":\(getpid()):" + UUID().uuidString.prefix(8)
    }

    /// A delivery recorded dispatches: dispatch them now.
    func kick() { kicked.store(true, ordering: .releasing) }

    func run() async throws {
        let (triggers, pool, logger, holder) = (self.triggers, self.pool, self.logger, self.holder)
        try? await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        self.kicked.store(false, ordering: .relaxed)
                        do {
                            while true {
                                let runs = try await triggers.dispatchDue()
                                for r in runs { pool.submit(r.id) }
                                if runs.isEmpty { break }
                            }
                        } catch {
                            logger.error("trigger dispatch failed", metadata: ["error": "\(error)"])
                        }
                        // The next delivery (a kick, seen within 5 ms), or 250 ms for retries that came due.
                        for _ in 0..<50 where !self.kicked.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            if try await triggers.scheduleTick(holder: holder) > 0 { self.kick() }
                        } catch {
                            logger.error("scheduler tick failed", metadata: ["error": "\(error)"])
                        }
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                // The pollers, apart from the scheduler: a slow registry must not delay a schedule's fire.
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            let report = try await triggers.pollTick(holder: holder)
                            if report.dispatches > 0 { self.kick() }
                            for e in report.errors { logger.warning("poll failed", metadata: ["error": "\(e)"]) }
                        } catch {
                            logger.error("poll round failed", metadata: ["error": "\(error)"])
                        }
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                try await group.waitForAll()
            }
        }
        try? await triggers.control.store.releaseLease(name: "scheduler", holder: holder)
    }
}
