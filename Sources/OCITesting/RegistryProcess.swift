import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A real CNCF distribution registry (Debian's `docker-registry`) on a free loopback port, for integration tests
/// and benchmarks. Missing binaries are an error that says how to install them; nothing is skipped silently.
///
/// The port is a `ReservedPort` held until `stop()`: no other test can be given it, not even while the registry is
/// down between a `kill()` and the next `launch()`.
public final class RegistryProcess: Sendable {
    public let port: Int
    private let reservation: ReservedPort?
    /// Storage directory (filesystem driver); blobs live under `docker/registry/v2/blobs`.
    public let root: String
    public let credentials: (username: String, password: String)?
    private let process: Mutex<Process?>
    public let configPath: String

    public var host: String { "127.0.0.1:\(port)" }

    public static let binary = "/usr/bin/docker-registry"

    /// Starts a registry; with `auth`, htpasswd (bcrypt) Basic authentication is required.
    public static func start(
        auth: (username: String, password: String)? = nil, tls: (certificate: String, key: String)? = nil, root: String? = nil, port: Int? = nil,
        notify: (url: String, authorization: String)? = nil
    ) async throws
        -> RegistryProcess
    {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError(.missingPeer, "\(binary) is missing: run scripts/test.sh (or `apt-get install docker-registry`) first")
        }
        let dir = root ?? NSTemporaryDirectory() + "warden-registry-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let reservation = port == nil ? try ReservedPort() : nil
        let port = port ?? reservation!.port
        var config = """
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(dir)/data
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:\(port)
              secret: warden-test-secret
            """
        if let tls {
            config += "\n  tls:\n    certificate: \(tls.certificate)\n    key: \(tls.key)\n"
        }
        if let auth {
            let htpasswd = try await runProgram("/usr/bin/htpasswd", ["-Bbn", auth.username, auth.password]).checked().output
            try Data(htpasswd.utf8).write(to: URL(fileURLWithPath: dir + "/htpasswd"))
            config += "\nauth:\n  htpasswd:\n    realm: warden-test\n    path: \(dir)/htpasswd\n"
        }
        if let notify {
            // Distribution's notifications: one endpoint, a static Authorization header, quick retries.
            config += """

                notifications:
                  endpoints:
                    - name: warden
                      url: \(notify.url)
                      headers:
                        Authorization: [\(notify.authorization)]
                      timeout: 2s
                      threshold: 3
                      backoff: 200ms

                """
        }
        let configPath = dir + "/config.yml"
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        let registry = RegistryProcess(port: port, reservation: reservation, root: dir, configPath: configPath, credentials: auth)
        try await registry.launch()
        return registry
    }

    private init(port: Int, reservation: ReservedPort?, root: String, configPath: String, credentials: (username: String, password: String)?) {
        self.port = port
        self.reservation = reservation
        self.root = root
        self.configPath = configPath
        self.credentials = credentials
        self.process = Mutex(nil)
    }

    /// Starts (or restarts, after `kill`) the process on the same port and storage.
    public func launch() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RegistryProcess.binary)
        p.arguments = ["serve", configPath]
        let log =
            FileHandle(forWritingAtPath: root + "/registry.log")
            ?? {
                FileManager.default.createFile(atPath: root + "/registry.log", contents: nil)
                return FileHandle(forWritingAtPath: root + "/registry.log")!
            }()
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process.withLock { $0 = p }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if canConnect(port: port) { return }
            if !p.isRunning {
                let text = (try? String(contentsOfFile: root + "/registry.log", encoding: .utf8)) ?? ""
                throw HarnessError(.peerDidNotStart, "docker-registry exited at start: \(text.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // A busy test process may wake late: look once more before giving up.
        if canConnect(port: port) { return }
        throw HarnessError(.peerDidNotStart, "docker-registry did not listen on 127.0.0.1:\(port) within 20 s")
    }

    /// Stops the process abruptly (SIGKILL), leaving its storage in place.
    public func kill() {
        process.withLock { p in
            guard let p, p.isRunning else { return }
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }

    /// Stops the process, removes its storage and gives its port back.
    public func stop() {
        kill()
        reservation?.release()
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit {
        process.withLock { p in
            if let p, p.isRunning {
                Glibc.kill(p.processIdentifier, SIGKILL)
            }
        }
    }

    /// Path of a blob's data file in the registry's storage (tests corrupt it to check verification).
    public func blobDataPath(_ hex: String) -> String {
        "\(root)/data/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }
}

/// An error of the test tools: a code (a peer that is not installed, one that did not start, a program that failed,
/// the machine refusing a resource) and a reason naming the program or resource and what to do.
public struct HarnessError: Error, CustomStringConvertible, Equatable {
    /// The error's code: extensible (a new code is a new static member); errors compare equal when their codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// A peer program is not installed (run scripts/test.sh).
        public static let missingPeer = Code(rawValue: "missingPeer")
        /// A peer did not start, or not in time.
        public static let peerDidNotStart = Code(rawValue: "peerDidNotStart")
        /// A program exited with a failure.
        public static let programFailed = Code(rawValue: "programFailed")
        /// The system refused a resource (a socket, a port, a directory) or an argument was unusable.
        public static let resource = Code(rawValue: "resource")
    }
    public var code: Code
    public let description: String
    public init(_ code: Code, _ reason: String) {
        self.code = code
        description = reason
    }
    public static func == (a: HarnessError, b: HarnessError) -> Bool { a.code == b.code }
}

/// Runs a program to completion and returns its standard output; a non-zero exit is an error with its stderr.
/// It blocks the calling thread: from async code, use `runProgram(_:_:)`, which does not.
@discardableResult
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
    let (status, out, err) = try runProcess(executable, arguments, environment: environment)
    guard status == 0 else {
        throw HarnessError(.programFailed, "\(executable) \(arguments.joined(separator: " ")) exited \(status): \(err)")
    }
    return String(decoding: out, as: UTF8.self)
}

/// Runs a program to completion: exit status, standard output bytes, standard error text.
/// It blocks the calling thread: from async code, use `runProgram(_:_:)`, which does not.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, Data, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let out = Pipe()
    // stderr goes to a file so that neither pipe can fill up and block the child.
    let errPath = NSTemporaryDirectory() + "warden-run-\(UUID().uuidString).err"
    FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    p.standardOutput = out
    p.standardError = FileHandle(forWritingAtPath: errPath)
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, data, (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// A TCP port on 127.0.0.1 that was free a moment ago — and may have been given to someone else since.
@available(*, deprecated, message: "racy: use ReservedPort, which holds the port until it is released")
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError(.resource, "socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard bound == 0 else { throw HarnessError(.resource, "bind() failed") }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

public func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return r == 0
}
