import Foundation

/// NaCl `crypto_secretbox` (XSalsa20-Poly1305), as cosign uses it to encrypt private keys.
///
/// No available Swift package implements it, so it is written here from the Salsa20 and Poly1305 specifications
/// (D. J. Bernstein; RFC 8439 §2.5 for Poly1305) and tested against RFC 8439's Poly1305 vector and against
/// libsodium through PyNaCl. The sealed form is `tag (16 bytes) || ciphertext`, as Go's `secretbox.Seal` and
/// PyNaCl's `EncryptedMessage.ciphertext` produce it.
public enum SecretBox {
    public static let keySize = 32
    public static let nonceSize = 24
    public static let tagSize = 16

    public static func seal(_ message: [UInt8], nonce: [UInt8], key: [UInt8]) -> [UInt8] {
        precondition(key.count == keySize && nonce.count == nonceSize, "secretbox needs a 32-byte key and a 24-byte nonce")
        var stream = XSalsa20(key: key, nonce: nonce)
        let polyKey = stream.keystream(32)
        var ciphertext = message
        stream.xor(&ciphertext)
        let tag = Poly1305.authenticate(ciphertext, key: polyKey)
        return tag + ciphertext
    }

    /// Opens a sealed box; nil when the tag does not match (wrong key, or altered data).
    public static func open(_ sealed: [UInt8], nonce: [UInt8], key: [UInt8]) -> [UInt8]? {
        guard key.count == keySize, nonce.count == nonceSize, sealed.count >= tagSize else { return nil }
        var stream = XSalsa20(key: key, nonce: nonce)
        let polyKey = stream.keystream(32)
        let tag = Array(sealed[0..<tagSize])
        var body = Array(sealed[tagSize...])
        let expected = Poly1305.authenticate(body, key: polyKey)
        var diff: UInt8 = 0
        for i in 0..<tagSize { diff |= tag[i] ^ expected[i] }
        guard diff == 0 else { return nil }
        stream.xor(&body)
        return body
    }
}

@inline(__always) private func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

/// The Salsa20/20 core over a 16-word state; `addInput` false gives HSalsa20's raw rounds.
private func salsaRounds(_ input: [UInt32]) -> [UInt32] {
    var x = input
    @inline(__always) func qr(_ a: Int, _ b: Int, _ c: Int, _ d: Int) {
        x[b] ^= (x[a] &+ x[d]).rotl(7)
        x[c] ^= (x[b] &+ x[a]).rotl(9)
        x[d] ^= (x[c] &+ x[b]).rotl(13)
        x[a] ^= (x[d] &+ x[c]).rotl(18)
    }
    for _ in 0..<10 {
        qr(0, 4, 8, 12)
        qr(5, 9, 13, 1)
        qr(10, 14, 2, 6)
        qr(15, 3, 7, 11)
        qr(0, 1, 2, 3)
        qr(5, 6, 7, 4)
        qr(10, 11, 8, 9)
        qr(15, 12, 13, 14)
    }
    return x
}

extension UInt32 {
    @inline(__always) fileprivate func rotl(_ n: UInt32) -> UInt32 { (self << n) | (self >> (32 - n)) }
}

private let sigma: [UInt32] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]

private func state(key: [UInt8], input: [UInt32]) -> [UInt32] {
    let k = (0..<8).map { le32(key, $0 * 4) }
    return [sigma[0], k[0], k[1], k[2], k[3], sigma[1], input[0], input[1], input[2], input[3], sigma[2], k[4], k[5], k[6], k[7], sigma[3]]
}

/// HSalsa20: derives XSalsa20's subkey from the key and the first 16 nonce bytes.
func hsalsa20(key: [UInt8], input: [UInt8]) -> [UInt8] {
    let x = salsaRounds(state(key: key, input: (0..<4).map { le32(input, $0 * 4) }))
    var out: [UInt8] = []
    for i in [0, 5, 10, 15, 6, 7, 8, 9] { withUnsafeBytes(of: x[i].littleEndian) { out += $0 } }
    return out
}

/// The XSalsa20 stream cipher, consumed in order.
struct XSalsa20 {
    private let subkey: [UInt8]
    private let nonce: [UInt32]
    private var counter: UInt64 = 0
    private var block: [UInt8] = []
    private var used = 64

    init(key: [UInt8], nonce: [UInt8]) {
        subkey = hsalsa20(key: key, input: Array(nonce[0..<16]))
        self.nonce = [le32(nonce, 16), le32(nonce, 20)]
    }

    private mutating func nextBlock() {
        let input = state(key: subkey, input: [nonce[0], nonce[1], UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32)])
        let x = salsaRounds(input)
        block.removeAll(keepingCapacity: true)
        for i in 0..<16 { withUnsafeBytes(of: (x[i] &+ input[i]).littleEndian) { block += $0 } }
        counter += 1
        used = 0
    }

    mutating func keystream(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        xor(&out)
        return out
    }

    mutating func xor(_ data: inout [UInt8]) {
        for i in data.indices {
            if used == 64 { nextBlock() }
            data[i] ^= block[used]
            used += 1
        }
    }
}

/// Poly1305 one-time authenticator (26-bit limbs).
enum Poly1305 {
    static func authenticate(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        precondition(key.count == 32)
        let mask: UInt32 = 0x3ff_ffff
        let r0 = le32(key, 0) & 0x3ff_ffff
        let r1 = (le32(key, 3) >> 2) & 0x3ff_ff03
        let r2 = (le32(key, 6) >> 4) & 0x3ff_c0ff
        let r3 = (le32(key, 9) >> 6) & 0x3f0_3fff
        let r4 = (le32(key, 12) >> 8) & 0x00f_ffff
        let s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5
        var h0: UInt32 = 0, h1: UInt32 = 0, h2: UInt32 = 0, h3: UInt32 = 0, h4: UInt32 = 0

        var offset = 0
        while offset < message.count {
            var m = [UInt8](repeating: 0, count: 16)
            let n = min(16, message.count - offset)
            for i in 0..<n { m[i] = message[offset + i] }
            var hibit: UInt32 = 1 << 24
            if n < 16 {
                m[n] = 1
                hibit = 0
            }
            offset += n
            h0 &+= le32(m, 0) & mask
            h1 &+= (le32(m, 3) >> 2) & mask
            h2 &+= (le32(m, 6) >> 4) & mask
            h3 &+= (le32(m, 9) >> 6) & mask
            h4 &+= (le32(m, 12) >> 8) | hibit

            func mul(_ a: UInt32, _ b: UInt32) -> UInt64 { UInt64(a) * UInt64(b) }
            let d0 = mul(h0, r0) + mul(h1, s4) + mul(h2, s3) + mul(h3, s2) + mul(h4, s1)
            var d1 = mul(h0, r1) + mul(h1, r0) + mul(h2, s4) + mul(h3, s3) + mul(h4, s2)
            var d2 = mul(h0, r2) + mul(h1, r1) + mul(h2, r0) + mul(h3, s4) + mul(h4, s3)
            var d3 = mul(h0, r3) + mul(h1, r2) + mul(h2, r1) + mul(h3, r0) + mul(h4, s4)
            var d4 = mul(h0, r4) + mul(h1, r3) + mul(h2, r2) + mul(h3, r1) + mul(h4, r0)

            var c = UInt32(d0 >> 26)
            h0 = UInt32(truncatingIfNeeded: d0) & mask
            d1 += UInt64(c)
            c = UInt32(d1 >> 26)
            h1 = UInt32(truncatingIfNeeded: d1) & mask
            d2 += UInt64(c)
            c = UInt32(d2 >> 26)
            h2 = UInt32(truncatingIfNeeded: d2) & mask
            d3 += UInt64(c)
            c = UInt32(d3 >> 26)
            h3 = UInt32(truncatingIfNeeded: d3) & mask
            d4 += UInt64(c)
            c = UInt32(d4 >> 26)
            h4 = UInt32(truncatingIfNeeded: d4) & mask
            h0 &+= c &* 5
            c = h0 >> 26
            h0 &= mask
            h1 &+= c
        }

        var c = h1 >> 26
        h1 &= mask
        h2 &+= c
        c = h2 >> 26
        h2 &= mask
        h3 &+= c
        c = h3 >> 26
        h3 &= mask
        h4 &+= c
        c = h4 >> 26
        h4 &= mask
        h0 &+= c &* 5
        c = h0 >> 26
        h0 &= mask
        h1 &+= c

        var g0 = h0 &+ 5
        c = g0 >> 26
        g0 &= mask
        var g1 = h1 &+ c
        c = g1 >> 26
        g1 &= mask
        var g2 = h2 &+ c
        c = g2 >> 26
        g2 &= mask
        var g3 = h3 &+ c
        c = g3 >> 26
        g3 &= mask
        var g4 = h4 &+ c &- (1 << 26)

        var select = (g4 >> 31) &- 1  // all ones when h + 5 - 2^130 did not go negative: take g
        g0 &= select
        g1 &= select
        g2 &= select
        g3 &= select
        g4 &= select
        select = ~select
        h0 = (h0 & select) | g0
        h1 = (h1 & select) | g1
        h2 = (h2 & select) | g2
        h3 = (h3 & select) | g3
        h4 = (h4 & select) | g4

        let w0 = h0 | (h1 << 26)
        let w1 = (h1 >> 6) | (h2 << 20)
        let w2 = (h2 >> 12) | (h3 << 14)
        let w3 = (h3 >> 18) | (h4 << 8)

        var f = UInt64(w0) + UInt64(le32(key, 16))
        let o0 = UInt32(truncatingIfNeeded: f)
        f = UInt64(w1) + UInt64(le32(key, 20)) + (f >> 32)
        let o1 = UInt32(truncatingIfNeeded: f)
        f = UInt64(w2) + UInt64(le32(key, 24)) + (f >> 32)
        let o2 = UInt32(truncatingIfNeeded: f)
        f = UInt64(w3) + UInt64(le32(key, 28)) + (f >> 32)
        let o3 = UInt32(truncatingIfNeeded: f)
        var out: [UInt8] = []
        for w in [o0, o1, o2, o3] { withUnsafeBytes(of: w.littleEndian) { out += $0 } }
        return out
    }
}
