import Foundation
import OCI
import Testing

@testable import Inventory

/// Files built to trap the catalogers: each is read (or skipped) without a crash.
@Suite struct HostileInventoryTests {
    static func filesystem(_ build: (inout TarWriter) -> Void) async throws -> ImageFilesystem {
        let store = MemoryStore()
        let image = try await pushImage([tar(build)], to: store)
        return try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
    }

    /// `Source:` present but empty (before: index out of range in the dpkg cataloger).
    @Test func dpkgParagraphWithAnEmptySource() async throws {
        let fs = try await Self.filesystem {
            $0.file("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nVersion: 1\nSource:\n\nPackage: b\nStatus: install ok installed\nVersion: 2\nSource:  \n\n")
        }
        let (_, packages) = Catalogers.catalog(fs)
        #expect(packages.map(\.name).sorted() == ["a", "b"])
        #expect(packages.allSatisfy { $0.metadata["source"] == nil })
    }

    /// An RPM header whose LICENSE string has no terminating NUL (before: index out of range).
    @Test func rpmHeaderWithoutTheLicenseNUL() {
        var header: [UInt8] = [0, 0, 0, 3, 0, 0, 0, 12]
        header += [0, 0, 0x03, 0xE8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1]  // NAME at 0
        header += [0, 0, 0x03, 0xE9, 0, 0, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1]  // VERSION at 5
        header += [0, 0, 0x03, 0xF6, 0, 0, 0, 6, 0, 0, 0, 9, 0, 0, 0, 1]  // LICENSE at 9, no NUL before the end
        header += Array("name\u{0}1.0\u{0}MIT".utf8)
        let parsed = RPM.parse(header)
        #expect(parsed?.strings[1000] == ["name"])
        #expect(parsed?.strings[1014] == nil)
    }

    /// ELF headers whose section-header offset, or whose `.go.buildinfo` offset, is negative or near Int.max
    /// (before: arithmetic overflow traps).
    @Test func elfOffsetsNearIntMaxOrNegative() {
        let base = BinaryCatalogerTests.goBinary(version: "go1.21.0", modinfo: "path\tx/y\nmod\tx/y\tv1\t\n")
        func with(_ at: Int, _ value: UInt64) -> [UInt8] {
            var b = base
            for k in 0..<8 { b[at + k] = UInt8((value >> (8 * UInt64(k))) & 0xFF) }
            return b
        }
        // e_shoff near Int.max and negative, with plausible counts.
        for shoff: UInt64 in [UInt64(Int.max) - 10, UInt64(bitPattern: -64), UInt64(Int.max)] {
            var b = with(0x28, shoff)
            b[0x3A] = 64; b[0x3C] = 3; b[0x3E] = 1
            #expect(GoBinaries.section(b, named: ".go.buildinfo") == nil)
            #expect(GoBinaries.buildInfo(b)?.0 == "go1.21.0")  // found by scanning instead
        }
        // A section table whose entries point .go.buildinfo (and the name table) at hostile offsets.
        var b = base
        let table = 2048
        for k in 0..<8 { b[0x28 + k] = UInt8((UInt64(table) >> (8 * UInt64(k))) & 0xFF) }
        b[0x3A] = 64; b[0x3C] = 2; b[0x3E] = 0
        let names = 3000
        b.replaceSubrange(names..<(names + 14), with: Array("\u{0}.go.buildinfo".utf8) + [0])
        func entry(_ k: Int, name: UInt32, offset: UInt64) {
            let h = table + 64 * k
            for i in 0..<4 { b[h + i] = UInt8((name >> (8 * UInt32(i))) & 0xFF) }
            for i in 0..<8 { b[h + 0x18 + i] = UInt8((offset >> (8 * UInt64(i))) & 0xFF) }
        }
        entry(0, name: 0, offset: UInt64(names))
        for offset in [UInt64(bitPattern: -5), UInt64(Int.max) - 3, UInt64(Int.max)] {
            entry(1, name: 1, offset: offset)
            let found = GoBinaries.section(b, named: ".go.buildinfo")
            if found == nil {
                #expect(Int(bitPattern: UInt(offset)) < 0)  // a negative offset is no section
                #expect(GoBinaries.buildInfo(b)?.0 == "go1.21.0")  // found by scanning instead
            } else {
                #expect(found == Int(bitPattern: UInt(offset)))
                #expect(GoBinaries.buildInfo(b) == nil)  // the section says where; that place is outside the file
            }
        }
        entry(0, name: 0, offset: UInt64(Int.max) - 2)  // the name table itself near Int.max
        #expect(GoBinaries.section(b, named: ".go.buildinfo") == nil)
        entry(0, name: 0, offset: UInt64(names))
        entry(1, name: 1, offset: 1024)
        #expect(GoBinaries.section(b, named: ".go.buildinfo") == 1024)
        #expect(GoBinaries.buildInfo(b)?.0 == "go1.21.0")
    }
}
