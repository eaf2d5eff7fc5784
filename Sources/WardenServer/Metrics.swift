import Foundation
import Prometheus
import Synchronization
import WardenApp

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The control plane's Prometheus metrics, rendered by ``render()`` in the text exposition format 0.0.4.
///
/// Each instance owns its own `PrometheusCollectorRegistry`; nothing is registered with the global `MetricsSystem`,
/// so any number of servers can live in one process.
///
/// The metrics:
/// - `warden_http_requests_total{method,route,status}` (counter): HTTP requests answered. `route` is the route
///   template (`/api/v1/workspaces/{workspace}/runs/{run}`), never the raw path; `method` is one of the standard
///   methods or `other`; `status` is the response status code.
/// - `warden_http_request_duration_seconds{method,route}` (histogram): time from a request's arrival to its
///   response, with buckets from 0.5 ms to 10 s (``requestBuckets``).
/// - `warden_runs_started_total{workflow}` (counter): workflow runs started.
/// - `warden_runs_finished_total{workflow,status}` (counter): workflow runs finished, by final status.
/// - `warden_run_duration_seconds{workflow,status}` (histogram): a run's duration, start to finish
///   (``runBuckets``).
/// - `warden_step_duration_seconds{workflow,status}` (histogram): a step's duration, all of its attempts
///   (``stepBuckets``).
/// - `warden_attempt_duration_seconds{workflow,status}` (histogram): one attempt's duration (``stepBuckets``).
/// - `warden_run_queue_depth` (gauge): runs waiting to start.
/// - `warden_attempts_in_flight` (gauge): attempts executing now.
/// - `warden_audit_entries_total` (counter): audit log entries written.
/// - `warden_trigger_events_total{receiver,format,outcome}` (counter): events of the trigger pipeline by stage
///   outcome — `accepted` (a dispatch made), `rejected` (the delivery refused), `deduplicated`, `dispatched` (its
///   run created), `retried`, `dead-lettered`, `rate-limited`. `receiver` is a configured receiver, `poll`,
///   `schedule` or `manual`.
/// - `warden_trigger_event_to_run_seconds` (histogram): from an event's receipt to its run's creation
///   (``triggerBuckets``), Warden's own latency.
/// - `warden_trigger_notification_delay_seconds` (histogram): from the time a sender says a change happened to its
///   receipt (the sender's queue, not Warden).
/// - `warden_trigger_poll_lag_seconds`, `warden_trigger_schedule_lag_seconds` (histograms): how late a due poll
///   ran and a planned schedule fired.
/// - `process_resident_memory_bytes`, `process_open_fds` (gauges), `process_cpu_seconds_total` (counter),
///   `process_start_time_seconds` (gauge): the standard process metrics, read when rendered (see ``ProcessStats``);
///   a figure that cannot be read on this system is left out.
///
/// Label cardinality is bounded: at most ``maxWorkflowLabels`` distinct `workflow` values and ``maxRouteLabels``
/// distinct `route` values are kept, later ones are counted under `other`.
///
/// Recording is cheap and thread-safe: the metric objects of each label set are created once and cached.
public final class ServerMetrics: Sendable, TriggerObserver {
    /// The `Content-Type` of ``render()``'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The most distinct `workflow` label values kept; further workflows are counted under ``otherLabel``.
    public static let maxWorkflowLabels = 200

    /// The most distinct `route` label values kept; further routes are counted under ``otherLabel``.
    /// Route templates are few, so reaching it means a caller passed raw paths.
    public static let maxRouteLabels = 500

    /// The label value that stands for the values past a cardinality bound.
    public static let otherLabel = "other"

    /// The upper bounds of `warden_http_request_duration_seconds`' buckets, in seconds: 0.5 ms to 10 s.
    public static let requestBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    /// The upper bounds of `warden_run_duration_seconds`' buckets, in seconds: 100 ms to 4 h.
    public static let runBuckets: [Double] = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400]

    /// The upper bounds of the step and attempt histograms' buckets, in seconds: 10 ms to 1 h.
    public static let stepBuckets: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]

    private static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]

    private struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    private struct RequestSeries {
        var count: Counter
        var duration: ValueHistogram
    }

    private struct RequestState {
        var series: [RequestKey: RequestSeries] = [:]
        var routes: Set<String> = []
    }

    private struct WorkflowKey: Hashable {
        var workflow: String
        var status: String
    }

    private struct RunSeries {
        var finished: Counter
        var duration: ValueHistogram
    }

    private struct WorkflowState {
        var workflows: Set<String> = []
        var started: [String: Counter] = [:]
        var finished: [WorkflowKey: RunSeries] = [:]
        var steps: [WorkflowKey: ValueHistogram] = [:]
        var attempts: [WorkflowKey: ValueHistogram] = [:]

        /// The label value for `workflow`: itself while fewer than the bound are known, else `other`.
        mutating func label(_ workflow: String) -> String {
            if workflows.contains(workflow) { return workflow }
            guard workflows.count < ServerMetrics.maxWorkflowLabels else { return ServerMetrics.otherLabel }
            workflows.insert(workflow)
            return workflow
        }
    }

    /// The upper bounds of the trigger histograms' buckets, in seconds: 1 ms to 10 min.
    public static let triggerBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 600]

    private struct TriggerKey: Hashable {
        var receiver, format, outcome: String
    }
    private let triggerCounters = Mutex<[TriggerKey: Counter]>([:])
    private let eventToRun: ValueHistogram
    private let notificationDelayHistogram: ValueHistogram
    private let pollLagHistogram: ValueHistogram
    private let scheduleLagHistogram: ValueHistogram

    private let registry = PrometheusCollectorRegistry()
    private let requests = Mutex(RequestState())
    private let workflowState = Mutex(WorkflowState())
    private let queueDepth: Gauge
    private let inFlight: Gauge
    private let audit: Counter

    /// Creates the metrics, all at zero, in a registry of their own.
    public init() {
        queueDepth = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "warden_run_queue_depth", unitName: "", helpText: "Workflow runs waiting to start."))
        inFlight = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "warden_attempts_in_flight", unitName: "", helpText: "Step attempts executing now."))
        audit = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "warden_audit_entries", unitName: "total", helpText: "Audit log entries written."))
        let registry = self.registry
        func histogram(_ name: String, _ help: String) -> ValueHistogram {
            registry.makeValueHistogram(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "seconds", helpText: help), buckets: Self.triggerBuckets)
        }
        eventToRun = histogram("warden_trigger_event_to_run", "From an event's receipt to the creation of its run.")
        notificationDelayHistogram = histogram(
            "warden_trigger_notification_delay", "From the time a sender says a change happened to its receipt.")
        pollLagHistogram = histogram("warden_trigger_poll_lag", "How late a due poll ran.")
        scheduleLagHistogram = histogram("warden_trigger_schedule_lag", "How late a schedule fired after its planned time.")
    }

    // MARK: Recording

    /// Records one HTTP request.
    /// - Parameters:
    ///   - method: The request method; one outside the standard methods is counted as `other`.
    ///   - route: The matched route *template* (e.g. `/api/v1/workspaces/{workspace}/runs/{run}`), never the raw path.
    ///   - status: The response status code.
    ///   - seconds: The time from the request's arrival to its response.
    public func request(method: String, route: String, status: Int, seconds: Double) {
        let key = RequestKey(method: Self.methodLabel(method), route: route, status: status)
        let series = requests.withLock { $0.series[key] } ?? requestSeries(key)
        series.count.increment()
        series.duration.record(Self.duration(seconds))
    }

    /// Records that a run of `workflow` started.
    public func runStarted(workflow: String) {
        let counter = workflowState.withLock { state -> Counter in
            let label = state.label(workflow)
            if let counter = state.started[label] { return counter }
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "warden_runs_started", unitName: "total", helpText: "Workflow runs started."),
                labels: [("workflow", label)])
            state.started[label] = counter
            return counter
        }
        counter.increment()
    }

    /// Records that a run of `workflow` finished with `status` (its final state, e.g. `succeeded`, `failed`)
    /// after `seconds`.
    public func runFinished(workflow: String, status: String, seconds: Double) {
        let series = workflowState.withLock { state -> RunSeries in
            let key = WorkflowKey(workflow: state.label(workflow), status: status)
            if let series = state.finished[key] { return series }
            let labels = [("workflow", key.workflow), ("status", status)]
            let series = RunSeries(
                finished: registry.makeCounter(
                    descriptor: MetricNameDescriptor(
                        metricName: "warden_runs_finished", unitName: "total",
                        helpText: "Workflow runs finished, by final status."),
                    labels: labels),
                duration: registry.makeValueHistogram(
                    descriptor: MetricNameDescriptor(
                        metricName: "warden_run_duration", unitName: "seconds",
                        helpText: "Workflow run duration from start to finish."),
                    labels: labels, buckets: Self.runBuckets))
            state.finished[key] = series
            return series
        }
        series.finished.increment()
        series.duration.record(Self.duration(seconds))
    }

    /// Records that a step of a `workflow` run ended with `status` after `seconds` (all of its attempts).
    public func step(workflow: String, status: String, seconds: Double) {
        let histogram = workflowState.withLock { state -> ValueHistogram in
            let key = WorkflowKey(workflow: state.label(workflow), status: status)
            if let histogram = state.steps[key] { return histogram }
            let histogram = registry.makeValueHistogram(
                descriptor: MetricNameDescriptor(
                    metricName: "warden_step_duration", unitName: "seconds",
                    helpText: "Workflow step duration, all attempts."),
                labels: [("workflow", key.workflow), ("status", status)], buckets: Self.stepBuckets)
            state.steps[key] = histogram
            return histogram
        }
        histogram.record(Self.duration(seconds))
    }

    /// Records that one attempt of a step of a `workflow` run ended with `status` after `seconds`.
    public func attempt(workflow: String, status: String, seconds: Double) {
        let histogram = workflowState.withLock { state -> ValueHistogram in
            let key = WorkflowKey(workflow: state.label(workflow), status: status)
            if let histogram = state.attempts[key] { return histogram }
            let histogram = registry.makeValueHistogram(
                descriptor: MetricNameDescriptor(
                    metricName: "warden_attempt_duration", unitName: "seconds",
                    helpText: "Duration of one attempt of a workflow step."),
                labels: [("workflow", key.workflow), ("status", status)], buckets: Self.stepBuckets)
            state.attempts[key] = histogram
            return histogram
        }
        histogram.record(Self.duration(seconds))
    }

    /// Sets the number of runs waiting to start.
    public func setQueueDepth(_ n: Int) {
        queueDepth.set(to: Double(n))
    }

    /// Sets the number of step attempts executing now.
    public func setInFlightAttempts(_ n: Int) {
        inFlight.set(to: Double(n))
    }

    /// Counts `n` audit log entries written (nothing when `n` is not positive).
    public func auditEntries(_ n: Int = 1) {
        guard n > 0 else { return }
        audit.increment(by: Int64(n))
    }

    // MARK: Triggers

    /// The most distinct `receiver` label values of the trigger counter; receivers are configured, so few.
    public static let maxReceiverLabels = 100

    /// Counts one event at one stage of the trigger pipeline.
    public func triggerEvent(receiver: String, format: String, outcome: String) {
        let counter = triggerCounters.withLock { map -> Counter in
            var key = TriggerKey(receiver: receiver, format: format, outcome: outcome)
            if let c = map[key] { return c }
            if Set(map.keys.map(\.receiver)).count >= Self.maxReceiverLabels { key.receiver = Self.otherLabel }
            if let c = map[key] { return c }
            let c = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "warden_trigger_events", unitName: "total", helpText: "Trigger pipeline events by receiver, format and outcome."),
                labels: [("receiver", key.receiver), ("format", key.format), ("outcome", key.outcome)])
            map[key] = c
            return c
        }
        counter.increment()
    }

    public func eventToRun(seconds: Double) { eventToRun.record(Self.duration(max(0, seconds))) }
    public func notificationDelay(seconds: Double) { notificationDelayHistogram.record(Self.duration(max(0, seconds))) }
    public func pollLag(seconds: Double) { pollLagHistogram.record(Self.duration(max(0, seconds))) }
    public func scheduleLag(seconds: Double) { scheduleLagHistogram.record(Self.duration(max(0, seconds))) }

    // MARK: Rendering

    /// The Prometheus text exposition (version 0.0.4, served as ``contentType``) of every metric,
    /// with the process metrics read now.
    public func render() -> String {
        var text = registry.emitToString()
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        text += Self.processExposition()
        return text
    }

    // MARK: Private

    private func requestSeries(_ key: RequestKey) -> RequestSeries {
        requests.withLock { state in
            if let series = state.series[key] { return series }
            var route = key.route
            if !state.routes.contains(route) {
                if state.routes.count < Self.maxRouteLabels {
                    state.routes.insert(route)
                } else {
                    route = Self.otherLabel
                }
            }
            let series = RequestSeries(
                count: registry.makeCounter(
                    descriptor: MetricNameDescriptor(
                        metricName: "warden_http_requests", unitName: "total",
                        helpText: "HTTP requests answered, by method, route template and status."),
                    labels: [("method", key.method), ("route", route), ("status", String(key.status))]),
                duration: registry.makeValueHistogram(
                    descriptor: MetricNameDescriptor(
                        metricName: "warden_http_request_duration", unitName: "seconds",
                        helpText: "HTTP request duration from arrival to response, by method and route template."),
                    labels: [("method", key.method), ("route", route)], buckets: Self.requestBuckets))
            // A route past the bound is not cached under its own name, so raw paths cannot grow the cache.
            if route == key.route { state.series[key] = series }
            return series
        }
    }

    private static func methodLabel(_ method: String) -> String {
        if methods.contains(method) { return method }
        let upper = method.uppercased()
        return methods.contains(upper) ? upper : otherLabel
    }

    /// A duration fit for a histogram: negative, infinite and NaN durations count as zero.
    private static func duration(_ seconds: Double) -> Double {
        seconds.isFinite && seconds > 0 ? seconds : 0
    }

    private static func processExposition() -> String {
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: String?) {
            guard let value else { return }
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        family(
            "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
            ProcessStats.cpuSeconds().map { "\($0)" })
        family(
            "process_open_fds", "gauge", "Number of open file descriptors.",
            ProcessStats.openDescriptors().map { "\($0)" })
        family(
            "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
            ProcessStats.residentBytes().map { "\($0)" })
        family(
            "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
            ProcessStats.startTimeSeconds().map { "\($0)" })
        return text
    }
}

/// The process's own resource figures, read from `/proc` (Linux) each time they are asked for;
/// `nil` where they cannot be read.
public enum ProcessStats {
    /// The resident set size in bytes (`/proc/self/statm`).
    public static func residentBytes() -> Int? {
        guard let statm = contents(of: "/proc/self/statm") else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pageSize > 0 else { return nil }
        return pages * Int(pageSize)
    }

    /// The number of open file descriptors (the entries of `/proc/self/fd`, less the one that lists them).
    public static func openDescriptors() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        let own = String(dirfd(dir))
        var count = 0
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name == "." || name == ".." || name == own { continue }
            count += 1
        }
        return count
    }

    /// The user and system CPU time spent, in seconds (`/proc/self/stat`).
    public static func cpuSeconds() -> Double? {
        guard let fields = statFields(), fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]),
            let ticks = clockTicks()
        else { return nil }
        return (user + system) / ticks
    }

    /// When the process started, in seconds since the Unix epoch (`/proc/self/stat` and the boot time in `/proc/stat`).
    public static func startTimeSeconds() -> Double? {
        guard let fields = statFields(), fields.count > 19, let start = Double(fields[19]), let ticks = clockTicks(),
            let stat = contents(of: "/proc/stat"),
            let bootLine = stat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let boot = Double(bootLine.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        else { return nil }
        return boot + start / ticks
    }

    /// The fields of `/proc/self/stat` after the command name: the process state is the first (field 3 in proc(5)).
    private static func statFields() -> [Substring]? {
        guard let stat = contents(of: "/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(whereSeparator: { $0 == " " || $0 == "\n" })
    }

    private static func clockTicks() -> Double? {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : nil
    }

    /// A small file's contents, read to its end (files in `/proc` report no size).
    private static func contents(of path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
