import Foundation
import OCITesting
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A value tasks share.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}

/// The shared test tools of OCITesting/TestSupport.swift do what the other tests rely on.
@Suite struct TestSupportTests {
    @Test func temporaryDirectoriesArePrivateUniqueAndRemovedAfterUse() async throws {
        let a = try makeTemporaryDirectory()
        let b = try makeTemporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: a)
            try? FileManager.default.removeItem(atPath: b)
        }
        #expect(a != b)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: a)[.posixPermissions] as? Int)
        #expect(mode == 0o700)

        var kept = ""
        try await withTemporaryDirectory { dir in
            kept = dir
            try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/file"))
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(!kept.isEmpty && !FileManager.default.fileExists(atPath: kept))

        struct Failure: Error {}
        #expect(throws: Failure.self) {
            try withTemporaryDirectory { dir in
                kept = dir
                throw Failure()
            }
        }
        #expect(!FileManager.default.fileExists(atPath: kept))
    }

    @Test func waitForReturnsOnceTheConditionHoldsAndFailsAfterItsTimeout() async throws {
        let polls = Mutex(0)
        try await waitFor {
            polls.withLock {
                $0 += 1
                return $0 == 3
            }
        }
        #expect(polls.withLock { $0 } == 3)
        let error = try await #require(throws: TimeoutError.self) {
            try await waitFor("never", timeout: .milliseconds(100), poll: .milliseconds(10)) { false }
        }
        #expect(error.description.contains("never") && error.description.contains("TestSupportTests.swift"))
        let evaluations = Shared(0)
        let held = try await holdsWithin(.milliseconds(100), poll: .milliseconds(10)) {
            evaluations.value.withLock { $0 += 1 }
            return false
        }
        #expect(!held)
        #expect(evaluations.value.withLock { $0 } >= 10)
    }

    @Test func aProgramsStatusOutputAndErrorsAreCollected() async throws {
        let ok = try await runProgram("/bin/sh", ["-c", "printf out; printf err >&2"])
        #expect(ok.succeeded && ok.status == 0 && !ok.signalled)
        #expect(ok.output == "out" && ok.errorOutput == "err")
        #expect(try ok.checked().output == "out")

        let failed = try await runProgram("/bin/sh", ["-c", "echo broken >&2; exit 3"])
        #expect(failed.status == 3 && !failed.succeeded)
        let error = try #require(throws: HarnessError.self) { try failed.checked() }
        #expect(error.description.contains("exited 3") && error.description.contains("broken"))

        let killed = try await runProgram("/bin/sh", ["-c", "kill -9 $$"])
        #expect(killed.signalled && killed.status == SIGKILL)

        let echoed = try await runProgram("/bin/cat", input: Data("to stdin".utf8))
        #expect(echoed.output == "to stdin")
        #expect(try await runProgram("/bin/cat").standardOutput.isEmpty)

        let env = try await runProgram(
            "/bin/sh", ["-c", "echo $WARDEN_TEST_VALUE; pwd"], environment: ["WARDEN_TEST_VALUE": "v"], currentDirectory: "/")
        #expect(env.output == "v\n/\n")
    }

    /// Both pipes are drained at once: a program writing megabytes to stderr before stdout does not stall.
    @Test func largeOutputOnBothPipesDoesNotStall() async throws {
        let result = try await runProgram("/bin/sh", ["-c", "head -c 3000000 /dev/zero >&2; head -c 2000000 /dev/zero"])
        #expect(result.succeeded)
        #expect(result.standardError.count == 3_000_000 && result.standardOutput.count == 2_000_000)
    }

    /// More programs than cooperative threads run at once, and a task on the pool runs while they wait: each
    /// program signs in and waits until all of them and the task have (giving up after two minutes). Were a thread of
    /// the pool held while a program runs, the later programs and the task could not start, and none would finish.
    @Test func waitingForProgramsBlocksNoCooperativeThread() async throws {
        let count = ProcessInfo.processInfo.activeProcessorCount * 2 + 2
        try await withTemporaryDirectory { dir in
            let arrivals = dir + "/arrivals"
            try #require(FileManager.default.createFile(atPath: arrivals, contents: nil))
            let script = """
                echo program >> \(arrivals)
                i=0
                while [ "$(wc -l < \(arrivals))" -lt \(count + 1) ]; do i=$((i + 1)); [ $i -gt 2400 ] && exit 1; sleep 0.05; done
                """
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        let result = try await runProgram("/bin/sh", ["-c", script])
                        #expect(result.succeeded, "a program waited two minutes for the others")
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(100))
                    let handle = try #require(FileHandle(forWritingAtPath: arrivals))
                    try handle.seekToEnd()
                    try handle.write(contentsOf: Data("task\n".utf8))
                    try handle.close()
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func cancellingTheTaskKillsTheProgram() async throws {
        let pid = Shared<Int32>(0)
        let task = Task { try await runProgram("/bin/sleep", ["30"], started: { p in pid.value.withLock { $0 = p } }) }
        try await waitFor { pid.value.withLock { $0 } > 0 }
        task.cancel()
        let result = try await task.value
        #expect(result.signalled && result.status == SIGKILL)
        #expect(result.pid == pid.value.withLock { $0 })
        #expect(TestProcesses.isGone(result.pid))
    }

    /// A reserved port is given to no one else, while a server that binds it with SO_REUSEADDR (as docker-registry
    /// and NIO do) can listen on it; released, it is free.
    @Test func aReservedPortIsHeldUntilReleased() throws {
        let reservation = try ReservedPort()
        #expect(reservation.port > 0 && reservation.isHeld)
        for _ in 0..<2000 {
            let fd = try Self.socket(reuse: true)
            defer { close(fd) }
            #expect(try Self.bind(fd, port: 0) == 0)
            #expect(try Self.localPort(fd) != reservation.port)
        }
        let plain = try Self.socket(reuse: false)
        defer { close(plain) }
        #expect(try Self.bind(plain, port: reservation.port) == EADDRINUSE)

        let server = try Self.socket(reuse: true)
        #expect(try Self.bind(server, port: reservation.port) == 0)
        #expect(listen(server, 8) == 0)
        close(server)

        reservation.release()
        #expect(!reservation.isHeld)
        let after = try Self.socket(reuse: false)
        defer { close(after) }
        #expect(try Self.bind(after, port: reservation.port) == 0)
    }

    @Test func aReservedSocketCanBeHandedOver() throws {
        let reservation = try ReservedPort()
        let fd = try reservation.takeSocket()
        defer { close(fd) }
        #expect(!reservation.isHeld)
        #expect(throws: HarnessError.self) { try reservation.takeSocket() }
        reservation.release()
        #expect(try Self.localPort(fd) == reservation.port)
        #expect(listen(fd, 8) == 0)
    }

    static func socket(reuse: Bool) throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var one: Int32 = reuse ? 1 : 0
        try #require(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0)
        return fd
    }

    /// 0, or the errno of the failed bind.
    static func bind(_ fd: Int32, port: Int) throws -> Int32 {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return r == 0 ? 0 : errno
    }

    static func localPort(_ fd: Int32) throws -> Int {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        try #require(r == 0)
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
