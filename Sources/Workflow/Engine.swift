import CEL
import Documents
import Foundation
import Storage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How the engine runs: where attempts work and log, and how many run at once.
public struct EngineConfiguration: Sendable {
    /// Holds `runs/RUN/{work,logs}` and the artifact store `artifacts/sha256/`.
    public var stateDirectory: String
    /// Attempts in flight across all runs of this process.
    public var globalConcurrency: Int
    /// Attempts in flight in one run.
    public var runConcurrency: Int
    /// How often a driver looks for signals (approvals, cancellation) from other processes.
    public var pollInterval: Duration
    /// This process, as recorded as the driver of the runs it drives: `host:pid`.
    public var owner: String
    /// Secrets for the credential slots actions ask for, by slot name.
    public var credentials: [String: String]
    /// Times in a row the process driving a run may crash (a fault signal, see `CrashTrace`) while one unit's attempt
    /// is in flight before that unit fails instead of starting again: an action that crashes its driver must not
    /// restart forever. A driver that is killed or loses power does not count.
    public var interruptionLimit = 3
    /// The largest outputs (JSON bytes) a step, an iteration or a run may journal; larger results belong in
    /// artifacts.
    public var journalValueLimit = 16 << 20
    /// The time the engine decides by (see `EngineClock` for what it governs): the wall clock, or a `ManualClock` in
    /// tests.
    public var clock: any EngineClock

    public init(
        stateDirectory: String, globalConcurrency: Int = 32, runConcurrency: Int = 8, pollInterval: Duration = .milliseconds(200),
        credentials: [String: String] = [:], clock: any EngineClock = SystemClock()
    ) {
        self.stateDirectory =
            stateDirectory.hasPrefix("/") ? stateDirectory : FileManager.default.currentDirectoryPath + "/" + stateDirectory
        self.globalConcurrency = globalConcurrency
        self.runConcurrency = runConcurrency
        self.pollInterval = pollInterval
        self.owner = Self.processOwner
        self.credentials = credentials
        self.clock = clock
    }

    public static var processOwner: String {
        "\(ProcessInfo.processInfo.hostName):\(getpid())"
    }

    /// True when `owner` names a process of this host that no longer exists.
    public static func ownerIsGone(_ owner: String) -> Bool {
        let parts = owner.split(separator: ":")
        guard parts.count == 2, let pid = Int32(parts[1]) else { return true }
        guard String(parts[0]) == ProcessInfo.processInfo.hostName else { return false }
        if pid == getpid() { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}

/// A workflow error: an extensible code (equality on the code, as swift-certificates does) and a reason that names
/// the run, step or input. Surfaces map the code (`ErrorDisposition`): `invalid` is an HTTP 400, `notFound` a 404,
/// `conflict` a 409, `forbidden` a 403; a command exits 1 with the reason.
public struct WorkflowError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// A definition, input or argument that cannot be used as given.
        public static let invalid = Code(rawValue: "invalid")
        /// No such run or step.
        public static let notFound = Code(rawValue: "not-found")
        /// The run is in a state that refuses the request (finished, driven by another live process).
        public static let conflict = Code(rawValue: "conflict")
        /// Who asks may not do it (not an approver of the step).
        public static let forbidden = Code(rawValue: "forbidden")
        /// Anything else (storage, files).
        public static let failed = Code(rawValue: "failed")
    }

    public var code: Code
    public var description: String
    public init(_ description: String) { self.init(.invalid, description) }
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    public static func == (a: WorkflowError, b: WorkflowError) -> Bool { a.code == b.code }
}

/// Measurements for benchmarks: journal entries written and the delay between a step's completion and the start of
/// the step that waited for it.
public final class EngineStats: Sendable {
    let state = Mutex<(entries: Int, latencies: [Double])>((0, []))
    public init() {}
    public var entries: Int { state.withLock { $0.entries } }
    /// Seconds from a dependency's completion to the dependent attempt's start (after its journal commit).
    public var latencies: [Double] { state.withLock { $0.latencies } }
}

/// Runs workflows durably: every transition is committed to the store's journal before it is acted on; a run
/// resumes from its journal after a crash (completed steps are never re-run, in-flight attempts are retried under a
/// new attempt number, timers and approvals keep waiting).
public final class WorkflowEngine: Sendable {
    public let store: any WorkflowStore
    public let catalog: ActionCatalog
    public let configuration: EngineConfiguration
    public let stats = EngineStats()
    /// `configuration.clock`.
    public var clock: any EngineClock { configuration.clock }
    let limiter: Limiter
    /// Called after each commit with the run and the entries committed (the CLI's live display).
    let observer: (@Sendable (String, [JournalEntry]) -> Void)?

    public init(
        store: any WorkflowStore, catalog: ActionCatalog, configuration: EngineConfiguration,
        observer: (@Sendable (String, [JournalEntry]) -> Void)? = nil
    ) {
        self.store = store
        self.catalog = catalog
        self.configuration = configuration
        self.limiter = Limiter(configuration.globalConcurrency)
        self.observer = observer
    }

    /// Parsed definitions by file and text: runs of one workflow share one parse.
    let definitions = Mutex<[String: WorkflowDefinition]>([:])

    /// Parses a definition against this engine's catalogue.
    public func parse(_ text: String, file: String) throws -> WorkflowDefinition {
        let key = file + "\u{0}" + text
        if let def = definitions.withLock({ $0[key] }) { return def }
        let def = try WorkflowDefinition.parse(text, file: file, actions: catalog.versions)
        definitions.withLock { d in
            if d.count >= 256 { d.removeAll() }
            d[key] = def
        }
        return def
    }

    /// Creates a run (committed with its `run.created` entry and the audit entries `audit` gives for its id) — or
    /// returns the run that has the same idempotency key. Inputs are checked against the definition's declarations.
    public func start(
        file: String, text: String, inputs: [String: Value], idempotencyKey: String? = nil, parent: String? = nil,
        workspace: String = RunRecord.defaultWorkspace, labels: [String: String] = [:], audit: (@Sendable (String) -> [AuditEvent])? = nil
    ) async throws -> (run: RunRecord, created: Bool) {
        let def = try parse(text, file: file)
        let bound = try def.bind(inputs)
        let id = Self.newRunID()
        let now = clock.now()
        let record = RunRecord(
            id: id, workflow: def.name, file: file, definition: text, inputs: bound.jsonText(sortedKeys: true), idempotencyKey: idempotencyKey,
            parent: parent, createdAt: now, workspace: workspace,
            labels: Value.object(labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).jsonText(sortedKeys: true))
        var data: [(String, Value)] = [("inputs", bound)]
        if let idempotencyKey { data.append(("idempotencyKey", .string(idempotencyKey))) }
        let entry = JournalEntry(run: id, type: "run.created", data: Value.object(data).jsonText(), at: now)
        let result = try await store.create(record, entries: [entry], audit: audit?(id) ?? [])
        if result.created { observer?(id, [entry]) }
        return result
    }

    static func newRunID() -> String {
        let ms = UInt64(Date().timeIntervalSince1970 * 1000)
        var random = SystemRandomNumberGenerator()
        return String(ms, radix: 16) + String(format: "%06x", random.next() & 0xFF_FFFF)
    }

    /// Drives `runID` until it finishes; returns its final record. Fails when another live process drives it.
    @discardableResult
    public func drive(_ runID: String) async throws -> RunRecord {
        guard let record = try await store.run(id: runID) else { throw WorkflowError(.notFound, "no run \(runID)") }
        if record.finished { return record }
        guard try await store.claim(run: runID, owner: configuration.owner, isGone: EngineConfiguration.ownerIsGone) else {
            throw WorkflowError(
                .conflict, "run \(runID) is driven by \(record.owner ?? "another process"); approve, reject or cancel it with warden runs")
        }
        CrashTrace.install(stateDirectory: configuration.stateDirectory, owner: configuration.owner)
        let def = try parse(record.definition, file: record.file)
        let driver = RunDriver(engine: self, record: record, definition: def)
        do {
            try await driver.drive()
        } catch {
            // Released even when the driving task was cancelled (a graceful shutdown): the release runs outside the
            // cancelled task, so the next driver need not wait for this process to end.
            let (store, owner) = (self.store, configuration.owner)
            await Task { try? await store.release(run: runID, owner: owner) }.value
            throw error
        }
        try await store.release(run: runID, owner: configuration.owner)
        return try await store.run(id: runID) ?? record
    }

    /// Drives every unfinished run no live process drives, together; returns them as they ended.
    public func resumeAll() async throws -> [RunRecord] {
        let open = try await store.runs(statuses: ["queued", "running", "waiting"], limit: Int.max)
            .filter { $0.parent == nil && ($0.owner == nil || EngineConfiguration.ownerIsGone($0.owner!)) }
        return try await withThrowingTaskGroup(of: RunRecord.self) { group in
            for r in open { group.addTask { try await self.drive(r.id) } }
            var out: [RunRecord] = []
            for try await r in group { out.append(r) }
            return out
        }
    }

    /// Records a request to cancel `runID`; the driving process stops its attempts. A run nobody drives is finished
    /// here.
    public func cancel(_ runID: String, by: String, audit: [AuditEvent] = []) async throws {
        guard let record = try await store.run(id: runID) else { throw WorkflowError(.notFound, "no run \(runID)") }
        guard !record.finished else { throw WorkflowError(.conflict, "run \(runID) already \(record.status)") }
        try await store.signal(RunSignal(run: runID, kind: "cancel", by: by, at: clock.now()), audit: audit)
    }

    /// Records an approval decision for `step` of `runID`, after checking that the step is an approval that waits and
    /// that `by` is one of its approvers.
    public func decide(_ runID: String, step: String, approve: Bool, by: String, comment: String?, audit: [AuditEvent] = []) async throws {
        guard let record = try await store.run(id: runID) else { throw WorkflowError(.notFound, "no run \(runID)") }
        guard !record.finished else { throw WorkflowError(.conflict, "run \(runID) already \(record.status)") }
        let def = try parse(record.definition, file: record.file)
        guard let s = def.steps.first(where: { $0.id == step }) else {
            throw WorkflowError(.notFound, "run \(runID) has no step \"\(step)\" (steps: \(def.steps.map(\.id).joined(separator: ", ")))")
        }
        guard case .approval(let a) = s.kind else { throw WorkflowError("step \"\(step)\" is not an approval") }
        if !a.approvers.isEmpty && !a.approvers.contains(by) {
            throw WorkflowError(.forbidden, "\(by) is not an approver of step \"\(step)\" (approvers: \(a.approvers.joined(separator: ", ")))")
        }
        let state = RunState.replay(try await store.journal(run: runID), stepIDs: def.steps.map(\.id))
        guard state.steps[step]?.status == .waiting else {
            throw WorkflowError(.conflict, "step \"\(step)\" is \(state.steps[step]?.status.rawValue ?? "unknown"), not waiting for approval")
        }
        try await store.signal(
            RunSignal(run: runID, kind: approve ? "approve" : "reject", step: step, by: by, comment: comment, at: clock.now()), audit: audit)
    }

    /// The run's state folded from its journal.
    public func state(of record: RunRecord) async throws -> (WorkflowDefinition, RunState) {
        let def = try parse(record.definition, file: record.file)
        return (def, RunState.replay(try await store.journal(run: record.id), stepIDs: def.steps.map(\.id)))
    }

    func runDirectory(_ run: String) -> String { configuration.stateDirectory + "/runs/" + run }

    public func logFile(run: String, step: String, item: Int, attempt: Int) -> String {
        runDirectory(run) + "/logs/\(step)\(item > 0 ? "-\(item)" : "").\(attempt).log"
    }

    public var artifactDirectory: String { configuration.stateDirectory + "/artifacts/sha256" }
}

/// The trace a driver leaves when it dies of a fault (SIGILL — a Swift trap —, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE or
/// SIGABRT): an empty file `crashes/HOST:PID` in the state directory, made by a signal handler with nothing but
/// `open`, which then hands the signal on to whatever handled it before (the Swift runtime's backtracer, or the
/// default; such a signal sent by another process ends Warden as its default action does). The next driver of the run tells a crash from a process that was merely stopped (SIGKILL, a power cut),
/// and only crashes count towards `interruptionLimit`.
enum CrashTrace {
    static let signals = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT]
    nonisolated(unsafe) static var path: UnsafeMutablePointer<CChar>? = nil
    nonisolated(unsafe) static var previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
    static let installed = Mutex(false)

    static func file(stateDirectory: String, owner: String) -> String { stateDirectory + "/crashes/" + owner }

    /// Installs the handler once per process, for the first state directory that drives a run; a trace this process's
    /// owner name left earlier (a previous process with the same pid) is removed.
    static func install(stateDirectory: String, owner: String) {
        installed.withLock { done in
            guard !done else { return }
            done = true
            let file = file(stateDirectory: stateDirectory, owner: owner)
            try? PrivateFiles.createDirectory(stateDirectory + "/crashes")
            unlink(file)
            path = strdup(file)
            for sig in signals {
                var action = sigaction()
                action.__sigaction_handler.sa_sigaction = { sig, info, _ in
                    if let p = CrashTrace.path {
                        let fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                        if fd >= 0 { close(fd) }
                    }
                    let sent = (info?.pointee.si_code ?? 0) <= 0
                    let byItself = sent && info?.pointee._sifields._kill.si_pid == getpid()
                    if sent && !byItself {
                        // Sent by another process: it ends this one, as the signal's default action does (a
                        // backtracer that handles it would let the process go on).
                        signal(sig, SIG_DFL)
                        raise(sig)
                        return
                    }
                    // A fault or abort(): the previous handler (the Swift runtime's backtracer, or the default)
                    // takes over — a fault meets it when the instruction runs again, abort()'s raise here.
                    sigaction(sig, CrashTrace.previous + Int(sig), nil)
                    if byItself { raise(sig) }
                }
                sigemptyset(&action.sa_mask)
                action.sa_flags = SA_SIGINFO
                sigaction(sig, &action, previous + Int(sig))
            }
        }
    }

    static func crashed(stateDirectory: String, owner: String) -> Bool {
        access(file(stateDirectory: stateDirectory, owner: owner), F_OK) == 0
    }
}

/// Reads an attempt's log line by line in pieces of at most `pieceLimit` bytes, so that showing a log costs a
/// buffer whatever the log holds (a line longer than the piece limit arrives as several pieces, the later ones marked
/// as continuations).
public struct LogLines: Sendable {
    public static let pieceLimit = 64 << 10

    /// Calls `body` with each line (without its newline) or piece of a long line; returns false when the file cannot
    /// be opened.
    @discardableResult
    public static func read(_ path: String, pieceLimit: Int = LogLines.pieceLimit, _ body: (_ text: Substring, _ continuation: Bool) -> Void) -> Bool
    {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        // A log is a regular file; anything else (a FIFO planted in the state directory) is not read.
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        var splitter = Splitter(pieceLimit: pieceLimit)
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            splitter.feed(chunk[0..<n], body)
        }
        splitter.finish(body)
        return true
    }

    /// The same lines and pieces from bytes that arrive in chunks of any size (a log read from a server page by
    /// page): feed each chunk, then finish.
    public struct Splitter: Sendable {
        let limit: Int
        var pending: [UInt8] = []
        var continuing = false

        public init(pieceLimit: Int = LogLines.pieceLimit) {
            limit = pieceLimit
            pending.reserveCapacity(pieceLimit)
        }

        public mutating func feed(_ bytes: ArraySlice<UInt8>, _ body: (_ text: Substring, _ continuation: Bool) -> Void) {
            var start = bytes.startIndex
            for i in bytes.indices where bytes[i] == 0x0A {
                pending += bytes[start..<i]
                emitPieces(final: true, body)
                start = i + 1
            }
            pending += bytes[start..<bytes.endIndex]
            emitPieces(final: false, body)
        }

        public mutating func finish(_ body: (_ text: Substring, _ continuation: Bool) -> Void) {
            if !pending.isEmpty { emitPieces(final: true, body) }
        }

        private mutating func emitPieces(final: Bool, _ body: (_ text: Substring, _ continuation: Bool) -> Void) {
            while pending.count > limit || (final && pending.count >= limit) {
                body(Substring(String(decoding: pending[0..<limit], as: UTF8.self)), continuing)
                pending.removeFirst(limit)
                continuing = true
            }
            if final {
                if !pending.isEmpty || !continuing { body(Substring(String(decoding: pending, as: UTF8.self)), continuing) }
                pending.removeAll(keepingCapacity: true)
                continuing = false
            }
        }
    }
}

/// Caps the attempts in flight across runs. A driver takes a slot before it journals an attempt as started (so
/// "started" means running); a driver that found none is woken when one frees.
final class Limiter: Sendable {
    let state: Mutex<(available: Int, waiting: [Mailbox])>
    init(_ n: Int) { state = Mutex((n, [])) }

    func tryAcquire(waker: Mailbox) -> Bool {
        state.withLock { s in
            if s.available > 0 {
                s.available -= 1
                return true
            }
            if !s.waiting.contains(where: { $0 === waker }) { s.waiting.append(waker) }
            return false
        }
    }

    func release() {
        let wake = state.withLock { s in
            s.available += 1
            defer { s.waiting = [] }
            return s.waiting
        }
        for m in wake { m.post(.tick) }
    }
}

/// Wakes the driver: attempt completions and timer ticks, taken in batches.
final class Mailbox: Sendable {
    enum Event: Sendable {
        case completed(Completion)
        case tick
    }
    let state = Mutex<(events: [Event], waiter: CheckedContinuation<[Event], Never>?)>(([], nil))

    func post(_ e: Event) {
        let waiter = state.withLock { s -> CheckedContinuation<[Event], Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.events.append(e)
            return nil
        }
        waiter?.resume(returning: [e])
    }

    func take() async -> [Event] {
        await withCheckedContinuation { c in
            let ready = state.withLock { s -> [Event]? in
                if !s.events.isEmpty {
                    defer { s.events = [] }
                    return s.events
                }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}

struct Completion: Sendable {
    var step: String
    var item: Int
    var attempt: Int
    var result: Result<ActionResult, ActionFailure>
    var artifacts: [(String, String)]
    var at: ContinuousClock.Instant
}
