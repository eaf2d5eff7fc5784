import Foundation

/// Files that hold secrets or private state: created with their final permissions from the first byte, never
/// widened and narrowed afterwards.
public enum PrivateFiles {
    /// Writes `data` to a new temporary beside `path`, created with `mode` (`O_CREAT | O_EXCL`, so nothing else
    /// can have opened it first), synced, then renamed over `path`: readers see the old file or the whole new one.
    public static func writeAtomically(_ data: Data, to path: String, mode: mode_t) throws {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            defer { close(fd) }
            // The process umask may have narrowed `mode`; it never widens it. Set it exactly.
            guard fchmod(fd, mode) == 0 else { throw FileError("cannot set the mode of \(tmp): \(String(cString: strerror(errno)))") }
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw FileError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw FileError("cannot sync \(tmp): \(String(cString: strerror(errno)))") }
        }
        guard rename(tmp, path) == 0 else { throw FileError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
        ok = true
    }

    /// Creates `path` (and missing parents) as a directory only its owner can enter (0700); an existing directory
    /// is left as it is.
    public static func createDirectory(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(path, 0o700)
    }
}

/// A file Warden could not create, write, sync or rename: the reason names the path and the system's error.
public struct FileError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The error's code: extensible (a new code is a new static member); errors compare equal when their
    /// codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// Creating, writing, syncing or renaming failed (the system's error is in the reason).
        public static let io = Code(rawValue: "io")
    }

    public var code: Code
    public let reason: String
    public init(_ reason: String) { self.init(.io, reason) }
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public var description: String { reason }
    public static func == (a: FileError, b: FileError) -> Bool { a.code == b.code }
}
