import Foundation
import NIOCore

/// A single-pass stream of bytes, as chunks. Registry bodies, files and memory all read through it, so that one
/// copy path streams between any two stores without temporary files.
public struct ByteStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextChunk: () async throws -> ByteBuffer?
        public mutating func next() async throws -> ByteBuffer? { try await nextChunk() }
    }

    private let make: @Sendable () -> AsyncIterator

    public init(makeIterator: @escaping @Sendable () -> AsyncIterator) {
        self.make = makeIterator
    }

    /// Wraps any sendable sequence of byte buffers (for example an HTTP response body).
    public init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == ByteBuffer {
        self.make = {
            let box = IteratorBox(sequence.makeAsyncIterator())
            return AsyncIterator { try await box.next() }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { make() }

    /// Bytes held in memory, handed out in chunks of at most `chunkSize`.
    public static func bytes<D: DataProtocol & Sendable>(_ data: D, chunkSize: Int = 1 << 20) -> ByteStream {
        ByteStream {
            var offset = data.startIndex
            return AsyncIterator {
                guard offset < data.endIndex else { return nil }
                let end = data.index(offset, offsetBy: chunkSize, limitedBy: data.endIndex) ?? data.endIndex
                let chunk = ByteBuffer(bytes: data[offset..<end])
                offset = end
                return chunk
            }
        }
    }

    /// Reads a file in chunks, starting at `offset`.
    public static func file(at path: String, offset: UInt64 = 0, chunkSize: Int = 1 << 20) -> ByteStream {
        ByteStream {
            var handle: FileHandle?
            var opened = false
            return AsyncIterator {
                if !opened {
                    opened = true
                    guard let h = FileHandle(forReadingAtPath: path) else {
                        throw OCIError(.notFound, "cannot open \(path) for reading")
                    }
                    if offset > 0 { try h.seek(toOffset: offset) }
                    handle = h
                }
                guard let h = handle else { return nil }
                guard let data = try h.read(upToCount: chunkSize), !data.isEmpty else {
                    try? h.close()
                    handle = nil
                    return nil
                }
                return ByteBuffer(bytes: data)
            }
        }
    }

    /// The stream with each chunk reported to `observe` as it passes.
    public func observed(_ observe: @escaping @Sendable (Int) -> Void) -> ByteStream {
        let base = self
        return ByteStream {
            var it = base.makeAsyncIterator()
            return AsyncIterator {
                let chunk = try await it.next()
                if let chunk { observe(chunk.readableBytes) }
                return chunk
            }
        }
    }

    /// The stream, checked against `descriptor` as it passes: reading past the declared size, or reaching the end
    /// with a different size or digest, throws an error naming both values. No caller can forget to verify.
    public func verifying(_ descriptor: Descriptor, source: String) -> ByteStream {
        let base = self
        return ByteStream {
            var it = base.makeAsyncIterator()
            var hasher = DigestHasher(descriptor.digest.algorithm)
            var count: Int64 = 0
            var finished = false
            return AsyncIterator {
                if finished { return nil }
                guard let chunk = try await it.next() else {
                    finished = true
                    guard count == descriptor.size else {
                        throw OCIError(
                            .sizeMismatch,
                            "size mismatch for \(descriptor.digest) from \(source): expected \(descriptor.size) bytes, got \(count)")
                    }
                    let actual = hasher.finalize()
                    guard actual == descriptor.digest else {
                        throw OCIError(
                            .digestMismatch,
                            "digest mismatch from \(source): expected \(descriptor.digest), got \(actual) (\(count) bytes); the content is corrupt or was altered"
                        )
                    }
                    return nil
                }
                count += Int64(chunk.readableBytes)
                if count > descriptor.size {
                    finished = true
                    throw OCIError(
                        .sizeMismatch,
                        "size mismatch for \(descriptor.digest) from \(source): more than the expected \(descriptor.size) bytes")
                }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                return chunk
            }
        }
    }

    /// Reads the whole stream into memory, refusing more than `limit` bytes.
    public func collect(limit: Int) async throws -> Data {
        var out = Data()
        for try await chunk in self {
            guard out.count + chunk.readableBytes <= limit else {
                throw OCIError(.invalidArgument, "content exceeds the limit of \(limit) bytes")
            }
            chunk.withUnsafeReadableBytes { out.append(contentsOf: $0) }
        }
        return out
    }
}

/// Holds a non-sendable iterator for the single consumer of one `ByteStream` iteration.
private final class IteratorBox<I: AsyncIteratorProtocol>: @unchecked Sendable where I.Element == ByteBuffer {
    // Safety: an iterator box is created inside `makeAsyncIterator` and only ever used by the one task that iterates
    // that iterator; it is never shared.
    var iterator: I
    init(_ iterator: I) { self.iterator = iterator }
    func next() async throws -> ByteBuffer? { try await iterator.next() }
}

/// Largest manifest Warden reads (the distribution spec suggests registries accept at least 4 MiB).
public let maxManifestSize = 4 << 20
