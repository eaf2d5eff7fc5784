import CProcess
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where no cgroup can be made, an attempt's program runs under a reaper: Warden's own binary in a hidden mode
/// (`warden __reap -- PROGRAM ARGS…`), which makes itself the child subreaper (`PR_SET_CHILD_SUBREAPER`), so that
/// every descendant that leaves the process group — `setsid`, a double fork — is re-parented to it rather than to
/// init. When the program exits, or when SIGTERM arrives (a timeout or a cancellation), the reaper ends every
/// descendant it can find (SIGTERM, then SIGKILL after 2 s), waits for them all, and exits as the program did.
public enum Reaper {
    /// The command-line word that starts the reaper mode.
    public static let command = "__reap"

    /// The executable that can be the reaper: `WARDEN_REAPER`, else this process's own binary when it is `warden`,
    /// else `warden` beside it (a test bundle's build directory); nil when there is none.
    static let executable: String? = {
        let env = ProcessInfo.processInfo.environment
        if let path = env["WARDEN_REAPER"], access(path, X_OK) == 0 { return path }
        guard let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        if (own as NSString).lastPathComponent == "warden" { return own }
        let beside = ((own as NSString).deletingLastPathComponent as NSString).appendingPathComponent("warden")
        return access(beside, X_OK) == 0 ? beside : nil
    }()

    nonisolated(unsafe) static var terminate: sig_atomic_t = 0

    /// Runs `arguments` (program and its arguments) as the reaper; never returns.
    public static func run(_ arguments: [String]) -> Never {
        guard let program = arguments.first else {
            FileHandle.standardError.write(Data("warden __reap: no program\n".utf8))
            exit(125)
        }
        guard warden_set_child_subreaper() == 0 else {
            FileHandle.standardError.write(Data("warden __reap: cannot become a child subreaper: \(String(cString: strerror(errno)))\n".utf8))
            exit(125)
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Reaper.terminate = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)

        let cArgs = arguments.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        // Same process group (the reaper leads it), same environment, same descriptors.
        let rc = posix_spawn(&pid, program, nil, nil, cArgs, environ)
        guard rc == 0 else {
            FileHandle.standardError.write(Data("warden __reap: cannot start \(program): \(String(cString: strerror(rc)))\n".utf8))
            exit(127)
        }
        var status: Int32 = 0
        var programDone = false
        var forwarded = false
        var deadline: Date?
        while true {
            var st: Int32 = 0
            // While the program runs and nothing asks to stop, wait without polling; SIGTERM interrupts the wait.
            let r = waitpid(-1, &st, programDone || terminate != 0 ? WNOHANG : 0)
            if r == pid {
                status = st
                programDone = true
                continue
            }
            if r > 0 { continue }
            if r < 0 {
                if errno == ECHILD { break }
                continue
            }
            // Children remain: end them — on SIGTERM politely first (forwarded once), then for good.
            let left = descendants()
            if terminate != 0 && !forwarded {
                for p in left { kill(p, SIGTERM) }
                forwarded = true
                deadline = Date().addingTimeInterval(2)
            } else if programDone || (deadline.map { Date() >= $0 } ?? true) {
                for p in left { kill(p, SIGKILL) }
            }
            usleep(2_000)
        }
        if !programDone { exit(137) }
        if status & 0x7f == 0 { exit((status >> 8) & 0xff) }
        let sig = status & 0x7f
        signal(sig, SIG_DFL)
        raise(sig)
        exit(128 + sig)
    }

    /// Every process descending from this one, from `/proc` (parents before children).
    static func descendants() -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var children: [pid_t: [pid_t]] = [:]
        for e in entries {
            guard let pid = pid_t(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, let ppid = pid_t(fields[1]) else { continue }
            children[ppid, default: []].append(pid)
        }
        var found: [pid_t] = []
        var queue = children[getpid()] ?? []
        while let p = queue.popLast() {
            found.append(p)
            queue += children[p] ?? []
        }
        return found
    }
}
