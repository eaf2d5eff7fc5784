import CEL
import Foundation

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Duration {
    /// A non-negative CEL duration string (`30s`, `5m`, `1h30m`, `250ms`), or nil: the one duration syntax of every
    /// Warden document.
    public static func parse(_ text: String) -> Duration? {
        guard case .duration(let s, let n)? = try? Program("duration(d)").evaluate(["d": .string(text)]), s >= 0, n >= 0 else { return nil }
        return .seconds(s) + .nanoseconds(Int64(n))
    }
}
