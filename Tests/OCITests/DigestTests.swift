import Foundation
import OCI
import Testing

@Suite struct DigestTests {
    @Test func knownVectors() {
        #expect(Digest.compute(Data()).description == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest.compute(Data("abc".utf8)).description == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Digest.compute(Data("abc".utf8), algorithm: .sha512).description
                == "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        )
    }

    @Test func streamingEqualsOneShot() {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var hasher = DigestHasher(.sha256)
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + 7919)
            hasher.update(data[offset..<end])
            offset = end
        }
        #expect(hasher.finalize() == Digest.compute(data))
    }

    @Test(arguments: [
        ("sha256:abc", "needs 64 hex digits"),
        ("sha256", "expected ALGORITHM:HEX"),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm \"md5\""),
        ("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "lowercase hex"),
        ("sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "lowercase hex"),
    ])
    func invalidDigests(input: String, message: String) throws {
        let e = try #require(throws: OCIError.self) {
            try Digest(parsing: input)
        }
        #expect(e.code == .invalidDigest && e.reason.contains(message) && e.reason.contains(input))
    }

    @Test func codableRoundTrip() throws {
        let d = Digest.compute(Data("x".utf8))
        let json = try JSONEncoder().encode([d])
        #expect(try JSONDecoder().decode([Digest].self, from: json) == [d])
        #expect(throws: OCIError.self) { try JSONDecoder().decode([Digest].self, from: Data(#"["sha256:zz"]"#.utf8)) }
    }
}
