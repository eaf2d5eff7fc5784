/// True when `a` and `b` hold the same bytes, in time that depends on their length only, never on where they first
/// differ: for comparing signatures, MACs and tokens that an attacker may probe byte by byte. (Lengths are not
/// secret: a MAC's or a token digest's length is fixed.)
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    constantTimeEquals(Array(a.utf8), Array(b.utf8))
}

public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}
