import Foundation
import Logging
import Testing
import WardenServer

// MARK: - Prometheus text checks

/// One sample line of the text exposition: `name{labels} value`.
private struct Sample {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// Parses the Prometheus text exposition 0.0.4 strictly enough to catch a malformed line: every line is a `# HELP`,
/// a `# TYPE` (once per family, before its samples) or a sample with a valid name, well-formed labels and a number.
private func parseExposition(_ text: String) throws -> (types: [String: String], samples: [Sample]) {
    struct Malformed: Error, CustomStringConvertible {
        var line: String
        var why: String
        var description: String { "\(why): \(line)" }
    }
    func validName(_ name: Substring, colon: Bool = true) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || (colon && $0 == ":") }
    }
    var types: [String: String] = [:]
    var samples: [Sample] = []
    #expect(text.hasSuffix("\n"), "the exposition ends with a line feed")
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        let line = String(line)
        if line.hasPrefix("# HELP ") {
            let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
            guard let name = parts.first, validName(name) else { throw Malformed(line: line, why: "bad HELP") }
        } else if line.hasPrefix("# TYPE ") {
            let parts = line.dropFirst(7).split(separator: " ")
            guard parts.count == 2, validName(parts[0]),
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1])
            else { throw Malformed(line: line, why: "bad TYPE") }
            guard types[String(parts[0])] == nil else { throw Malformed(line: line, why: "second TYPE") }
            types[String(parts[0])] = String(parts[1])
        } else if line.hasPrefix("#") || line.isEmpty {
            throw Malformed(line: line, why: "unexpected comment or blank line")
        } else {
            var rest = Substring(line)
            let nameEnd = rest.firstIndex(where: { $0 == "{" || $0 == " " }) ?? rest.endIndex
            let name = rest[..<nameEnd]
            guard validName(name) else { throw Malformed(line: line, why: "bad metric name") }
            rest = rest[nameEnd...]
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    guard let equals = rest.firstIndex(of: "="), validName(rest[..<equals], colon: false) else {
                        throw Malformed(line: line, why: "bad label name")
                    }
                    let label = String(rest[..<equals])
                    rest = rest[rest.index(after: equals)...]
                    guard rest.first == "\"" else { throw Malformed(line: line, why: "unquoted label value") }
                    rest = rest.dropFirst()
                    var value = ""
                    while let c = rest.first, c != "\"" {
                        rest = rest.dropFirst()
                        if c == "\\" {
                            guard let escaped = rest.first, "\\\"n".contains(escaped) else {
                                throw Malformed(line: line, why: "bad escape")
                            }
                            value.append(escaped == "n" ? "\n" : escaped)
                            rest = rest.dropFirst()
                        } else {
                            value.append(c)
                        }
                    }
                    guard rest.first == "\"" else { throw Malformed(line: line, why: "unterminated label value") }
                    rest = rest.dropFirst()
                    guard labels.updateValue(value, forKey: label) == nil else {
                        throw Malformed(line: line, why: "repeated label")
                    }
                    if rest.first == "," { rest = rest.dropFirst() }
                }
                rest = rest.dropFirst()
            }
            guard rest.first == " " else { throw Malformed(line: line, why: "no value") }
            let fields = rest.dropFirst().split(separator: " ")
            guard fields.count == 1 || fields.count == 2,
                let number = Double(fields[0]) ?? ["+Inf": .infinity, "-Inf": -.infinity][String(fields[0])]
            else { throw Malformed(line: line, why: "bad value") }
            let family = ["_bucket", "_sum", "_count"].reduce(String(name)) { name, suffix in
                name.hasSuffix(suffix) && types[name] == nil && types[String(name.dropLast(suffix.count))] == "histogram"
                    ? String(name.dropLast(suffix.count)) : name
            }
            guard types[family] != nil else { throw Malformed(line: line, why: "sample before its TYPE") }
            samples.append(Sample(name: String(name), labels: labels, value: number))
        }
    }
    return (types, samples)
}

private func values(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> [Double] {
    samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }.map(\.value)
}

/// Whether Python's `prometheus_client` can be imported (installed by scripts/test.sh).
private let pythonPrometheusClient: Bool = {
    (try? runPython(["-c", "import prometheus_client"]))?.status == 0
}()

private func runPython(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

// MARK: - Metrics

@Suite struct MetricsTests {
    static let runRoute = "/api/v1/workspaces/{workspace}/runs/{run}"

    @Test func requestsAreCountedByRouteTemplate() throws {
        let metrics = ServerMetrics()
        metrics.request(method: "GET", route: Self.runRoute, status: 200, seconds: 0.003)
        metrics.request(method: "GET", route: Self.runRoute, status: 200, seconds: 0.2)
        metrics.request(method: "get", route: Self.runRoute, status: 404, seconds: 0.0004)
        metrics.request(method: "POST", route: "/api/v1/workspaces/{workspace}/runs", status: 201, seconds: 12)
        metrics.request(method: "BREW", route: "/", status: 405, seconds: 0.001)
        let text = metrics.render()
        let (types, samples) = try parseExposition(text)

        #expect(types["warden_http_requests_total"] == "counter")
        #expect(types["warden_http_request_duration_seconds"] == "histogram")
        #expect(text.contains(#"route="/api/v1/workspaces/{workspace}/runs/{run}""#))
        let get = ["method": "GET", "route": Self.runRoute]
        #expect(values(samples, "warden_http_requests_total", get.merging(["status": "200"]) { $1 }) == [2])
        #expect(values(samples, "warden_http_requests_total", get.merging(["status": "404"]) { $1 }) == [1])
        #expect(values(samples, "warden_http_requests_total", ["method": "other", "status": "405"]) == [1])
        // One histogram per method and route, over all statuses; buckets are cumulative.
        #expect(values(samples, "warden_http_request_duration_seconds_count", get) == [3])
        #expect(values(samples, "warden_http_request_duration_seconds_bucket", get.merging(["le": "0.0005"]) { $1 }) == [1])
        #expect(values(samples, "warden_http_request_duration_seconds_bucket", get.merging(["le": "0.005"]) { $1 }) == [2])
        #expect(values(samples, "warden_http_request_duration_seconds_bucket", get.merging(["le": "10.0"]) { $1 }) == [3])
        #expect(values(samples, "warden_http_request_duration_seconds_bucket", get.merging(["le": "+Inf"]) { $1 }) == [3])
        let sum = try #require(values(samples, "warden_http_request_duration_seconds_sum", get).first)
        #expect(abs(sum - 0.2034) < 1e-9)
        let post = ["method": "POST", "route": "/api/v1/workspaces/{workspace}/runs"]
        #expect(values(samples, "warden_http_request_duration_seconds_bucket", post.merging(["le": "10.0"]) { $1 }) == [0])
        #expect(values(samples, "warden_http_request_duration_seconds_bucket", post.merging(["le": "+Inf"]) { $1 }) == [1])
        // The buckets span 0.5 ms to 10 s.
        let les = Set(samples.filter { $0.name == "warden_http_request_duration_seconds_bucket" }.compactMap { $0.labels["le"] })
        #expect(les.contains("0.0005") && les.contains("10.0") && les.contains("+Inf"))
    }

    @Test func runsStepsAttemptsGaugesAndAudit() throws {
        let metrics = ServerMetrics()
        var (types, samples) = try parseExposition(metrics.render())
        // The unlabeled metrics are there from the start, at zero.
        #expect(values(samples, "warden_run_queue_depth") == [0])
        #expect(values(samples, "warden_attempts_in_flight") == [0])
        #expect(values(samples, "warden_audit_entries_total") == [0])

        metrics.runStarted(workflow: "release")
        metrics.runStarted(workflow: "release")
        metrics.runFinished(workflow: "release", status: "succeeded", seconds: 42)
        metrics.runFinished(workflow: "release", status: "failed", seconds: -1)
        metrics.step(workflow: "release", status: "succeeded", seconds: 3)
        metrics.attempt(workflow: "release", status: "failed", seconds: 1.5)
        metrics.attempt(workflow: "release", status: "succeeded", seconds: .nan)
        metrics.setQueueDepth(7)
        metrics.setInFlightAttempts(3)
        metrics.auditEntries()
        metrics.auditEntries(4)
        metrics.auditEntries(-2)
        (types, samples) = try parseExposition(metrics.render())

        #expect(types["warden_runs_started_total"] == "counter")
        #expect(types["warden_runs_finished_total"] == "counter")
        #expect(types["warden_run_duration_seconds"] == "histogram")
        #expect(types["warden_step_duration_seconds"] == "histogram")
        #expect(types["warden_attempt_duration_seconds"] == "histogram")
        #expect(types["warden_run_queue_depth"] == "gauge")
        #expect(types["warden_attempts_in_flight"] == "gauge")
        #expect(types["warden_audit_entries_total"] == "counter")
        #expect(values(samples, "warden_runs_started_total", ["workflow": "release"]) == [2])
        #expect(values(samples, "warden_runs_finished_total", ["workflow": "release", "status": "succeeded"]) == [1])
        #expect(values(samples, "warden_runs_finished_total", ["workflow": "release", "status": "failed"]) == [1])
        #expect(values(samples, "warden_run_duration_seconds_sum", ["workflow": "release", "status": "succeeded"]) == [42])
        // A negative duration counts as zero.
        #expect(values(samples, "warden_run_duration_seconds_sum", ["workflow": "release", "status": "failed"]) == [0])
        #expect(values(samples, "warden_step_duration_seconds_count", ["workflow": "release", "status": "succeeded"]) == [1])
        #expect(values(samples, "warden_attempt_duration_seconds_sum", ["workflow": "release", "status": "failed"]) == [1.5])
        #expect(values(samples, "warden_attempt_duration_seconds_sum", ["workflow": "release", "status": "succeeded"]) == [0])
        #expect(values(samples, "warden_run_queue_depth") == [7])
        #expect(values(samples, "warden_attempts_in_flight") == [3])
        #expect(values(samples, "warden_audit_entries_total") == [5])
    }

    @Test func workflowLabelsPastTheBoundAreFoldedIntoOther() throws {
        let metrics = ServerMetrics()
        let count = ServerMetrics.maxWorkflowLabels + 50
        for index in 0..<count {
            metrics.runStarted(workflow: "wf-\(index)")
            metrics.step(workflow: "wf-\(index)", status: "succeeded", seconds: 1)
        }
        // A workflow seen before the bound keeps its label; one after it is still folded.
        metrics.runStarted(workflow: "wf-0")
        metrics.runFinished(workflow: "wf-\(count - 1)", status: "succeeded", seconds: 1)
        let (_, samples) = try parseExposition(metrics.render())

        let started = samples.filter { $0.name == "warden_runs_started_total" }
        #expect(Set(started.compactMap { $0.labels["workflow"] }).count == ServerMetrics.maxWorkflowLabels + 1)
        #expect(values(samples, "warden_runs_started_total", ["workflow": "other"]) == [50])
        #expect(values(samples, "warden_runs_started_total", ["workflow": "wf-0"]) == [2])
        #expect(values(samples, "warden_runs_started_total", ["workflow": "wf-\(count - 1)"]).isEmpty)
        #expect(values(samples, "warden_step_duration_seconds_count", ["workflow": "other"]) == [50])
        #expect(values(samples, "warden_runs_finished_total", ["workflow": "other", "status": "succeeded"]) == [1])
        #expect(started.map(\.value).reduce(0, +) == Double(count + 1))
    }

    @Test func routeLabelsPastTheBoundAreFoldedIntoOther() throws {
        let metrics = ServerMetrics()
        for index in 0..<(ServerMetrics.maxRouteLabels + 10) {
            metrics.request(method: "GET", route: "/raw/\(index)", status: 200, seconds: 0.001)
        }
        let (_, samples) = try parseExposition(metrics.render())
        let routes = Set(samples.filter { $0.name == "warden_http_requests_total" }.compactMap { $0.labels["route"] })
        #expect(routes.count == ServerMetrics.maxRouteLabels + 1)
        #expect(values(samples, "warden_http_requests_total", ["route": "other"]) == [10])
    }

    @Test func processMetricsArePresentAndPlausible() throws {
        #if os(Linux)
            let resident = try #require(ProcessStats.residentBytes())
            #expect(resident > 1 << 20 && resident < 1 << 40)
            // The descriptors held here are counted (other tests may open and close theirs meanwhile).
            let handles = try (0..<16).map { _ in try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/stat")) }
            #expect(try #require(ProcessStats.openDescriptors()) >= handles.count + 3)
            for handle in handles { try handle.close() }
            let cpu = try #require(ProcessStats.cpuSeconds())
            #expect(cpu >= 0 && cpu < 1e7)
            let start = try #require(ProcessStats.startTimeSeconds())
            let now = Date().timeIntervalSince1970
            #expect(start > now - 86_400 * 30 && start <= now + 1)

            let (types, samples) = try parseExposition(ServerMetrics().render())
            #expect(types["process_resident_memory_bytes"] == "gauge")
            #expect(types["process_open_fds"] == "gauge")
            #expect(types["process_cpu_seconds_total"] == "counter")
            #expect(types["process_start_time_seconds"] == "gauge")
            #expect(try #require(values(samples, "process_resident_memory_bytes").first) > 0)
            #expect(try #require(values(samples, "process_open_fds").first) > 0)
            #expect(try #require(values(samples, "process_cpu_seconds_total").first) >= cpu)
            #expect(values(samples, "process_start_time_seconds") == [start])
        #else
            // Elsewhere the figures may be missing, and then so are their lines.
            let text = ServerMetrics().render()
            #expect(text.contains("process_resident_memory_bytes") == (ProcessStats.residentBytes() != nil))
        #endif
    }

    @Test func contentTypeIsTheTextFormat() {
        #expect(ServerMetrics.contentType == "text/plain; version=0.0.4; charset=utf-8")
    }

    @Test func recordingFromManyTasksLosesNothing() async throws {
        let metrics = ServerMetrics()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for index in 0..<500 {
                        metrics.request(method: "GET", route: "/r/{id}", status: 200 + index % 3, seconds: 0.01)
                        metrics.runStarted(workflow: "wf-\(task % 4)")
                    }
                }
            }
        }
        let (_, samples) = try parseExposition(metrics.render())
        #expect(values(samples, "warden_http_requests_total", ["route": "/r/{id}"]).reduce(0, +) == 8000)
        #expect(values(samples, "warden_http_request_duration_seconds_count", ["route": "/r/{id}"]) == [8000])
        #expect(values(samples, "warden_runs_started_total").reduce(0, +) == 8000)
    }

    @Test(.enabled(if: pythonPrometheusClient, "Python's prometheus_client is not installed"))
    func pythonPrometheusClientParsesTheExposition() throws {
        let metrics = ServerMetrics()
        metrics.request(method: "GET", route: Self.runRoute, status: 200, seconds: 0.003)
        metrics.request(method: "DELETE", route: #"/odd/"quoted"\path"#, status: 204, seconds: 0.01)
        metrics.runStarted(workflow: "release\nnext")
        metrics.runFinished(workflow: "release", status: "succeeded", seconds: 30)
        metrics.step(workflow: "release", status: "succeeded", seconds: 3)
        metrics.attempt(workflow: "release", status: "succeeded", seconds: 3)
        metrics.setQueueDepth(2)
        metrics.auditEntries(3)
        let text = metrics.render()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("warden-metrics-\(UUID().uuidString).txt")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                out[family.name] = {"type": family.type, "samples": [[s.name, s.labels, s.value] for s in family.samples]}
            print(json.dumps(out))
            """
        let (status, output) = try runPython(["-c", script, file.path])
        try #require(status == 0, "prometheus_client rejected the exposition: \(output)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: Any]])
        // prometheus_client names a counter's family without `_total`.
        let expected = [
            "warden_http_requests": "counter", "warden_http_request_duration_seconds": "histogram",
            "warden_runs_started": "counter", "warden_runs_finished": "counter",
            "warden_run_duration_seconds": "histogram", "warden_step_duration_seconds": "histogram",
            "warden_attempt_duration_seconds": "histogram", "warden_run_queue_depth": "gauge",
            "warden_attempts_in_flight": "gauge", "warden_audit_entries": "counter",
            "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge", "process_cpu_seconds": "counter",
            "process_start_time_seconds": "gauge",
        ]
        for (name, type) in expected {
            #if !os(Linux)
                if name.hasPrefix("process_") { continue }
            #endif
            #expect(parsed[name]?["type"] as? String == type, "\(name)")
        }
        let requests = try #require(parsed["warden_http_requests"]?["samples"] as? [[Any]])
        let labels = requests.compactMap { $0[1] as? [String: String] }
        #expect(labels.contains(["method": "GET", "route": Self.runRoute, "status": "200"]))
        #expect(labels.contains(["method": "DELETE", "route": #"/odd/"quoted"\path"#, "status": "204"]))
        let started = try #require(parsed["warden_runs_started"]?["samples"] as? [[Any]])
        #expect(started.compactMap { ($0[1] as? [String: String])?["workflow"] } == ["release\nnext"])
    }
}

// MARK: - JSON logs

/// Collects the lines a handler writes. Deliberately unlocked: the handler serializes its sink's calls.
private final class Lines: @unchecked Sendable {
    var lines: [String] = []

    func handler(label: String = "warden.test", level: Logger.Level = .info, provider: Logger.MetadataProvider? = nil)
        -> JSONLogHandler
    {
        JSONLogHandler(label: label, level: level, metadataProvider: provider) { self.lines.append($0) }
    }

    func objects() throws -> [[String: Any]] {
        try lines.map { line in
            #expect(!line.contains("\n"))
            return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }
}

@Suite struct JSONLogHandlerTests {
    @Test func eachLineIsAJSONObjectWithTheKeys() throws {
        let lines = Lines()
        var logger = Logger(label: "warden.server") { lines.handler(label: $0) }
        logger[metadataKey: "component"] = "http"
        let before = Date()
        logger.info(
            "listening \"quoted\"\nnext line",
            metadata: [
                "port": "8080", "nested": ["a": ["1", "2"], "b": ["c": "d"]], "count": .stringConvertible(3),
            ])
        logger.debug("not written at info")
        logger.error("failed")
        let objects = try lines.objects()
        try #require(objects.count == 2)

        let entry = objects[0]
        for key in ["time", "level", "label", "message", "source"] {
            #expect(entry[key] is String, "\(key)")
        }
        #expect(entry["level"] as? String == "info")
        #expect(objects[1]["level"] as? String == "error")
        #expect(entry["label"] as? String == "warden.server")
        #expect(entry["message"] as? String == "listening \"quoted\"\nnext line")
        #expect(entry["source"] as? String == "ServerTests")
        #expect(entry["component"] as? String == "http")
        #expect(entry["port"] as? String == "8080")
        #expect(entry["count"] as? String == "3")
        let nested = try #require(entry["nested"] as? [String: Any])
        #expect(nested["a"] as? [String] == ["1", "2"])
        #expect(nested["b"] as? [String: String] == ["c": "d"])

        let time = try #require(entry["time"] as? String)
        #expect(time.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(time)")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: time))
        #expect(parsed.timeIntervalSince(before) > -0.002 && parsed.timeIntervalSince(before) < 60)
    }

    @Test func metadataIsMergedHandlerThenProviderThenCall() throws {
        let lines = Lines()
        let provider = Logger.MetadataProvider { ["request": "r-1", "shared": "provider"] }
        var logger = Logger(label: "warden.test") { lines.handler(label: $0, provider: provider) }
        logger[metadataKey: "shared"] = "handler"
        logger[metadataKey: "workspace"] = "acme"
        logger.notice("one")
        logger.notice("two", metadata: ["shared": "call", "message": "shadow"])
        let objects = try lines.objects()
        try #require(objects.count == 2)
        #expect(objects[0]["shared"] as? String == "provider")
        #expect(objects[0]["request"] as? String == "r-1")
        #expect(objects[0]["workspace"] as? String == "acme")
        #expect(objects[1]["shared"] as? String == "call")
        // A metadata key never replaces one of the entry's own keys.
        #expect(objects[1]["message"] as? String == "two")
        #expect(objects[1]["metadata.message"] as? String == "shadow")
    }

    @Test func tokensJWTsBearerCredentialsAndSecretKeysAreRedacted() throws {
        let token = "wdn_Q2hhbmdlTWVfdGhpc19pc19zZWNyZXQ-x_9f"
        let jwt =
            "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlX2J5dGVzX2hlcmU"
        let bearer = "opaque-Credential.value+/=="
        let secrets = [
            token, jwt, bearer, "hunter2-password", "cookie-value-123", "s3cr3t-value", "key-material", "inner-pw",
            "Q2hhbmdlTWVfdGhpc19pc19zZWNyZXQ", "eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0",
        ]
        let lines = Lines()
        var logger = Logger(label: "warden.auth") { lines.handler(label: $0) }
        logger[metadataKey: "Client_Secret"] = "s3cr3t-value"
        logger.warning(
            "token \(token) refused; header was Authorization: Bearer \(bearer), jwt=\(jwt).",
            metadata: [
                "password": "hunter2-password",
                "Cookie": "cookie-value-123",
                "X-API-Key": "key-material",
                "private_key": ["pem": "key-material"],
                "request": ["headers": ["authorization": "Bearer \(bearer)", "accept": "application/json"]],
                "config": ["db": ["Password": "inner-pw", "host": "db.local"]],
                "args": ["--token", "\(token)", "\(jwt)"],
                "note": "sign in to get a bearer",
            ])
        struct Failure: Error, CustomStringConvertible { var description: String }
        logger.error("with error", error: Failure(description: "upstream said Bearer \(bearer)"))
        let output = lines.lines.joined(separator: "\n")
        for secret in secrets {
            #expect(!output.contains(secret), "\(secret) leaked")
        }
        let objects = try lines.objects()
        try #require(objects.count == 2)
        let entry = objects[0]
        #expect(entry["message"] as? String == "token [REDACTED] refused; header was Authorization: [REDACTED], jwt=[REDACTED].")
        #expect(entry["password"] as? String == "[REDACTED]")
        #expect(entry["Cookie"] as? String == "[REDACTED]")
        #expect(entry["X-API-Key"] as? String == "[REDACTED]")
        #expect(entry["Client_Secret"] as? String == "[REDACTED]")
        #expect(entry["private_key"] as? String == "[REDACTED]")
        let headers = try #require((entry["request"] as? [String: Any])?["headers"] as? [String: String])
        #expect(headers == ["authorization": "[REDACTED]", "accept": "application/json"])
        #expect((entry["config"] as? [String: [String: String]])?["db"] == ["Password": "[REDACTED]", "host": "db.local"])
        #expect(entry["args"] as? [String] == ["--token", "[REDACTED]", "[REDACTED]"])
        // Plain words are left alone.
        #expect(entry["note"] as? String == "sign in to get a bearer")
        #expect(objects[1]["error"] as? String == "upstream said [REDACTED]")
    }

    @Test func redactionLeavesOrdinaryTextAlone() {
        for text in ["", "wdn_short", "eyJ but no dots", "eyJabc.only-one-dot", "Bearer", "bearerless", "héllo wörld ✓"] {
            #expect(JSONLogHandler.redact(text) == text)
        }
        #expect(JSONLogHandler.redact("a wdn_0123456789abcdef b") == "a [REDACTED] b")
        #expect(JSONLogHandler.redact("ü eyJa.eyJb. ü") == "ü [REDACTED] ü")
        #expect(JSONLogHandler.redact("bearer\tabc def") == "[REDACTED] def")
        #expect(JSONLogHandler.isSensitiveKey("GITHUB_TOKEN") && JSONLogHandler.isSensitiveKey("api-key"))
        #expect(!JSONLogHandler.isSensitiveKey("workspace") && !JSONLogHandler.isSensitiveKey("keyID"))
    }

    @Test func concurrentLoggingWritesWholeLines() async throws {
        let lines = Lines()
        let logger = Logger(label: "warden.test") { lines.handler(label: $0) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("warden-log-\(UUID().uuidString).jsonl")
        #expect(FileManager.default.createFile(atPath: file.path, contents: nil))
        defer { try? FileManager.default.removeItem(at: file) }
        let handle = try FileHandle(forWritingTo: file)
        let fileLogger = Logger(label: "warden.file") { JSONLogHandler(label: $0, fileHandle: handle) }
        let padding = String(repeating: "x", count: 1000)
        let tasks = 32
        let perTask = 100
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for index in 0..<perTask {
                        logger.info("line", metadata: ["task": "\(task)", "index": "\(index)", "padding": "\(padding)"])
                        fileLogger.info("line", metadata: ["task": "\(task)", "index": "\(index)", "padding": "\(padding)"])
                    }
                }
            }
        }
        try handle.close()
        let written = try String(contentsOf: file, encoding: .utf8)
        #expect(written.hasSuffix("\n"))
        let fileLines = written.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        for (name, all) in [("sink", lines.lines), ("file", fileLines)] {
            #expect(all.count == tasks * perTask, "\(name)")
            var seen = Set<String>()
            for line in all {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(name)")
                #expect(object["padding"] as? String == padding)
                seen.insert("\(object["task"] ?? "")/\(object["index"] ?? "")")
            }
            #expect(seen.count == tasks * perTask, "\(name)")
        }
    }
}
