import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Processes in tests of the process runtime.
public enum TestProcesses {
    /// True when `pid` no longer runs (absent, or a zombie waiting for its parent).
    public static func isGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }

    /// A shell line for a step that starts a grandchild leaving its session and process group (`setsid -f`), which
    /// writes its pid to `pidFile` and sleeps a minute; the step then runs `after` (`exit 0`, `sleep 30`).
    public static func escapingDaemon(pidFile: String, after: String) -> String {
        "setsid -f /bin/sh -c 'echo $$ > \(pidFile); exec sleep 60'; while [ ! -s \(pidFile) ]; do sleep 0.01; done; \(after)"
    }
}
