import AsyncHTTPClient
import Documents
import NIOCore
import OCI

/// A response body that must arrive in time: a small response (manifest, token, tag page, referrers) by one
/// deadline for its headers and body together, a blob at no less than a minimum rate over each window. The HTTP
/// client's read timeout ends a connection that goes silent; this ends one that drips (a byte a second keeps a read
/// timeout from ever firing).
struct BoundedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: HTTPClientResponse.Body
    let what: String
    /// When the whole response must have arrived.
    let deadline: ContinuousClock.Instant?
    let timeout: Duration
    /// Bytes per second that each `window` must average, when set.
    let minimumRate: Int?
    let window: Duration

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: HTTPClientResponse.Body.AsyncIterator
        let body: BoundedBody
        var windowStart = ContinuousClock.now
        var windowBytes = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            let now = ContinuousClock.now
            if let deadline = body.deadline, now > deadline {
                throw OCIError(
                    .transport,
                    "\(body.what): the response did not arrive within \(Int(body.timeout.seconds)) s (headers and body); the registry is too slow or stalling"
                )
            }
            if let rate = body.minimumRate {
                windowBytes += chunk.readableBytes
                let elapsed = now - windowStart
                if elapsed >= body.window {
                    guard Double(windowBytes) >= Double(rate) * elapsed.seconds else {
                        throw OCIError(
                            .transport,
                            "\(body.what): \(windowBytes) bytes in \(Int(elapsed.seconds)) s, below the minimum transfer rate of \(rate >> 10) KiB/s")
                    }
                    windowStart = now
                    windowBytes = 0
                }
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), body: self) }
}
