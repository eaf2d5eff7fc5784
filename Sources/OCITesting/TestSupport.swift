import Foundation
import OCI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// The helpers every test target needs: private temporary directories, waiting for a condition, running a program,
// and loopback ports nobody else can take. They never block a thread of Swift Concurrency's cooperative pool
// (on a 2-core machine it has two threads, and a test that parks one of them in `waitpid` can starve the in-process
// servers the program under test is talking to).

// MARK: - Temporary directories

/// Creates a new directory under the system's temporary directory (`TMPDIR`) and returns its path.
///
/// The directory is made by `mkdtemp(3)`: its name is unique (it never existed before) and it is private (mode
/// 0700), so no other test or user can have created it first or write into it. The caller removes it; prefer
/// `withTemporaryDirectory`, which does.
public func makeTemporaryDirectory(prefix: String = "warden-test") throws -> String {
    var base = NSTemporaryDirectory()
    if !base.hasSuffix("/") { base += "/" }
    var template = Array((base + prefix + "-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else {
        throw HarnessError(.resource, "cannot create a temporary directory under \(base): \(String(cString: strerror(errno)))")
    }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Runs `body` with a new private temporary directory (see `makeTemporaryDirectory`) and removes the directory
/// and everything in it afterwards, whether `body` returns or throws.
public func withTemporaryDirectory<T>(
    prefix: String = "warden-test", isolation: isolated (any Actor)? = #isolation, _ body: (String) async throws -> T
) async throws -> T {
    let path = try makeTemporaryDirectory(prefix: prefix)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// The synchronous twin of `withTemporaryDirectory`, for tests and helpers that do not suspend.
public func withTemporaryDirectory<T>(prefix: String = "warden-test", _ body: (String) throws -> T) throws -> T {
    let path = try makeTemporaryDirectory(prefix: prefix)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

// MARK: - Waiting

/// The condition of `waitFor` did not hold within its timeout.
public struct TimeoutError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Evaluates `condition` every `poll` until it returns true; throws `TimeoutError` (which fails the test) when it
/// still does not after `timeout`.
///
/// Between polls the task sleeps (`Task.sleep`): waiting holds no thread, so the work being waited for can run on
/// the same cooperative pool. The wait ends only when `timeout` has passed *and* the condition was evaluated
/// `timeout / poll` times: when the whole suite loads the machine, a sleeping task may wake seconds late, and the
/// condition still gets all its chances.
public func waitFor(
    _ what: String = "the condition", timeout: Duration = .seconds(10), poll: Duration = .milliseconds(20),
    isolation: isolated (any Actor)? = #isolation, fileID: String = #fileID, line: Int = #line, _ condition: () async throws -> Bool
) async throws {
    guard try await holdsWithin(timeout, poll: poll, condition) else {
        throw TimeoutError("\(what) (\(fileID):\(line)) did not hold within \(timeout)")
    }
}

/// Whether `condition` comes to hold within `timeout`, evaluated every `poll` as `waitFor` does (at least
/// `timeout / poll` times); for tests that assert either outcome (a process that must outlive a deadline as well as
/// one that must not).
public func holdsWithin(
    _ timeout: Duration, poll: Duration = .milliseconds(20), isolation: isolated (any Actor)? = #isolation,
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    let chances = max(1, Int((timeout / poll).rounded(.up)))
    var evaluated = 0
    while evaluated < chances || clock.now < deadline {
        if try await condition() { return true }
        evaluated += 1
        try await Task.sleep(for: poll)
    }
    return try await condition()
}

// MARK: - Running programs

/// How a program ran: its exit status (or the signal that ended it) and everything it wrote.
public struct ProcessResult: Sendable {
    /// The program and its arguments, for messages.
    public var command: [String]
    /// The pid the program ran as (no longer in use by it).
    public var pid: Int32
    /// The exit status, or the number of the signal that ended the program when `signalled`.
    public var status: Int32
    /// Whether a signal ended the program (`status` is then the signal's number).
    public var signalled: Bool
    public var standardOutput: Data
    public var standardError: Data

    /// Standard output as UTF-8 text.
    public var output: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Standard error as UTF-8 text.
    public var errorOutput: String { String(decoding: standardError, as: UTF8.self) }
    /// The program exited by itself with status 0.
    public var succeeded: Bool { !signalled && status == 0 }

    /// This result when the program succeeded; otherwise an error naming the command, its status and its stderr.
    @discardableResult
    public func checked() throws -> ProcessResult {
        guard succeeded else {
            let how = signalled ? "was killed by signal \(status)" : "exited \(status)"
            throw HarnessError(.programFailed, "\(command.joined(separator: " ")) \(how): \(errorOutput)")
        }
        return self
    }
}

/// Runs `executable` to completion and collects its exit status, standard output and standard error.
///
/// Everything that blocks — starting the process, reading its two pipes to their end (concurrently, so that
/// neither can fill up and stall the child), `waitpid` — happens on threads of its own, never on one of the
/// cooperative pool: the calling task suspends until the program has exited. Cancelling the task kills the
/// program (SIGKILL). Standard input is `input`, or empty (`/dev/null`).
///
/// - Parameters:
///   - environment: the program's whole environment; nil inherits this process's.
///   - currentDirectory: the working directory; nil inherits this process's.
///   - started: called with the program's pid once it runs (a test that signals the program later needs it).
public func runProgram(
    _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil, currentDirectory: String? = nil,
    input: Data? = nil, started: (@Sendable (Int32) -> Void)? = nil
) async throws -> ProcessResult {
    let control = ProgramControl()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        try runBlocking(
                            executable, arguments, environment: environment, currentDirectory: currentDirectory, input: input,
                            control: control, started: started)
                    })
            }
            thread.name = "runProgram \((executable as NSString).lastPathComponent)"
            thread.start()
        }
    } onCancel: {
        control.cancel()
    }
}

/// The pid of a running program and whether its task was cancelled, shared with the cancellation handler.
private final class ProgramControl: Sendable {
    private let state = Mutex<(pid: Int32, cancelled: Bool)>((0, false))

    func cancel() {
        state.withLock { s in
            s.cancelled = true
            if s.pid > 0 { kill(s.pid, SIGKILL) }
        }
    }

    /// Records the running program's pid; kills it at once when the task was cancelled before it started.
    func started(_ pid: Int32) {
        state.withLock { s in
            s.pid = pid
            if s.cancelled { kill(pid, SIGKILL) }
        }
    }

    func exited() { state.withLock { $0.pid = 0 } }
}

/// Reads a file handle to its end on a new thread; `wait()` returns the bytes.
private final class BackgroundReader: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let bytes = Mutex(Data())

    init(_ handle: FileHandle) {
        Thread { [self] in
            let data = handle.readDataToEndOfFile()
            bytes.withLock { $0 = data }
            done.signal()
        }.start()
    }

    func wait() -> Data {
        done.wait()
        return bytes.withLock { $0 }
    }
}

/// The blocking part of `runProgram`, on a dedicated thread.
private func runBlocking(
    _ executable: String, _ arguments: [String], environment: [String: String]?, currentDirectory: String?, input: Data?,
    control: ProgramControl, started: (@Sendable (Int32) -> Void)?
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    let stdin = input.map { _ in Pipe() }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin ?? FileHandle.nullDevice
    try process.run()
    control.started(process.processIdentifier)
    started?(process.processIdentifier)
    // `run()` closed this process's copies of the child's pipe ends, so the reads below see the pipes' end.
    if let stdin, let input {
        let writer = stdin.fileHandleForWriting
        Thread {
            // A program that exits without reading all its input makes the write fail with EPIPE. SIGPIPE is
            // blocked on this thread only, so it cannot end the test process; it dies with the thread.
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            try? writer.write(contentsOf: input)
            try? writer.close()
        }.start()
    }
    let errors = BackgroundReader(err.fileHandleForReading)
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errorBytes = errors.wait()
    process.waitUntilExit()
    control.exited()
    return ProcessResult(
        command: [executable] + arguments, pid: process.processIdentifier, status: process.terminationStatus,
        signalled: process.terminationReason == .uncaughtSignal,
        standardOutput: output, standardError: errorBytes)
}

// MARK: - Loopback ports

/// A TCP port on 127.0.0.1 that is held for its owner until `release()` (or until the reservation is gone), so
/// that no other process or parallel test can be given it in the meantime.
///
/// Asking for a "free" port by binding to port 0 and closing the socket again races: between that close and the
/// server's own bind, the kernel may hand the same port to anyone else. A reservation keeps its socket bound
/// instead — with `SO_REUSEADDR`, and never listening:
/// - Linux gives no bound port to another socket that binds to port 0 or connects without binding, so no other
///   test can draw it while it is reserved;
/// - the server the test starts binds that address explicitly with `SO_REUSEADDR` — Go's net package sets it on
///   every listener (so `docker-registry` does), as does NIO with `.so_reuseaddr` — which Linux allows next to a
///   bound socket that does not listen; a socket without `SO_REUSEADDR` is refused (`EADDRINUSE`), never shared;
/// - while the server is down (stopped to be restarted on the same port), the port stays reserved.
///
/// An in-process server does not need a second socket at all: `takeSocket()` hands over the bound descriptor, to
/// `listen(2)` on or to give to `ServerBootstrap.withBoundSocket(_:)`.
public final class ReservedPort: Sendable {
    public let port: Int
    private let descriptor: Mutex<Int32>

    /// Reserves a port the kernel chooses among the free ones.
    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(.resource, "socket() failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound =
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0
            && withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } } == 0
            && withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } } == 0
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw HarnessError(.resource, "cannot reserve a loopback port: \(reason)")
        }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
        self.descriptor = Mutex(fd)
    }

    public var host: String { "127.0.0.1:\(port)" }

    /// Whether the port is still reserved (neither released nor handed over).
    public var isHeld: Bool { descriptor.withLock { $0 >= 0 } }

    /// Hands the bound socket over to the caller, who then owns (and closes) it: the reservation ends without the
    /// port ever being free.
    public func takeSocket() throws -> Int32 {
        try descriptor.withLock { fd in
            guard fd >= 0 else { throw HarnessError(.resource, "the reservation of port \(port) was already released") }
            defer { fd = -1 }
            return fd
        }
    }

    /// Ends the reservation; the port is free again once no server listens on it.
    public func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}

// MARK: - Manifests

extension RawManifest.Parsed {
    /// The image manifest, or nil when this is an index: `try #require(raw.parsed().imageManifest)` in a test.
    public var imageManifest: ImageManifest? {
        if case .image(let manifest) = self { manifest } else { nil }
    }

    /// The index, or nil when this is an image manifest.
    public var imageIndex: ImageIndex? {
        if case .index(let index) = self { index } else { nil }
    }
}
