import CEL
import Foundation
import OCITesting
import Storage
import Testing
import Workflow

/// WASI modules written in WAT and assembled with wabt's wat2wasm (Debian package `wabt`).
enum WAT {
    static let prelude = """
        (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        (memory (export "memory") 1)
        """

    /// Reads stdin and writes `{"echo":INPUT}`.
    static let echo = """
        (module
          \(prelude)
          (data (i32.const 0) "{\\"echo\\":")
          (data (i32.const 8) "}")
          (func $write (param $at i32) (param $len i32)
            (i32.store (i32.const 100) (local.get $at))
            (i32.store (i32.const 104) (local.get $len))
            (drop (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200))))
          (func (export "_start")
            (i32.store (i32.const 100) (i32.const 1024))
            (i32.store (i32.const 104) (i32.const 60000))
            (drop (call $fd_read (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 300)))
            (call $write (i32.const 0) (i32.const 8))
            (call $write (i32.const 1024) (i32.load (i32.const 300)))
            (call $write (i32.const 8) (i32.const 1))))
        """

    /// Never stops: only the fuel limit ends it.
    static let spin = "(module \(prelude) (func (export \"_start\") (loop $l (br $l))))"

    /// Asks for 128 MiB more linear memory and traps when refused.
    static let grow = """
        (module \(prelude)
          (func (export "_start")
            (if (i32.eq (memory.grow (i32.const 2048)) (i32.const -1)) (then unreachable))))
        """

    /// Exits with code 2 (a permanent failure under the action contract).
    static let exit2 = "(module \(prelude) (func (export \"_start\") (call $proc_exit (i32.const 2))))"

    static func assemble(_ text: String, in dir: String, name: String) async throws -> String {
        try text.write(toFile: "\(dir)/\(name).wat", atomically: true, encoding: .utf8)
        let result = try await runProgram("/usr/bin/wat2wasm", ["\(dir)/\(name).wat", "-o", "\(dir)/\(name).wasm"])
        guard result.succeeded else { throw WorkflowError("wat2wasm failed on \(name).wat") }
        return "\(dir)/\(name).wasm"
    }
}

@Suite struct WasmTests {
    @Test func aWASIModuleRunsUnderMemoryAndFuelLimits() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wat2wasm") else {
            throw WorkflowError("/usr/bin/wat2wasm is missing: run scripts/test.sh (or apt-get install wabt)")
        }
        let h = try Harness(extra: [WasmAction()])
        var modules: [String: String] = [:]
        for (name, text) in [("echo", WAT.echo), ("spin", WAT.spin), ("grow", WAT.grow), ("exit2", WAT.exit2)] {
            modules[name] = try await WAT.assemble(text, in: h.directory, name: name)
        }
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: echo
                    uses: wasm@v1
                    with: {module: "\(modules["echo"]!)", input: {image: "a@sha256:1", n: 2}}
                  - id: spin
                    uses: wasm@v1
                    with: {module: "\(modules["spin"]!)", fuel: 100000}
                    retry: {maxAttempts: 3, initialDelay: 10ms}
                    continueOnError: true
                  - id: grow
                    uses: wasm@v1
                    with: {module: "\(modules["grow"]!)", memory: 16Mi}
                    continueOnError: true
                  - id: roomy
                    uses: wasm@v1
                    with: {module: "\(modules["grow"]!)", memory: 256Mi}
                  - id: exit2
                    uses: wasm@v1
                    with: {module: "\(modules["exit2"]!)"}
                    continueOnError: true
                """)
        #expect(run.status == "succeeded", "\(run.error ?? "")")
        #expect(state.steps["echo"]?.outputs.jsonText() == #"{"echo":{"image":"a@sha256:1","n":2}}"#)
        // Out of fuel is permanent: the same module runs out again, so it is not retried.
        #expect(state.steps["spin"]?.error == "spin.wasm ran out of fuel (100000 units)" && state.steps["spin"]?.units[0].attempt == 1)
        #expect(state.steps["grow"]?.status == .failed && state.steps["grow"]?.units[0].errorClass == "permanent")
        #expect(state.steps["roomy"]?.status == .succeeded)
        #expect(state.steps["exit2"]?.error == "exit2.wasm exited with code 2" && state.steps["exit2"]?.units[0].errorClass == "permanent")
    }
}
