import CEL
import Foundation
import OCI
import Testing

@testable import Inventory

/// Damaged input never crashes the readers: every mutation either reads or is refused with an InventoryError.
@Suite struct CorruptionTests {
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static func mutate(_ bytes: [UInt8], _ rng: inout Rng) -> [UInt8] {
        var b = bytes
        switch rng.below(3) {
        case 0: for _ in 0..<(1 + rng.below(8)) { b[rng.below(b.count)] = UInt8(rng.below(256)) }
        case 1: b = Array(b.prefix(rng.below(b.count)))
        default:
            let at = rng.below(b.count)
            b.insert(contentsOf: (0..<(1 + rng.below(64))).map { _ in UInt8(rng.below(256)) }, at: at)
        }
        return b
    }

    @Test func damagedLayersAreErrorsNotCrashes() async throws {
        let archive = tar {
            $0.file("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nVersion: 1\n\n")
            $0.file(String(repeating: "long/", count: 30) + "name", "x")
            $0.pax(["path": "pax/file"])
            $0.file("ignored", "y")
            $0.symlink("link", to: "../../etc")
            $0.hardlink("hard", to: "var/lib/dpkg/status")
        }
        let compressed = try gzip(archive)
        var rng = Rng(state: 42)
        var refused = 0
        for round in 0..<300 {
            let input = round % 2 == 0 ? Self.mutate(archive, &rng) : Self.mutate(compressed, &rng)
            let source = try await ImageSource.decompressed(BytesSource(input, chunk: 97), what: "layer")
            do {
                _ = try await FilesystemBuilder.read(
                    LayerInfo(index: 0, digest: "sha256:x", mediaType: "", size: 0), tar: source, capture: Catalogers.capture)
            } catch is InventoryError {
                refused += 1
            }
        }
        #expect(refused > 50, "most damage is noticed (\(refused) of 300)")
    }

    @Test func damagedDatabasesAndBinariesAreSkipped() throws {
        var rng = Rng(state: 7)
        let status = Array("Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (2)\n\nPackage: c\n".utf8)
        let apk = Array("P:musl\nV:1\nA:x86_64\n\nP:x\n".utf8)
        let go = BinaryCatalogerTests.goBinary(version: "go1.21.0", modinfo: "path\tx/y\nmod\tx/y\tv1\t\ndep\ta/b\tv2\th1:x\n")
        var header: [UInt8] = [0, 0, 0, 2, 0, 0, 0, 12]
        header += [0, 0, 0x03, 0xE8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0x03, 0xE9, 0, 0, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1]
        header += Array("name\u{0}1.0\u{0}\u{0}\u{0}\u{0}".utf8)
        #expect(RPM.parse(header)?.strings[1000] == ["name"] && RPM.parse(header)?.strings[1001] == ["1.0"])
        for _ in 0..<300 {
            _ = Catalogers.paragraphs(Self.mutate(status, &rng)[...])
            _ = Apk.records(Self.mutate(apk, &rng)[...])
            _ = GoBinaries.buildInfo(Self.mutate(go, &rng))
            _ = RPM.parse(Self.mutate(header, &rng))
            _ = BerkeleyHash.values(Self.mutate([UInt8](repeating: 0, count: 4096) + header + [UInt8](repeating: 0xFF, count: 4096), &rng))
            _ = ZipArchive(Self.mutate([0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18), &rng))
            _ = try? Value.parseJSON(Self.mutate(Array(#"{"name":"a","version":"1","licenses":[{"type":"MIT"}]}"#.utf8), &rng))
        }
    }
}
