import CEL
import Documents
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Resource limits of an action's process, applied with util-linux `prlimit` before the program starts.
public struct ProcessLimits: Sendable, Equatable {
    /// Address space (RLIMIT_AS), bytes.
    public var memory: Int?
    /// Open files (RLIMIT_NOFILE).
    public var openFiles: Int?
    /// CPU seconds (RLIMIT_CPU).
    public var cpuSeconds: Int?
    public init(memory: Int? = nil, openFiles: Int? = nil, cpuSeconds: Int? = nil) {
        self.memory = memory
        self.openFiles = openFiles
        self.cpuSeconds = cpuSeconds
    }

    /// `{memory: 256Mi | bytes, openFiles: N, cpu: seconds}`.
    static func parse(_ v: Value?) throws -> ProcessLimits {
        guard let v else { return ProcessLimits() }
        guard case .map = v else { throw ActionFailure(.permanent, "limits must be a map {memory, openFiles, cpu}") }
        var l = ProcessLimits()
        if let m = v["memory"] {
            switch m {
            case .int(let i): l.memory = Int(i)
            case .string(let s):
                let units: [(String, Int)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("K", 1000), ("M", 1_000_000), ("G", 1_000_000_000)]
                guard let (suffix, factor) = units.first(where: { s.hasSuffix($0.0) }), let n = Int(s.dropLast(suffix.count)) else {
                    throw ActionFailure(.permanent, "limits.memory: \"\(s)\" is not a size (bytes, or 256Mi, 1Gi)")
                }
                l.memory = n * factor
            default: throw ActionFailure(.permanent, "limits.memory must be bytes or a size like 256Mi")
            }
        }
        if case .int(let n)? = v["openFiles"] { l.openFiles = Int(n) }
        if case .int(let n)? = v["cpu"] { l.cpuSeconds = Int(n) }
        return l
    }

    var prlimitArguments: [String] {
        var a: [String] = []
        if let memory { a.append("--as=\(memory)") }
        if let openFiles { a.append("--nofile=\(openFiles)") }
        if let cpuSeconds { a.append("--cpu=\(cpuSeconds)") }
        return a
    }
}

/// How a process ended.
public enum Termination: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)
}

/// Child processes: spawned with exactly the environment given, in their own process group and, where available,
/// their own cgroup (so ending an attempt stops everything it started, see `Containment`), stdin from a file,
/// stdout to a file and stderr appended to the attempt's log — both through pipes that Warden drains, keeping at
/// most `stdoutLimit` and `stderrLimit` bytes (a program writing gigabytes fills no disk; what is cut is counted in
/// the log).
public enum ChildProcess {
    /// Bytes of stdout kept: one more than the outputs limit, so that an oversized output is noticed.
    public static let stdoutLimit = (16 << 20) + 1
    /// Bytes of stderr kept in the attempt's log.
    public static let stderrLimit = 8 << 20

    /// How an attempt's processes are held together.
    public enum Containment: String, Sendable {
        /// A cgroup per attempt: every descendant ends with the attempt, even one that left the process group.
        case cgroup
        /// A reaper per attempt (`Reaper`: a child subreaper), where no cgroup can be made: descendants that leave
        /// the process group are re-parented to it and ended with the attempt.
        case subreaper
        /// The process group only (neither is available): a descendant that calls `setsid` survives.
        case processGroup = "process group"
    }

    /// What this process uses: the best available, or what `WARDEN_PROCESS_CONTAINMENT` (`cgroup`, `subreaper`,
    /// `group`) asks for when it is available. Decided once.
    public static let containment: Containment = {
        let asked = ProcessInfo.processInfo.environment["WARDEN_PROCESS_CONTAINMENT"]
        switch asked {
        case "group": return .processGroup
        case "subreaper": return Reaper.executable != nil ? .subreaper : .processGroup
        default:
            if AttemptCgroup.parent != nil { return .cgroup }
            return Reaper.executable != nil ? .subreaper : .processGroup
        }
    }()

    public static func run(
        executable: String, arguments: [String], environment: [String: String], directory: String, stdin: String, stdout: String,
        stderr: String, limits: ProcessLimits = ProcessLimits()
    ) async throws -> Termination {
        let out = try Drain.open(stdout, append: false, limit: stdoutLimit, what: "stdout")
        let err: Drain
        do {
            err = try Drain.open(stderr, append: true, limit: stderrLimit, what: "stderr")
        } catch {
            out.finish(grace: 0)
            throw error
        }
        var argv = [executable] + arguments
        var path = executable
        let wrap = limits.prlimitArguments
        if !wrap.isEmpty {
            path = "/usr/bin/prlimit"
            argv = [path] + wrap + ["--"] + argv
        }
        // Where cgroups are available, the program starts inside its attempt's cgroup: a small shell enters it,
        // then becomes the program.
        let mode = Self.containment
        let cgroup = mode == .cgroup ? AttemptCgroup.create() : nil
        if mode == .subreaper, let reaper = Reaper.executable {
            argv = [reaper, Reaper.command, "--"] + argv
            path = reaper
        }
        if let cgroup {
            // The shell's own PWD is not passed on: the program gets exactly the declared environment.
            let pwd = environment["PWD"].map { "PWD=" + WorkflowDefinition.Argument.shellQuote($0) } ?? "unset PWD"
            argv = ["/bin/sh", "-c", #"echo $$ > "$0" || exit 125; "# + pwd + #"; exec "$@""#, cgroup.procsFile] + argv
            path = "/bin/sh"
        }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, out.writeEnd, 1)
        posix_spawn_file_actions_adddup2(&fa, err.writeEnd, 2)
        // glibc's chdir and closefrom file actions (2.29, 2.34) are not in Swift's Glibc module: looked up at run time.
        guard let chdir = Self.addChdir else { throw ActionFailure(.permanent, "this C library cannot start processes in a directory") }
        _ = chdir(&fa, directory)
        _ = Self.addClosefrom?(&fa, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setpgroup(&attr, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attr, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var spawned: pid_t = 0
        let rc = posix_spawn(&spawned, path, &fa, &attr, cArgs, cEnv)
        let pid = spawned
        // The child has its copies; the parent's write ends close so that the drains see the end of the output.
        out.closeWriteEnd()
        err.closeWriteEnd()
        guard rc == 0 else {
            out.finish(grace: 0)
            err.finish(grace: 0)
            cgroup?.end()
            throw ActionFailure(.permanent, "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        out.start()
        err.start()
        let exited = Mutex(false)
        let status: Int32 = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
                Thread.detachNewThread {
                    var st: Int32 = 0
                    while waitpid(pid, &st, 0) == -1 && errno == EINTR {}
                    exited.withLock { $0 = true }
                    c.resume(returning: st)
                }
            }
        } onCancel: {
            exited.withLock { done in
                if !done {
                    kill(-pid, SIGTERM)
                    cgroup?.signal(SIGTERM)
                }
            }
            // A reaper ends what escaped the group itself, 2 s after SIGTERM: it is given longer before the group goes.
            DispatchQueue.global().asyncAfter(deadline: .now() + (mode == .subreaper ? 5 : 2)) {
                // Still running after the grace period: the whole group (and cgroup) is killed.
                // Under the lock: once the leader is reaped, its pid and its (reusable) cgroup are someone else's.
                exited.withLock { done in
                    if !done {
                        kill(-pid, SIGKILL)
                        cgroup?.killAll()
                    }
                }
            }
        }
        // Whatever the leader left behind in its group, or anywhere in its cgroup, goes with it.
        kill(-pid, SIGKILL)
        cgroup?.killAll()
        // Without a cgroup, a descendant that left the group may still hold the pipes open: wait for the output
        // briefly, not forever.
        out.finish(grace: 2)
        err.finish(grace: 2)
        cgroup?.end()
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(status & 0x7f)
    }

    /// A pipe whose read end a thread copies into a file, keeping at most `limit` bytes and draining the rest.
    final class Drain: @unchecked Sendable {
        let readEnd: Int32
        private(set) var writeEnd: Int32
        let file: Int32
        let limit: Int
        let what: String
        let done = DispatchSemaphore(value: 0)
        let stop = Mutex(false)
        var started = false

        static func open(_ path: String, append: Bool, limit: Int, what: String) throws -> Drain {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw ActionFailure(.retryable, "cannot create a pipe: \(String(cString: strerror(errno)))") }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            let file = Glibc.open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o600)
            guard file >= 0 else {
                close(fds[0])
                close(fds[1])
                throw ActionFailure(.retryable, "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            return Drain(readEnd: fds[0], writeEnd: fds[1], file: file, limit: limit, what: what)
        }

        init(readEnd: Int32, writeEnd: Int32, file: Int32, limit: Int, what: String) {
            self.readEnd = readEnd
            self.writeEnd = writeEnd
            self.file = file
            self.limit = limit
            self.what = what
        }

        func closeWriteEnd() {
            if writeEnd >= 0 { close(writeEnd) }
            writeEnd = -1
        }

        func start() {
            started = true
            Thread.detachNewThread { [self] in
                var kept = 0
                var dropped = 0
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while !stop.withLock({ $0 }) {
                    var p = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                    let ready = poll(&p, 1, 200)
                    if ready == 0 { continue }
                    if ready < 0 {
                        if errno == EINTR { continue }
                        break
                    }
                    let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { break }
                    let keep = min(n, max(0, limit - kept))
                    if keep > 0 { _ = buffer.withUnsafeBytes { write(file, $0.baseAddress, keep) } }
                    kept += keep
                    dropped += n - keep
                }
                if dropped > 0 {
                    let note = "\n[warden: \(dropped) more bytes of \(what) not kept; the limit is \(limit) bytes]\n"
                    _ = note.withCString { write(file, $0, strlen($0)) }
                }
                done.signal()
            }
        }

        /// Waits up to `grace` seconds for the output to end, then closes everything.
        func finish(grace: Double) {
            closeWriteEnd()
            if started, done.wait(timeout: .now() + grace) == .timedOut {
                // Held open by a process that escaped the group: stop reading.
                stop.withLock { $0 = true }
                done.wait()
            }
            close(readEnd)
            close(file)
        }
    }

    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    static let addChdir: AddChdir? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: AddChdir.self)
    }
    static let addClosefrom: AddClosefrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddClosefrom.self)
    }

    /// `name` found in `PATH` (colon-separated), or nil.
    static func search(_ name: String, path: String) -> String? {
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// The `process` runtime: any executable as an action (contract v1, docs/actions.md).
public struct ProcessRuntime: Sendable {
    public var command: [String]
    /// Declared environment; nothing else of Warden's environment reaches the program but `passEnv` names.
    public var environment: [String: String]
    public var passEnv: [String]
    /// `stdout` (default) or `file` (`$WARDEN_OUTPUTS`).
    public var output: String
    public var limits: ProcessLimits
    /// Where a relative command is found (a manifest's directory, or the workflow's).
    public var baseDirectory: String?

    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    /// Settings from a `with:` (`process@v1`) or a manifest's `process:` section.
    public init(settings: Value, baseDirectory: String?) throws {
        switch settings["command"] {
        case .string(let s)?: command = ["/bin/sh", "-c", s]
        case .list(let l)? where !l.isEmpty:
            command = try l.map {
                guard case .string(let s) = $0 else { throw ActionFailure(.permanent, "command must be a list of strings") }
                return s
            }
        default: throw ActionFailure(.permanent, "command is missing: a list of strings (program and arguments) or a shell line")
        }
        var env: [String: String] = [:]
        if case .map(let entries)? = settings["env"] {
            for (k, v) in entries {
                guard case .string(let key) = k else { continue }
                env[key] = v.stringValue ?? v.jsonText()
            }
        }
        environment = env
        passEnv = settings["passEnv"].flatMap { if case .list(let l) = $0 { l.compactMap(\.stringValue) } else { nil } } ?? []
        output = settings["output"]?.stringValue ?? "stdout"
        guard output == "stdout" || output == "file" else { throw ActionFailure(.permanent, "output must be stdout or file") }
        limits = try ProcessLimits.parse(settings["limits"])
        self.baseDirectory = baseDirectory
    }

    public func run(input: Value, context: ActionContext) async throws -> ActionResult {
        let work = context.workDirectory
        let fm = FileManager.default
        // Only what the attempt needs is created: directories cost (mkdir is the most expensive part of starting a
        // short program here).
        let inputsFile = work + "/.warden-inputs.json"
        let outputsFile = work + "/.warden-outputs.json"
        let stdoutFile = work + "/.warden-stdout"
        let artifactsOut = work + "/.warden-artifacts-out"
        let artifactsIn = work + "/.warden-artifacts-in"
        let credentials = work + "/.warden-credentials"
        try PrivateFiles.createDirectory(artifactsOut)
        try Data(input.jsonText().utf8).write(to: URL(fileURLWithPath: inputsFile))
        if !context.artifacts.isEmpty {
            try fm.createDirectory(atPath: artifactsIn, withIntermediateDirectories: false)
            for (name, path) in context.artifacts { try fm.copyItem(atPath: path, toPath: artifactsIn + "/" + name) }
        }
        if !context.credentials.isEmpty {
            try PrivateFiles.createDirectory(credentials)
            for (slot, secret) in context.credentials {
                try PrivateFiles.writeAtomically(Data(secret.utf8), to: credentials + "/" + slot, mode: 0o600)
            }
        }
        // Secrets live only as long as the attempt, whether it succeeds, fails or is cancelled.
        defer { if !context.credentials.isEmpty { try? fm.removeItem(atPath: credentials) } }
        var env = environment
        env["PATH"] = env["PATH"] ?? Self.defaultPath
        env["HOME"] = env["HOME"] ?? work
        env["TMPDIR"] = env["TMPDIR"] ?? work
        env["LANG"] = env["LANG"] ?? "C.UTF-8"
        let host = ProcessInfo.processInfo.environment
        for name in passEnv { if let v = host[name] { env[name] = v } }
        env["WARDEN_RUN"] = context.run
        env["WARDEN_STEP"] = context.step
        env["WARDEN_ITEM"] = String(context.item)
        env["WARDEN_ATTEMPT"] = String(context.attempt)
        env["WARDEN_ATTEMPT_KEY"] = context.key
        env["WARDEN_WORKDIR"] = work
        env["WARDEN_INPUTS"] = inputsFile
        env["WARDEN_OUTPUTS"] = outputsFile
        env["WARDEN_ARTIFACTS_IN"] = artifactsIn
        env["WARDEN_ARTIFACTS_OUT"] = artifactsOut
        env["WARDEN_CREDENTIALS"] = credentials

        var executable = command[0]
        if !executable.contains("/") {
            guard let found = ChildProcess.search(executable, path: env["PATH"]!) else {
                throw ActionFailure(.permanent, "\(executable): not found in PATH \(env["PATH"]!)")
            }
            executable = found
        } else if !executable.hasPrefix("/") {
            executable = ((baseDirectory ?? context.baseDirectory) as NSString).appendingPathComponent(executable)
        }
        guard access(executable, X_OK) == 0 else { throw ActionFailure(.permanent, "\(executable): not an executable file") }
        context.log("$ \(command.joined(separator: " "))")
        let termination = try await ChildProcess.run(
            executable: executable, arguments: Array(command.dropFirst()), environment: env, directory: work, stdin: inputsFile, stdout: stdoutFile,
            stderr: context.logFile, limits: limits)
        try Task.checkCancellation()
        switch termination {
        case .signaled(let s):
            let hint = s == SIGKILL && limits.cpuSeconds != nil ? " (CPU limit?)" : s == SIGXCPU ? " (CPU limit)" : ""
            throw ActionFailure(.retryable, "\(command[0]) was killed by signal \(s)\(hint)\(tail(context.logFile))")
        case .exited(let code):
            if let cls = ActionFailure.forExitCode(code) {
                throw ActionFailure(cls, "\(command[0]) exited with code \(code)\(tail(context.logFile))")
            }
        }
        let outFile = output == "file" ? outputsFile : stdoutFile
        let data = fm.contents(atPath: outFile) ?? Data()
        guard data.count <= 16 << 20 else { throw ActionFailure(.permanent, "outputs are larger than 16 MiB") }
        var outputs: Value = .map([])
        if !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            do { outputs = try Value.parseJSON([UInt8](data)) } catch {
                throw ActionFailure(.permanent, "outputs (\(output == "file" ? "$WARDEN_OUTPUTS" : "stdout")) are not JSON: \(error)")
            }
            guard case .map = outputs else { throw ActionFailure(.permanent, "outputs must be a JSON object, not \(jsonTypeName(outputs))") }
        }
        var artifacts: [OutputArtifact] = []
        for name in (try? fm.contentsOfDirectory(atPath: artifactsOut))?.sorted() ?? [] {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: artifactsOut + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                artifacts.append(OutputArtifact(name: name, path: artifactsOut + "/" + name))
            }
        }
        return ActionResult(outputs: outputs, artifacts: artifacts)
    }

    /// The end of the log, for error messages.
    func tail(_ file: String) -> String {
        guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else { return "" }
        let text = String(decoding: data.suffix(400), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("$ ") }.suffix(3)
        return text.isEmpty ? "" : ": " + text.joined(separator: " | ")
    }
}
