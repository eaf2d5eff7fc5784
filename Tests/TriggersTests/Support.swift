import CEL
import Foundation
import Testing

@testable import Triggers

/// The recorded-shape payloads under Fixtures/.
enum Fixture {
    static func bytes(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return [UInt8](try Data(contentsOf: url))
    }

    static func text(_ name: String) throws -> String { String(decoding: try bytes(name), as: UTF8.self) }
}

/// 2026-03-02T09:14:07Z, the time the fixtures' pushes happened.
let fixtureNow = Date(timeIntervalSince1970: 1_772_442_847)

/// The rejection `body` throws, or nil when it returns.
func rejection(_ body: () throws -> [TriggerEvent]) -> ReceiverRejection? {
    do {
        _ = try body()
        return nil
    } catch let e as ReceiverRejection {
        return e
    } catch {
        Issue.record("not a ReceiverRejection: \(error)")
        return nil
    }
}

/// `data.key` of an event.
func data(_ event: TriggerEvent, _ key: String) -> Value? { event.data.value[key] }

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

let manifestDigest = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
