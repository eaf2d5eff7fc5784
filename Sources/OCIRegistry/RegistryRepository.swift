import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OCI

/// One repository of a registry, as a content store.
public struct RegistryRepository: ContentStore, BlobMounter, ManifestByReference {
    public let client: RegistryClient
    public let repository: String
    public var displayName: String { "\(client.host)/\(repository)" }

    public init(client: RegistryClient, repository: String) {
        self.client = client
        self.repository = repository
    }

    var base: String { "\(client.baseURL)/v2/\(repository)" }
    var pullScope: [String] { ["repository:\(repository):pull"] }
    var pushScope: [String] { ["repository:\(repository):pull,push"] }
    var config: RegistryConfiguration { client.configuration }

    /// The manifests URL of a tag or digest, which is checked first: nothing else may shape the path.
    func manifestURL(_ reference: String) throws -> String {
        try Reference.validateManifestIdentifier(reference, context: displayName)
        return "\(base)/manifests/\(reference)"
    }

    func endpoint(for descriptor: Descriptor) -> String {
        MediaType.isManifest(descriptor.mediaType) ? "\(base)/manifests/\(descriptor.digest)" : "\(base)/blobs/\(descriptor.digest)"
    }

    // MARK: reading

    public func fetch(_ descriptor: Descriptor) async throws -> ByteStream {
        try await fetch(descriptor, offset: 0)
    }

    /// Fetches content from `offset` (a `Range` request) so an interrupted download can resume.
    public func fetch(_ descriptor: Descriptor, offset: Int64) async throws -> ByteStream {
        let url = endpoint(for: descriptor)
        var headers = HTTPHeaders()
        if MediaType.isManifest(descriptor.mediaType) {
            headers.add(name: "Accept", value: MediaType.manifestAccept.joined(separator: ", "))
        }
        if offset > 0 { headers.add(name: "Range", value: "bytes=\(offset)-") }
        let response = try await client.send(
            RegistryRequest(method: .GET, url: url, headers: headers, scopes: pullScope, timeout: config.transferTimeout))
        guard response.status == .ok || (offset > 0 && response.status == .partialContent) else {
            throw try await client.error(for: response, what: "GET \(url)", body: nil)
        }
        return ByteStream(response.body)
    }

    public func exists(_ descriptor: Descriptor) async throws -> Bool {
        let url = endpoint(for: descriptor)
        var headers = HTTPHeaders()
        if MediaType.isManifest(descriptor.mediaType) {
            headers.add(name: "Accept", value: MediaType.manifestAccept.joined(separator: ", "))
        }
        let response = try await client.send(
            RegistryRequest(method: .HEAD, url: url, headers: headers, scopes: pullScope, timeout: config.requestTimeout))
        switch response.status {
        case .ok: return true
        case .notFound: return false
        default: throw try await client.error(for: response, what: "HEAD \(url)", body: ByteBuffer())
        }
    }

    /// Resolves a tag or digest with one HEAD (falling back to GET when the registry omits the digest header).
    public func resolve(_ reference: String) async throws -> Descriptor {
        let url = try manifestURL(reference)
        let headers: HTTPHeaders = ["Accept": MediaType.manifestAccept.joined(separator: ", ")]
        let head = try await client.send(
            RegistryRequest(method: .HEAD, url: url, headers: headers, scopes: pullScope, timeout: config.requestTimeout))
        guard head.status == .ok else {
            throw try await client.error(for: head, what: "HEAD \(url)", body: ByteBuffer())
        }
        if let d = head.headers.first(name: "Docker-Content-Digest").flatMap({ try? Digest(parsing: $0) }),
            let len = head.headers.first(name: "Content-Length").flatMap(Int64.init),
            let ct = head.headers.first(name: "Content-Type"), MediaType.isManifest(ct)
        {
            if let expected = try? Digest(parsing: reference), expected != d {
                throw OCIError(.digestMismatch, "\(displayName) answered \(reference) with digest \(d)")
            }
            return Descriptor(mediaType: ct, digest: d, size: len)
        }
        let raw = try await getManifest(reference)
        return raw.descriptor
    }

    /// GETs a manifest by tag or digest; a digest reference is verified against the bytes.
    public func getManifest(_ reference: String) async throws -> RawManifest {
        let url = try manifestURL(reference)
        let headers: HTTPHeaders = ["Accept": MediaType.manifestAccept.joined(separator: ", ")]
        let response = try await client.send(
            RegistryRequest(method: .GET, url: url, headers: headers, scopes: pullScope, timeout: config.requestTimeout))
        guard response.status == .ok else { throw try await client.error(for: response, what: "GET \(url)", body: nil) }
        let body = try await response.body.collect(upTo: maxManifestSize)
        let bytes = Data(buffer: body)
        let raw = try RawManifest(bytes: bytes, mediaType: response.headers.first(name: "Content-Type"))
        if let expected = try? Digest(parsing: reference) {
            let actual = Digest.compute(bytes, algorithm: expected.algorithm)
            guard actual == expected else {
                throw OCIError(.digestMismatch, "digest mismatch from \(displayName): expected \(expected), got \(actual)")
            }
            return try RawManifest(bytes: bytes, mediaType: raw.mediaType, digest: expected)
        }
        return raw
    }

    /// Tags, following `Link` pagination.
    public func listTags() async throws -> [String] {
        try await listTags(pageSize: 1000)
    }

    public func listTags(pageSize: Int) async throws -> [String] {
        let (valid, invalid) = try await listTagsChecked(pageSize: pageSize)
        for tag in invalid.prefix(20) {
            client.logger.warning("\(displayName) listed \"\(tag.prefix(200))\", which is not a valid tag; ignored")
        }
        return valid
    }

    /// Tags, split into those valid by the distribution grammar and those that are not (which a registry under an
    /// attacker's control may list to address other paths; they are never used in a URL).
    public func listTagsChecked(pageSize: Int = 1000) async throws -> (valid: [String], invalid: [String]) {
        struct Page: Decodable { var tags: [String]? }
        let all = try await client.paginate("\(base)/tags/list?n=\(pageSize)", scopes: pullScope) { (page: Page) in page.tags ?? [] }
        var valid: [String] = []
        var invalid: [String] = []
        for tag in all { if Reference.isValidTag(tag) { valid.append(tag) } else { invalid.append(tag) } }
        return (valid, invalid)
    }

    // MARK: referrers

    /// Referrers through the referrers API; when the registry has none (404), the `sha256-<hex>` fallback index.
    /// Any other failure is an error, never an empty list.
    public func referrers(of subject: Descriptor, artifactType: String?) async throws -> [Descriptor] {
        if await client.capabilities.referrersAPI(repository) != false {
            var url = "\(base)/referrers/\(subject.digest)"
            if let artifactType {
                url +=
                    "?artifactType="
                    + (artifactType.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? artifactType)
            }
            var result: [Descriptor] = []
            var next: String? = url
            var first = true
            var seen: Set<String> = []
            var bytes = 0
            let limits = config.listLimits
            while let pageURL = next {
                guard seen.insert(pageURL).inserted, seen.count <= limits.pages else {
                    throw OCIError(
                        .registry,
                        "referrers lookup GET \(url): the registry's Link headers loop or do not end (\(seen.count) pages read)")
                }
                let response = try await client.send(
                    RegistryRequest(
                        method: .GET, url: pageURL, headers: ["Accept": MediaType.imageIndex], scopes: pullScope, timeout: config.requestTimeout))
                let body = try await response.body.collect(upTo: maxManifestSize)
                bytes += body.readableBytes
                if first, response.status == .notFound {
                    await client.capabilities.setReferrersAPI(repository, false)
                    break
                }
                guard response.status == .ok else {
                    throw try await client.error(for: response, what: "referrers lookup GET \(pageURL)", body: body)
                }
                first = false
                await client.capabilities.setReferrersAPI(repository, true)
                let index: ImageIndex
                do {
                    index = try JSONDecoder().decode(ImageIndex.self, from: Data(buffer: body))
                } catch {
                    throw OCIError(.registry, "referrers lookup GET \(pageURL) returned an invalid index: \(describe(error))")
                }
                let filtered = response.headers.first(name: "OCI-Filters-Applied")?.contains("artifactType") == true
                result += index.manifests.filter { artifactType == nil || filtered || $0.artifactType == artifactType }
                guard result.count <= limits.items / 10, bytes <= limits.bytes / 4 else {
                    throw OCIError(
                        .registry,
                        "referrers lookup GET \(url): more than \(limits.items / 10) referrers or \((limits.bytes / 4) >> 20) MiB in \(seen.count) pages; refusing to read further"
                    )
                }
                next = response.headers.first(name: "Link").flatMap { client.nextLink($0) }
            }
            if await client.capabilities.referrersAPI(repository) == true { return result }
        }
        let index = try await fallbackIndex(for: subject.digest).index
        return index.manifests.filter { artifactType == nil || $0.artifactType == artifactType }
    }

    /// The referrers tag schema index for `digest`, with its ETag when the registry sends one.
    func fallbackIndex(for digest: Digest) async throws -> (index: ImageIndex, etag: String?, exists: Bool) {
        let url = "\(base)/manifests/\(digest.tagSchema)"
        let response = try await client.send(
            RegistryRequest(
                method: .GET, url: url, headers: ["Accept": "\(MediaType.imageIndex), \(MediaType.dockerManifestList)"], scopes: pullScope,
                timeout: config.requestTimeout))
        let body = try await response.body.collect(upTo: maxManifestSize)
        if response.status == .notFound { return (ImageIndex(manifests: []), nil, false) }
        guard response.status == .ok else {
            throw try await client.error(for: response, what: "referrers fallback GET \(url)", body: body)
        }
        guard let index = try? JSONDecoder().decode(ImageIndex.self, from: Data(buffer: body)) else {
            // Not a valid index: per the distribution spec, treat as no referrers.
            return (ImageIndex(manifests: []), nil, true)
        }
        return (index, response.headers.first(name: "ETag"), true)
    }

    /// Adds `entry` to the fallback index of `subject`. Writers in this process take turns per index (a registry
    /// that ignores `If-Match` would otherwise let two of them each read the old index and the second drop the
    /// first's entry); across processes, read-modify-write with `If-Match` where offered, then a re-read to confirm
    /// the entry survived a concurrent writer, retried a few times.
    func addToFallbackIndex(_ entry: Descriptor, subject: Digest) async throws {
        let key = "\(repository)@\(subject)"
        await client.fallbackIndexLock.acquire(key)
        do {
            try await updateFallbackIndex(entry, subject: subject)
            await client.fallbackIndexLock.release(key)
        } catch {
            await client.fallbackIndexLock.release(key)
            throw error
        }
    }

    private func updateFallbackIndex(_ entry: Descriptor, subject: Digest) async throws {
        for attempt in 0..<12 {
            if attempt > 0 {
                // Another writer won the race: back off with jitter before reading again.
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...40) * min(attempt, 6)))
            }
            var (index, etag, exists) = try await fallbackIndex(for: subject)
            if index.manifests.contains(where: { $0.digest == entry.digest }) { return }
            index.manifests.append(entry)
            let raw = try RawManifest.encode(index, mediaType: MediaType.imageIndex)
            var headers: HTTPHeaders = ["Content-Type": MediaType.imageIndex]
            // Conditional writes where the registry honours them: replace only what was read, create only if absent.
            if let etag { headers.add(name: "If-Match", value: etag) } else if !exists { headers.add(name: "If-None-Match", value: "*") }
            let status = try await putManifest(raw, reference: subject.tagSchema, extraHeaders: headers, allowPreconditionFailure: true)
            if status == .preconditionFailed { continue }
            let check = try await fallbackIndex(for: subject).index
            if check.manifests.contains(where: { $0.digest == entry.digest }) { return }
        }
        throw OCIError(
            .registry, "could not update the referrers fallback index \(displayName):\(subject.tagSchema): it kept changing under concurrent writers")
    }

    // MARK: writing

    public func push(_ descriptor: Descriptor, content: ByteStream) async throws {
        if MediaType.isManifest(descriptor.mediaType) {
            let bytes = try await content.verifying(descriptor, source: "push of \(descriptor.digest)").collect(limit: maxManifestSize)
            let raw = try RawManifest(bytes: bytes, mediaType: descriptor.mediaType, digest: descriptor.digest)
            try await pushManifest(raw, reference: descriptor.digest.description)
        } else {
            try await pushBlob(descriptor, content: content)
        }
    }

    /// PUTs a manifest under a tag or its digest; maintains the referrers fallback index for manifests with a
    /// `subject` when the registry does not process subjects itself.
    public func pushManifest(_ raw: RawManifest, reference: String) async throws {
        var headers: HTTPHeaders = ["Content-Type": raw.mediaType]
        headers.add(name: "Content-Length", value: "\(raw.bytes.count)")
        let response = try await putManifestResponse(raw, reference: reference, headers: headers)
        if let subject = try raw.parsed().subject, response.headers.first(name: "OCI-Subject") == nil {
            try await addToFallbackIndex(try referrerDescriptor(for: raw), subject: subject.digest)
        }
    }

    private func putManifestResponse(_ raw: RawManifest, reference: String, headers: HTTPHeaders) async throws -> HTTPClientResponse {
        let url = try manifestURL(reference)
        let bytes = raw.bytes
        let response = try await client.send(
            RegistryRequest(
                method: .PUT, url: url, headers: headers, body: { .bytes(ByteBuffer(bytes: bytes)) }, scopes: pushScope,
                timeout: config.requestTimeout))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created || response.status == .ok else {
            throw try await client.error(for: response, what: "PUT \(url)", body: body)
        }
        if let d = response.headers.first(name: "Docker-Content-Digest"), let got = try? Digest(parsing: d), got.algorithm == raw.digest.algorithm,
            got != raw.digest
        {
            throw OCIError(.digestMismatch, "\(displayName) stored manifest \(raw.digest) under digest \(got)")
        }
        return response
    }

    private func putManifest(_ raw: RawManifest, reference: String, extraHeaders: HTTPHeaders, allowPreconditionFailure: Bool) async throws
        -> HTTPResponseStatus
    {
        let url = try manifestURL(reference)
        let bytes = raw.bytes
        let response = try await client.send(
            RegistryRequest(
                method: .PUT, url: url, headers: extraHeaders, body: { .bytes(ByteBuffer(bytes: bytes)) }, scopes: pushScope,
                timeout: config.requestTimeout))
        let body = try await response.body.collect(upTo: 1 << 20)
        if allowPreconditionFailure, response.status == .preconditionFailed { return response.status }
        guard response.status == .created || response.status == .ok else {
            throw try await client.error(for: response, what: "PUT \(url)", body: body)
        }
        return response.status
    }

    public func tag(_ descriptor: Descriptor, as tag: String) async throws {
        let raw: RawManifest
        do {
            raw = try await getManifest(descriptor.digest.description)
        } catch let e as OCIError where e.code == .notFound {
            throw OCIError(.notFound, "cannot tag \(displayName):\(tag): manifest \(descriptor.digest) is not in the repository")
        }
        var headers: HTTPHeaders = ["Content-Type": raw.mediaType]
        headers.add(name: "Content-Length", value: "\(raw.bytes.count)")
        _ = try await putManifestResponse(raw, reference: tag, headers: headers)
    }

    public func delete(_ descriptor: Descriptor) async throws {
        let url = endpoint(for: descriptor)
        let response = try await client.send(
            RegistryRequest(method: .DELETE, url: url, scopes: ["repository:\(repository):delete"] + pushScope, timeout: config.requestTimeout))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .accepted || response.status == .ok else {
            throw try await client.error(for: response, what: "DELETE \(url)", body: body)
        }
    }

    /// Cross-repository mount when the source is another repository of the same registry.
    public func mount(_ descriptor: Descriptor, from source: any ContentReader) async throws -> Bool {
        guard let src = source as? RegistryRepository, src.client.baseURL == client.baseURL, src.repository != repository,
            !MediaType.isManifest(descriptor.mediaType)
        else { return false }
        let from = src.repository.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? src.repository
        let url = "\(base)/blobs/uploads/?mount=\(descriptor.digest)&from=\(from)"
        let response = try await client.send(
            RegistryRequest(
                method: .POST, url: url, headers: ["Content-Length": "0"], scopes: pushScope + ["repository:\(src.repository):pull"],
                timeout: config.requestTimeout))
        _ = try await response.body.collect(upTo: 1 << 20)
        switch response.status {
        case .created: return true
        case .accepted:
            // The registry opened an upload session instead; cancel it and let the caller upload.
            if let location = response.headers.first(name: "Location") {
                _ = try? await client.send(
                    RegistryRequest(method: .DELETE, url: absolute(location), scopes: pushScope, timeout: config.requestTimeout))
            }
            return false
        default:
            return false
        }
    }

    func absolute(_ location: String) -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return location }
        return client.baseURL + (location.hasPrefix("/") ? "" : "/") + location
    }

    func appendQuery(_ url: String, _ item: String) -> String {
        url + (url.contains("?") ? "&" : "?") + item
    }

    func startUpload() async throws -> String {
        let url = "\(base)/blobs/uploads/"
        let response = try await client.send(
            RegistryRequest(method: .POST, url: url, headers: ["Content-Length": "0"], scopes: pushScope, timeout: config.requestTimeout))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .accepted, let location = response.headers.first(name: "Location") else {
            throw try await client.error(for: response, what: "POST \(url)", body: body)
        }
        return absolute(location)
    }

    /// Uploads a blob: monolithic (POST, then one streamed PUT) up to the chunk threshold, chunked PATCHes above.
    public func pushBlob(_ descriptor: Descriptor, content: ByteStream) async throws {
        let verified = content.verifying(descriptor, source: "upload of \(descriptor.digest)")
        if descriptor.size > config.chunkedUploadThreshold {
            try await pushChunked(descriptor, content: verified)
            return
        }
        let location = try await startUpload()
        let url = appendQuery(location, "digest=\(descriptor.digest)")
        var headers: HTTPHeaders = ["Content-Type": "application/octet-stream"]
        headers.add(name: "Content-Length", value: "\(descriptor.size)")
        let size = descriptor.size
        let response = try await client.send(
            RegistryRequest(
                method: .PUT, url: url, headers: headers, body: { .stream(verified, length: .known(size)) }, replayable: false,
                scopes: pushScope, timeout: config.transferTimeout))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created else {
            throw try await client.error(for: response, what: "PUT blob \(descriptor.digest) to \(displayName)", body: body)
        }
    }

    /// Chunked upload: each chunk is held in memory until the registry acknowledges it, so a failed PATCH resumes
    /// from the offset the registry reports (`Range`) instead of starting over.
    func pushChunked(_ descriptor: Descriptor, content: ByteStream) async throws {
        var location = try await startUpload()
        var offset: Int64 = 0
        var pending = Data()
        var iterator = content.makeAsyncIterator()
        var finished = false
        while !finished {
            while pending.count < config.chunkSize, let chunk = try await iterator.next() {
                chunk.withUnsafeReadableBytes { pending.append(contentsOf: $0) }
            }
            if pending.count < config.chunkSize { finished = true }
            if pending.isEmpty { break }
            var attempt = 0
            while !pending.isEmpty {
                let chunk = pending
                var headers: HTTPHeaders = ["Content-Type": "application/octet-stream"]
                headers.add(name: "Content-Length", value: "\(chunk.count)")
                headers.add(name: "Content-Range", value: "\(offset)-\(offset + Int64(chunk.count) - 1)")
                do {
                    let response = try await client.send(
                        RegistryRequest(
                            method: .PATCH, url: location, headers: headers, body: { .bytes(ByteBuffer(bytes: chunk)) }, replayable: false,
                            scopes: pushScope, timeout: config.transferTimeout))
                    let body = try await response.body.collect(upTo: 1 << 20)
                    guard response.status == .accepted else {
                        throw try await client.error(
                            for: response, what: "PATCH chunk \(offset)-\(offset + Int64(chunk.count) - 1) of \(descriptor.digest)", body: body)
                    }
                    if let l = response.headers.first(name: "Location") { location = absolute(l) }
                    offset += Int64(chunk.count)
                    pending.removeAll(keepingCapacity: true)
                } catch let error as OCIError where (error.code == .transport || error.code == .registry) && attempt + 1 < config.retry.maxAttempts {
                    attempt += 1
                    try await Task.sleep(for: config.retry.delay(attempt: attempt - 1, retryAfter: nil))
                    // Ask the registry how much it has, and resend only the rest of this chunk.
                    let acknowledged = try await uploadOffset(location)
                    let have = acknowledged - offset
                    if have > 0, have <= Int64(pending.count) {
                        pending.removeFirst(Int(have))
                        offset = acknowledged
                    }
                }
            }
        }
        let url = appendQuery(location, "digest=\(descriptor.digest)")
        let response = try await client.send(
            RegistryRequest(method: .PUT, url: url, headers: ["Content-Length": "0"], scopes: pushScope, timeout: config.requestTimeout))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created else {
            throw try await client.error(for: response, what: "PUT (close upload) \(descriptor.digest) to \(displayName)", body: body)
        }
    }

    /// The number of bytes an upload session holds, from the `Range: 0-N` of its status.
    func uploadOffset(_ location: String) async throws -> Int64 {
        let response = try await client.send(RegistryRequest(method: .GET, url: location, scopes: pushScope, timeout: config.requestTimeout))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .noContent || response.status == .accepted else {
            throw try await client.error(for: response, what: "GET upload status \(location)", body: ByteBuffer())
        }
        guard let range = response.headers.first(name: "Range"), let dash = range.lastIndex(of: "-"),
            let end = Int64(range[range.index(after: dash)...])
        else {
            return 0
        }
        // distribution reports "0-0" both for an empty session and for one byte; treat it as empty.
        return end == 0 ? 0 : end + 1
    }
}

/// What the client has learnt about a registry (whether each repository answers the referrers API).
/// What a registry was seen to support. The referrers API is a property of the whole registry: the distribution
/// spec forbids a registry that implements it to answer 404, so one 404 (in any repository) settles it for all.
public actor RegistryCapabilities {
    private var referrers: Bool?
    public init() {}
    public func referrersAPI(_ repository: String) -> Bool? { referrers }
    public func setReferrersAPI(_ repository: String, _ value: Bool) { referrers = value }
}

/// Mutual exclusion by key, for async code.
public actor KeyedLock {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    public init() {}

    public func acquire(_ key: String) async {
        if held.insert(key).inserted { return }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    public func release(_ key: String) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()  // ownership passes to the next waiter
        } else {
            held.remove(key)
        }
    }
}
