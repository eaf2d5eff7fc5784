import CEL
import Documents
import Foundation
import Storage
import Testing
import WardenApp

/// Schedule triggers fired by the trigger pipeline's scheduler with an injected clock, across both daylight-saving
/// transitions of Europe/Berlin: the planned times the store records, tick after tick, are the documented ones.
@Suite struct ScheduleTickTests {
    /// Creates workspace `main` with the no-op workflow `build` and the schedule trigger `nightly`, published at `start`.
    func fixture(start: String, schedule: String) async throws -> (ControlFixture, TriggerPlane) {
        let f = try ControlFixture()
        f.clock.advance(try #require(RFC3339.date(start)).timeIntervalSince(f.clock.now))
        _ = try await f.plane.createWorkspace("main", caller: f.root)
        _ = try await f.plane.publish(.workflow, workspace: "main", text: ControlFixture.workflow(), caller: f.root)
        _ = try await f.plane.publish(.trigger, workspace: "main", text: Self.trigger(schedule), caller: f.root)
        return (f, TriggerPlane(control: f.plane, receivers: []))
    }

    /// The trigger `nightly` of workspace `main`, starting `build` on `schedule` (its line is line 6).
    static func trigger(_ schedule: String) -> String {
        """
        apiVersion: warden.dev/v1
        kind: Trigger
        metadata: {name: nightly, workspace: main}
        spec:
          source:
            schedule: \(schedule)
          workflow: build
        """
    }

    /// Ticks every five minutes until `end`; returns the planned times fired, in UTC.
    func tick(_ f: ControlFixture, _ plane: TriggerPlane, until end: String) async throws -> [String] {
        let stop = try #require(RFC3339.date(end))
        while f.clock.now < stop {
            f.clock.advance(300)
            try await plane.scheduleTick(holder: "scheduler")
        }
        let fires = try await f.store.events(receiver: "schedule", before: nil, limit: 100)
        return fires.reversed().compactMap {
            if case .string(let planned)? = (try? Value.parseJSON($0.event))?["data"]?["planned"] { planned } else { nil }
        }
    }

    @Test(arguments: [
        ("fireAfterGap", ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]),
        ("skip", ["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]),
    ])
    func springForwardFiresAfterTheGapOrSkipsTheDay(_ rule: String, _ expected: [String]) async throws {
        // 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist that night.
        let (f, plane) = try await fixture(
            start: "2026-03-27T23:00:00Z", schedule: "{cron: \"30 2 * * *\", timeZone: Europe/Berlin, skippedTimes: \(rule)}")
        defer { f.remove() }
        #expect(try await tick(f, plane, until: "2026-03-30T02:00:00Z") == expected)
    }

    @Test func fallBackFiresARepeatedTimeOnceAndAWildcardHourAtBoth() async throws {
        // 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice, an hour apart.
        let (f, plane) = try await fixture(start: "2026-10-24T22:00:00Z", schedule: "{cron: \"30 2 * * *\", timeZone: Europe/Berlin}")
        defer { f.remove() }
        #expect(try await tick(f, plane, until: "2026-10-25T03:00:00Z") == ["2026-10-25T00:30:00.000Z"])
        let (g, hourly) = try await fixture(start: "2026-10-24T23:30:00Z", schedule: "{cron: \"0 2 * * *\", timeZone: Europe/Berlin}")
        defer { g.remove() }
        #expect(try await tick(g, hourly, until: "2026-10-25T02:30:00Z") == ["2026-10-25T00:00:00.000Z"])
        let (h, wildcard) = try await fixture(start: "2026-10-24T23:30:00Z", schedule: "{cron: \"0 * * * *\", timeZone: Europe/Berlin}")
        defer { h.remove() }
        // Every real hour: 02:00 CEST (00:00Z), 02:00 CET (01:00Z), 03:00 CET (02:00Z).
        #expect(
            try await tick(h, wildcard, until: "2026-10-25T02:30:00Z") == [
                "2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z",
            ])
    }

    @Test func aScheduleRuleThatIsNotKnownIsRefusedWithItsPosition() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        _ = try await f.plane.createWorkspace("main", caller: f.root)
        let text = Self.trigger(#"{cron: "30 2 * * *", skippedTimes: later}"#)
        let error = await #expect(throws: (any Error).self) {
            _ = try await f.plane.publish(.trigger, workspace: "main", text: text, caller: f.root)
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("main/trigger.yaml:6:50"), "\(String(describing: error))")
        #expect("\(error.map { "\($0)" } ?? "")".contains("skippedTimes \"later\" must be fireAfterGap or skip"))
    }
}
