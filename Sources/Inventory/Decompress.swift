import Foundation
import NIOCore
import OCI
import SystemZlib

/// A pull source of byte chunks (a layer's decompressed tar stream, a file, memory).
public protocol ChunkSource {
    /// The next chunk, or nil at the end. Chunks are never empty.
    mutating func next() async throws -> [UInt8]?
}

/// Chunks of a `ByteStream` as they arrive.
public struct StreamChunks: ChunkSource {
    var iterator: ByteStream.AsyncIterator

    public init(_ stream: ByteStream) { iterator = stream.makeAsyncIterator() }

    public mutating func next() async throws -> [UInt8]? {
        while let buffer = try await iterator.next() {
            if buffer.readableBytes > 0 { return buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) }
        }
        return nil
    }
}

/// gzip (or zlib) decompression with the system zlib; concatenated gzip members are read as one stream, as
/// `gzip -d` and container runtimes do.
public struct GunzipSource<Base: ChunkSource>: ChunkSource {
    var base: Base
    let inflater: Inflater
    var input: [UInt8] = []
    var inputOffset = 0
    var finished = false
    let outputSize: Int

    public init(_ base: Base, outputSize: Int = 256 << 10) throws {
        self.base = base
        self.inflater = try Inflater()
        self.outputSize = outputSize
    }

    public mutating func next() async throws -> [UInt8]? {
        while !finished {
            if inputOffset == input.count {
                guard let chunk = try await base.next() else {
                    if inflater.midStream { throw InventoryError(.malformed, "gzip stream ends early (truncated layer)") }
                    finished = true
                    return nil
                }
                input = chunk
                inputOffset = 0
            }
            let (out, consumed, ended) = try inflater.inflate(input, from: inputOffset, outputSize: outputSize)
            inputOffset += consumed
            // Another gzip member may follow; zeros after the last one are padding, anything else is an error.
            if ended { try inflater.reset() }
            if !out.isEmpty { return out }
        }
        return nil
    }
}

/// A zlib inflate stream (gzip or zlib header detected automatically).
final class Inflater {
    var stream = z_stream()
    /// Whether a member has started and not ended.
    var midStream = false

    init() throws {
        let rc = warden_inflateInit2(&stream, 15 + 32)
        guard rc == Z_OK else { throw InventoryError(.malformed, "zlib initialisation failed (\(rc))") }
    }

    deinit { inflateEnd(&stream) }

    func reset() throws {
        guard inflateReset(&stream) == Z_OK else { throw InventoryError(.malformed, "zlib reset failed") }
    }

    /// Inflates from `input[from...]` into at most `outputSize` bytes: (output, input bytes consumed, member ended).
    func inflate(_ input: [UInt8], from: Int, outputSize: Int) throws -> ([UInt8], Int, Bool) {
        var output = [UInt8](repeating: 0, count: outputSize)
        var consumed = 0
        var produced = 0
        var ended = false
        let available = input.count - from
        // Zero padding after the last member (seen in some layers) is not a new member.
        if !midStream, input[from...].allSatisfy({ $0 == 0 }) { return ([], available, false) }
        try input.withUnsafeBufferPointer { inBuf in
            try output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress! + from)
                stream.avail_in = UInt32(available)
                stream.next_out = outBuf.baseAddress!
                stream.avail_out = UInt32(outputSize)
                let rc = SystemZlib.inflate(&stream, Z_NO_FLUSH)
                consumed = available - Int(stream.avail_in)
                produced = outputSize - Int(stream.avail_out)
                switch rc {
                case Z_OK, Z_BUF_ERROR:
                    midStream = true
                case Z_STREAM_END:
                    midStream = false
                    ended = true
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "code \(rc)"
                    throw InventoryError(.malformed, "gzip data is corrupt: \(message)")
                }
            }
        }
        output.removeSubrange(produced...)
        return (output, consumed, ended)
    }
}

/// gzip compression of bytes in memory (test images, archives Warden writes).
public func gzip(_ input: [UInt8], level: Int32 = 6) throws -> [UInt8] {
    var stream = z_stream()
    guard warden_deflateInit2(&stream, level, 15 + 16) == Z_OK else { throw InventoryError(.io, "zlib deflate initialisation failed") }
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
    let produced: Int = try input.withUnsafeBufferPointer { inBuf in
        try output.withUnsafeMutableBufferPointer { outBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(input.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = UInt32(outBuf.count)
            guard SystemZlib.deflate(&stream, Z_FINISH) == Z_STREAM_END else { throw InventoryError(.io, "zlib deflate failed") }
            return outBuf.count - Int(stream.avail_out)
        }
    }
    return Array(output.prefix(produced))
}

/// An uncompressed stream passed through.
public struct PlainSource<Base: ChunkSource>: ChunkSource {
    var base: Base
    public init(_ base: Base) { self.base = base }
    public mutating func next() async throws -> [UInt8]? { try await base.next() }
}

/// Errors of the inventory: malformed archives and layers, unsupported formats, sources that cannot be read.
public struct InventoryError: Error, CustomStringConvertible, Sendable {
    /// The error's code: extensible (a new code is a new static member), compared by value; errors compare
    /// equal when their codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        public static let malformed = Code(rawValue: "malformed")
        public static let unsupported = Code(rawValue: "unsupported")
        public static let notFound = Code(rawValue: "notFound")
        public static let io = Code(rawValue: "io")
    }
    public var code: Code
    public var reason: String
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public var description: String { reason }

    public static func == (a: InventoryError, b: InventoryError) -> Bool { a.code == b.code }
}
