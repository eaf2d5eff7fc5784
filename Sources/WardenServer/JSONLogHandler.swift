import Documents
import Foundation
import Logging
import Synchronization

/// A `LogHandler` that writes each entry as one JSON object on one line, with secrets redacted.
///
/// An entry's keys: `time` (RFC 3339, UTC, milliseconds: `2025-03-01T12:00:00.123Z`), `level`, `label`, `message`,
/// `source`, `error` (when the entry carries one), then the merged metadata — the handler's, the metadata
/// provider's, the call's, later ones winning — with nested metadata as JSON objects and arrays. A metadata key that
/// is one of the entry's own keys is written as `metadata.<key>`.
///
/// Redaction is always on (see ``redact(_:)`` and ``isSensitiveKey(_:)``):
/// - the value of a metadata key naming a credential (`authorization`, `cookie`, `token`, `secret`, `password`,
///   `passphrase`, `apikey`/`api_key`, `private_key`, in any case, anywhere in the key, at any depth) is `[REDACTED]`;
/// - in every string, the message, the error and each metadata value and key, a Warden API token (`wdn_…`), a JWT
///   (`eyJ….….…`) and a bearer credential (`Bearer …`) become `[REDACTED]`.
///
/// Lines are written whole, each under a lock shared by all copies of a handler and, for file
/// handles, by all handlers of the process.
public struct JSONLogHandler: LogHandler {
    /// Receives one log line, a JSON object without the line feed. Calls are serialized.
    public typealias Sink = @Sendable (String) -> Void

    /// What a redacted value or substring is replaced with.
    public static let redacted = "[REDACTED]"

    /// The logger's label, written as `label`.
    public let label: String

    /// The least severe level written.
    public var logLevel: Logger.Level

    /// Metadata written with every entry (overridden by the provider's and the call's).
    public var metadata: Logger.Metadata = [:]

    /// Provides metadata for every entry (e.g. from the task's context), overriding the handler's.
    public var metadataProvider: Logger.MetadataProvider?

    private let output: LineOutput

    /// A handler that passes each line to `sink`.
    /// - Parameters:
    ///   - label: The logger's label.
    ///   - level: The least severe level written.
    ///   - metadataProvider: Provides metadata for every entry; the logging system's by default.
    ///   - sink: Receives each line without its line feed; calls never overlap.
    public init(
        label: String,
        level: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
        sink: @escaping Sink
    ) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.output = LineOutput(lock: LineLock(), write: sink)
    }

    /// A handler that writes each line, with a line feed, to `fileHandle` (standard error by default).
    /// - Parameters:
    ///   - label: The logger's label.
    ///   - level: The least severe level written.
    ///   - metadataProvider: Provides metadata for every entry; the logging system's by default.
    ///   - fileHandle: Where lines are written; a write error is ignored.
    public init(
        label: String,
        level: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
        fileHandle: FileHandle = .standardError
    ) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.output = LineOutput(lock: LineLock.files) { line in
            try? fileHandle.write(contentsOf: Data((line + "\n").utf8))
        }
    }

    /// A handler writing to standard error, for `LoggingSystem.bootstrap { JSONLogHandler.standardError(label: $0) }`.
    public static func standardError(label: String, level: Logger.Level = .info) -> JSONLogHandler {
        JSONLogHandler(label: label, level: level, fileHandle: .standardError)
    }

    /// The handler's metadata value for `metadataKey`.
    public subscript(metadataKey metadataKey: String) -> Logger.Metadata.Value? {
        get { metadata[metadataKey] }
        set { metadata[metadataKey] = newValue }
    }

    /// Writes `event` as one JSON line.
    public func log(event: LogEvent) {
        output.write(line(for: event, at: Date()))
    }

    /// The JSON line for `event` logged at `time`, redacted, without its line feed.
    func line(for event: LogEvent, at time: Date) -> String {
        var merged = metadata
        for layer in [metadataProvider?.get(), event.metadata] {
            guard let layer, !layer.isEmpty else { continue }
            if merged.isEmpty { merged = layer } else { merged.merge(layer) { $1 } }
        }
        var json = JSONWriter()
        json.open()
        json.field("time", raw: Self.timestamp(time))
        json.field("level", event.level.rawValue)
        json.field("label", Self.redact(label))
        json.field("message", Self.redact(event.message.description))
        json.field("source", Self.redact(event.source))
        if let error = event.error {
            json.field("error", Self.redact(String(describing: error)))
        }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            json.key(Self.redact(Self.reservedKeys.contains(key) ? "metadata." + key : key))
            if Self.isSensitiveKey(key) {
                json.string(Self.redacted)
            } else {
                json.value(value)
            }
        }
        json.close()
        return json.text
    }

    private static let reservedKeys: Set<String> = ["time", "level", "label", "message", "source", "error"]

    // MARK: Redaction

    private static let sensitiveKeyParts: [[UInt8]] = [
        "authorization", "cookie", "token", "secret", "password", "passwd", "passphrase", "apikey", "privatekey",
    ].map { Array($0.utf8) }

    /// Whether a metadata key names a credential: it contains, ignoring case, `-` and `_`, one of
    /// `authorization`, `cookie`, `token`, `secret`, `password`, `passwd`, `passphrase`, `apikey`, `privatekey`.
    public static func isSensitiveKey(_ key: String) -> Bool {
        var folded: [UInt8] = []
        folded.reserveCapacity(key.utf8.count)
        for byte in key.utf8 where byte != UInt8(ascii: "-") && byte != UInt8(ascii: "_") {
            folded.append((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte)
        }
        return sensitiveKeyParts.contains { part in
            folded.count >= part.count
                && (0...(folded.count - part.count)).contains { start in
                    (0..<part.count).allSatisfy { folded[start + $0] == part[$0] }
                }
        }
    }

    /// `text` with every credential-looking substring replaced by `[REDACTED]`:
    /// - a Warden API token: `wdn_` and at least 8 base64url characters (`A-Z a-z 0-9 - _`);
    /// - a JWT: `eyJ` and base64url, a dot, base64url, a dot, and the signature's base64url characters (possibly none);
    /// - a bearer credential: the word `Bearer` (any case), spaces, and the credential's token68 characters.
    public static func redact(_ text: String) -> String {
        if let redacted = text.utf8.withContiguousStorageIfAvailable({ redact(text, bytes: $0) }) {
            return redacted
        }
        var contiguous = text
        contiguous.makeContiguousUTF8()
        return contiguous.utf8.withContiguousStorageIfAvailable { redact(contiguous, bytes: $0) } ?? contiguous
    }

    private static func redact(_ text: String, bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        var copied = 0
        var i = 0
        while i < bytes.count {
            if let end = credentialEnd(bytes, at: i) {
                if out.isEmpty { out.reserveCapacity(bytes.count) }
                out.append(contentsOf: bytes[copied..<i])
                out.append(contentsOf: redacted.utf8)
                i = end
                copied = end
            } else {
                i += 1
            }
        }
        guard copied > 0 else { return text }
        out.append(contentsOf: bytes[copied...])
        return String(decoding: out, as: UTF8.self)
    }

    /// The end of a credential starting at `i`, or nil.
    private static func credentialEnd(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        switch bytes[i] {
        case UInt8(ascii: "w"):
            guard has(bytes, "wdn_", at: i) else { return nil }
            let end = run(bytes, from: i + 4, of: isBase64URL)
            return end - (i + 4) >= 8 ? end : nil
        case UInt8(ascii: "e"):
            guard has(bytes, "eyJ", at: i) else { return nil }
            let header = run(bytes, from: i + 3, of: isBase64URL)
            guard header < bytes.count, bytes[header] == UInt8(ascii: ".") else { return nil }
            let payload = run(bytes, from: header + 1, of: isBase64URL)
            guard payload > header + 1, payload < bytes.count, bytes[payload] == UInt8(ascii: ".") else { return nil }
            return run(bytes, from: payload + 1, of: isBase64URL)
        case UInt8(ascii: "b"), UInt8(ascii: "B"):
            guard hasIgnoringCase(bytes, "bearer", at: i), i == 0 || !isAlphanumeric(bytes[i - 1]) else { return nil }
            let spaces = run(bytes, from: i + 6) { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            guard spaces > i + 6 else { return nil }
            let end = run(bytes, from: spaces, of: isToken68)
            return end > spaces ? end : nil
        default:
            return nil
        }
    }

    private static func has(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: StaticString, at i: Int) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard i + count <= bytes.count else { return false }
        return prefix.withUTF8Buffer { prefix in
            (0..<count).allSatisfy { bytes[i + $0] == prefix[$0] }
        }
    }

    private static func hasIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString, at i: Int) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard i + count <= bytes.count else { return false }
        return lowercase.withUTF8Buffer { prefix in
            (0..<count).allSatisfy { bytes[i + $0] | 0x20 == prefix[$0] }
        }
    }

    private static func run(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, of belongs: (UInt8) -> Bool) -> Int {
        var end = start
        while end < bytes.count && belongs(bytes[end]) { end += 1 }
        return end
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// RFC 7235's token68: base64url, base64 and their padding, and `.` and `~`.
    private static func isToken68(_ byte: UInt8) -> Bool {
        isBase64URL(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
    }

    // MARK: Time

    /// `time` as RFC 3339 in UTC with milliseconds, e.g. `2025-03-01T12:00:00.123Z` (the one form, `RFC3339.string`).
    static func timestamp(_ time: Date) -> String { RFC3339.string(time) }
}

/// A lock around writing lines.
private final class LineLock: Sendable {
    /// The one lock of every handler writing to a file handle, so that handlers sharing a descriptor never interleave.
    static let files = LineLock()

    let mutex = Mutex(())
}

/// Where a handler's lines go, shared by the handler's copies.
private final class LineOutput: Sendable {
    private let lock: LineLock
    private let sink: JSONLogHandler.Sink

    init(lock: LineLock, write: @escaping JSONLogHandler.Sink) {
        self.lock = lock
        self.sink = write
    }

    func write(_ line: String) {
        lock.mutex.withLock { _ in sink(line) }
    }
}

/// Builds one JSON object as text; strings are redacted by the caller, except metadata values, redacted here.
private struct JSONWriter {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    private(set) var bytes: [UInt8] = []
    private var first = true

    init() { bytes.reserveCapacity(256) }

    /// The object's text.
    var text: String { String(decoding: bytes, as: UTF8.self) }

    mutating func open() { bytes.append(UInt8(ascii: "{")) }

    mutating func close() { bytes.append(UInt8(ascii: "}")) }

    mutating func key(_ name: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        string(name)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    mutating func field(_ name: String, raw value: String) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: value.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func value(_ value: Logger.Metadata.Value) {
        switch value {
        case .string(let string):
            self.string(JSONLogHandler.redact(string))
        case .stringConvertible(let convertible):
            self.string(JSONLogHandler.redact(convertible.description))
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                self.value(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, element)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                string(JSONLogHandler.redact(key))
                bytes.append(UInt8(ascii: ":"))
                if JSONLogHandler.isSensitiveKey(key) {
                    string(JSONLogHandler.redacted)
                } else {
                    self.value(element)
                }
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal; control characters are escaped, so a line never breaks.
    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): bytes.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): bytes.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                bytes.append(contentsOf: #"\u00"#.utf8)
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
