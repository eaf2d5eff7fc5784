import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A cgroup (v2) holding every process an attempt starts: a descendant that calls `setsid` or double-forks leaves
/// its process group but not its cgroup, so ending the attempt (`cgroup.kill`) ends all of them. Created beside
/// Warden's own cgroup when that is writable (root, or a delegated subtree); elsewhere attempts are held by their
/// process group only (`ChildProcess.containment` says which).
final class AttemptCgroup: Sendable {
    let path: String

    /// The directory under which attempts' cgroups are made, found once: Warden's own cgroup in the cgroup2 mount,
    /// if a child cgroup can be created there and has `cgroup.kill` (Linux 5.14).
    static let parent: String? = {
        guard let parent = candidateParent() else { return nil }
        sweepStale(parent)
        let probe = parent + "/warden-\(getpid())-\(token)-probe"
        guard mkdir(probe, 0o755) == 0 else { return nil }
        defer { rmdir(probe) }
        guard access(probe + "/cgroup.kill", W_OK) == 0, access(probe + "/cgroup.procs", W_OK) == 0 else { return nil }
        return parent
    }()

    private static let counter = Atomic<Int>(0)
    /// Tells this process's cgroups from those of a process with the same pid in another PID namespace.
    private static let token = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// Empty cgroups of ended attempts, reused: creating and removing a cgroup costs more than starting a program.
    private static let idle = Mutex<[String]>([])

    /// An empty cgroup for one attempt, or nil where cgroups are not available to Warden.
    static func create() -> AttemptCgroup? {
        guard let parent else { return nil }
        if let path = idle.withLock({ $0.popLast() }) { return AttemptCgroup(path: path) }
        let n = counter.add(1, ordering: .relaxed).newValue
        if n == 1 {
            // The idle cgroups are removed when Warden exits (a crash leaves them to the next start's sweep).
            atexit {
                for path in AttemptCgroup.idle.withLock({ $0 }) { rmdir(path) }
            }
        }
        let path = parent + "/warden-\(getpid())-\(token)-\(n)"
        guard mkdir(path, 0o755) == 0 else { return nil }
        return AttemptCgroup(path: path)
    }

    private init(path: String) { self.path = path }

    /// The file a process writes its own pid to, to enter the cgroup (`sh -c 'echo $$ > FILE && exec …'`, so the
    /// program is inside before it runs a single instruction of its own).
    var procsFile: String { path + "/cgroup.procs" }

    /// The processes in the cgroup now.
    var members: [pid_t] {
        guard let text = try? String(contentsOfFile: procsFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Sends `signal` to every process in the cgroup.
    func signal(_ signal: Int32) {
        for pid in members { kill(pid, signal) }
    }

    /// Kills every process in the cgroup, including those forking while it happens.
    func killAll() {
        let fd = open(path + "/cgroup.kill", O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = write(fd, "1", 1)
            close(fd)
        } else {
            signal(SIGKILL)
        }
    }

    /// Kills what is left and waits (up to `grace` seconds) until the cgroup is empty; an empty cgroup is kept for
    /// the next attempt, one that is not (a process stuck in the kernel) is left alone.
    func end(grace: Double = 2) {
        guard !members.isEmpty else { return Self.idle.withLock { $0.append(path) } }
        killAll()
        let deadline = Date().addingTimeInterval(grace)
        while !members.isEmpty {
            guard Date() < deadline else { return }
            usleep(2_000)
        }
        Self.idle.withLock { $0.append(path) }
    }

    /// Warden's own cgroup inside the cgroup2 hierarchy, from `/proc/self/cgroup` and `/proc/self/mountinfo`.
    private static func candidateParent() -> String? {
        guard let cgroups = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = cgroups.split(separator: "\n").first(where: { $0.hasPrefix("0::") }),
            let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        else { return nil }
        var own = String(line.dropFirst(3))
        if own.hasSuffix(" (deleted)") { return nil }
        if own == "/" { own = "" }
        for mount in mounts.split(separator: "\n") {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER
            let halves = mount.components(separatedBy: " - ")
            guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5 else { continue }
            let root = String(fields[3]) == "/" ? "" : String(fields[3])
            // The mount shows the hierarchy from `root`: Warden's cgroup must lie under it.
            guard own.hasPrefix(root) else { continue }
            let mountPoint = String(fields[4]).replacingOccurrences(of: "\\040", with: " ")
            return mountPoint + own.dropFirst(root.count)
        }
        return nil
    }

    /// Removes the empty cgroups of Warden processes that no longer exist (left by a crash).
    private static func sweepStale(_ parent: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix("warden-") {
            let parts = name.split(separator: "-")
            guard parts.count == 4, let pid = pid_t(parts[1]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            // Only removed when empty: the hierarchy may be shared with other PID namespaces, where that pid lives on.
            rmdir(parent + "/" + name)
        }
    }
}
