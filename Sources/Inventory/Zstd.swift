import SystemZlib

#if canImport(Glibc)
    import Glibc
#endif

/// zstd decompression through the system's libzstd, loaded when first needed: images with zstd layers can be read
/// wherever libzstd.so.1 is installed (every Debian and Ubuntu system has it), and Warden builds without its headers.
final class Zstd: @unchecked Sendable {
    let create: warden_zstd_create_fn
    let free: warden_zstd_free_fn
    let decompress: warden_zstd_decompress_fn
    let isError: warden_zstd_iserror_fn
    let errorName: warden_zstd_errorname_fn

    /// The library, or nil when it cannot be loaded.
    static let shared: Zstd? = {
        for name in ["libzstd.so.1", "libzstd.so"] {
            guard let handle = dlopen(name, RTLD_NOW) else { continue }
            guard let c = dlsym(handle, "ZSTD_createDStream"), let f = dlsym(handle, "ZSTD_freeDStream"),
                let d = dlsym(handle, "ZSTD_decompressStream"), let e = dlsym(handle, "ZSTD_isError"), let n = dlsym(handle, "ZSTD_getErrorName")
            else { continue }
            return Zstd(
                create: unsafeBitCast(c, to: warden_zstd_create_fn.self), free: unsafeBitCast(f, to: warden_zstd_free_fn.self),
                decompress: unsafeBitCast(d, to: warden_zstd_decompress_fn.self), isError: unsafeBitCast(e, to: warden_zstd_iserror_fn.self),
                errorName: unsafeBitCast(n, to: warden_zstd_errorname_fn.self))
        }
        return nil
    }()

    init(
        create: warden_zstd_create_fn, free: warden_zstd_free_fn, decompress: warden_zstd_decompress_fn, isError: warden_zstd_iserror_fn,
        errorName: warden_zstd_errorname_fn
    ) {
        self.create = create
        self.free = free
        self.decompress = decompress
        self.isError = isError
        self.errorName = errorName
    }
}

/// zstd-compressed chunks decompressed (concatenated frames read as one stream).
struct ZstdSource<Base: ChunkSource>: ChunkSource {
    final class Stream {
        let lib: Zstd
        let pointer: UnsafeMutableRawPointer
        init(_ lib: Zstd) throws {
            guard let p = lib.create() else { throw InventoryError(.io, "zstd stream allocation failed") }
            self.lib = lib
            self.pointer = p
        }
        deinit { _ = lib.free(pointer) }
    }

    var base: Base
    let stream: Stream
    var input: [UInt8] = []
    var inputOffset = 0
    /// zstd's return value: 0 when a frame is complete.
    var pending = 0
    let outputSize = 256 << 10

    init(_ base: Base) throws {
        guard let lib = Zstd.shared else {
            throw InventoryError(.unsupported, "zstd-compressed layer, but libzstd.so.1 is not installed (apt-get install libzstd1)")
        }
        self.base = base
        self.stream = try Stream(lib)
    }

    mutating func next() async throws -> [UInt8]? {
        while true {
            if inputOffset == input.count {
                guard let chunk = try await base.next() else {
                    if pending != 0 { throw InventoryError(.malformed, "zstd stream ends early (truncated layer)") }
                    return nil
                }
                input = chunk
                inputOffset = 0
            }
            var output = [UInt8](repeating: 0, count: outputSize)
            var produced = 0
            var result = 0
            let lib = stream.lib
            let pointer = stream.pointer
            let offset = inputOffset
            input.withUnsafeBytes { inBuf in
                output.withUnsafeMutableBytes { outBuf in
                    var i = warden_zstd_in(src: inBuf.baseAddress! + offset, size: inBuf.count - offset, pos: 0)
                    var o = warden_zstd_out(dst: outBuf.baseAddress!, size: outBuf.count, pos: 0)
                    result = lib.decompress(pointer, &o, &i)
                    inputOffset = offset + i.pos
                    produced = o.pos
                }
            }
            if lib.isError(result) != 0 {
                throw InventoryError(.malformed, "zstd data is corrupt: \(lib.errorName(result).map { String(cString: $0) } ?? "error \(result)")")
            }
            pending = result
            if produced > 0 {
                output.removeSubrange(produced...)
                return output
            }
        }
    }
}
