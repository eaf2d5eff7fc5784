import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore

/// An OpenID Connect issuer whose signed JWTs the server accepts as bearer tokens.
///
/// Its keys come from its JSON Web Key Set (JWKS): at `jwksURL` when that is set, otherwise at the `jwks_uri` of
/// its discovery document (`issuer` + `/.well-known/openid-configuration`, whose own `issuer` must equal
/// ``issuer``). Both must be `https` URLs, except on a loopback host.
public struct OIDCIssuer: Sendable, Equatable {
    /// The exact `iss` value of the issuer's tokens, e.g. `https://login.example.com`.
    public var issuer: String
    /// The audiences the server answers to: a token's `aud` must contain at least one of them.
    public var audiences: [String]
    /// Where the issuer's JWKS is; when `nil`, it is read from the issuer's discovery document.
    public var jwksURL: String?
    /// The claim that names the subject of the identity (a string).
    public var subjectClaim: String = "sub"
    /// The claim that lists the subject's groups: an array of strings or a single string; missing means none.
    public var groupsClaim: String = "groups"
    /// The signature algorithms (`alg`) accepted from this issuer. `none` and the HMAC algorithms (`HS*`) are
    /// never accepted, whatever this lists: the issuer's keys are public.
    public var algorithms: [String] = ["RS256", "ES256"]
    /// Seconds of clock skew tolerated when checking `exp`, `nbf` and `iat`.
    public var leeway: Double = 60

    /// An issuer whose keys are at `jwksURL`, or, when that is `nil`, found by OpenID discovery.
    public init(issuer: String, audiences: [String], jwksURL: String? = nil) {
        self.issuer = issuer
        self.audiences = audiences
        self.jwksURL = jwksURL
    }
}

/// Who a verified token says its bearer is.
public struct OIDCIdentity: Sendable, Equatable {
    /// The issuer that signed the token (its `iss`).
    public var issuer: String
    /// The value of the issuer's subject claim.
    public var subject: String
    /// The values of the issuer's groups claim, in the token's order.
    public var groups: [String]
    /// When the token expires (its `exp`, without leeway).
    public var expiresAt: Date

    /// An identity with the given fields.
    public init(issuer: String, subject: String, groups: [String], expiresAt: Date) {
        self.issuer = issuer
        self.subject = subject
        self.groups = groups
        self.expiresAt = expiresAt
    }
}

/// Why a token was refused, or why an issuer's keys could not be had. The reason never quotes the token.
public struct OIDCError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of check failed.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The token is not a compact JWS with a JSON header and a JSON object payload.
        case malformedToken
        /// The token's `iss` is not a configured issuer.
        case unknownIssuer
        /// The token's `alg` is not accepted (`none`, `HS*`, not in the issuer's list, or not the key's).
        case algorithmNotAllowed
        /// The issuer's key set has no key for the token's `kid`, even after fetching it again.
        case unknownKey
        /// The signature does not verify with the issuer's key.
        case invalidSignature
        /// The token's `exp` has passed (beyond the leeway).
        case expired
        /// The token's `nbf` has not come yet (beyond the leeway).
        case notYetValid
        /// The token's `iat` is in the future (beyond the leeway).
        case issuedInFuture
        /// The token's `aud` names none of the issuer's accepted audiences.
        case audienceMismatch
        /// A claim is missing or of the wrong type (`exp`, the subject or the groups claim).
        case invalidClaim
        /// The issuer's discovery document or key set could not be fetched or read.
        case keySetUnavailable
    }

    /// What kind of check failed.
    public var kind: Kind
    /// What failed, in words.
    public var reason: String

    /// An error of `kind` that says `reason`.
    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }
}

/// Verifies OpenID Connect bearer tokens (compact JWS) against the JWKS of configured issuers.
///
/// Each issuer's key set is fetched on first use, again once `refreshInterval` seconds have passed, and at once when
/// a token names a `kid` the cached set lacks (key rotation) — but not sooner than `minimumRefetch` seconds after
/// the previous fetch, so tokens with made-up key ids cannot make the verifier hammer the issuer. Concurrent
/// verifications share one fetch. When a scheduled refresh fails, the keys fetched before stay in use and the fetch
/// is retried after `minimumRefetch` seconds. Fetches time out after 5 seconds and read at most 1 MiB.
///
/// Keys are only ever taken from the configured key set: a token's `jku`, `x5u`, `jwk` and `x5c` headers are ignored.
public actor OIDCVerifier {
    /// How long a discovery or JWKS fetch may take, in seconds.
    static let fetchTimeout: Int64 = 5
    /// The largest discovery document or JWKS read.
    static let fetchLimit = 1 << 20
    /// The longest token looked at.
    static let tokenLimit = 64 << 10

    private let issuers: [String: OIDCIssuer]
    private let httpClient: HTTPClient
    private let now: @Sendable () -> Date
    private let refreshInterval: Double
    private let minimumRefetch: Double
    private let logger = Logger(label: "warden.oidc")
    private var states: [String: OIDCIssuerState] = [:]

    /// A verifier that accepts tokens of `issuers` (the first wins when two have the same `issuer`).
    ///
    /// - Parameters:
    ///   - httpClient: fetches discovery documents and key sets; the caller owns it and shuts it down.
    ///   - now: the clock for `exp`, `nbf`, `iat` and the key set's age.
    ///   - refreshInterval: seconds after which a key set is fetched again.
    ///   - minimumRefetch: the fewest seconds between two fetches of one issuer's key set when a token names an
    ///     unknown `kid`, and between retries after a failed fetch.
    public init(
        issuers: [OIDCIssuer], httpClient: HTTPClient, now: @escaping @Sendable () -> Date = Date.init,
        refreshInterval: Double = 300, minimumRefetch: Double = 10
    ) {
        var byName: [String: OIDCIssuer] = [:]
        for issuer in issuers where byName[issuer.issuer] == nil {
            byName[issuer.issuer] = issuer
        }
        self.issuers = byName
        self.httpClient = httpClient
        self.now = now
        self.refreshInterval = refreshInterval
        self.minimumRefetch = minimumRefetch
    }

    /// Verifies a compact JWS and returns the identity it carries.
    ///
    /// The issuer is picked by the token's `iss` (exactly; an unknown issuer is refused before any fetch), the key
    /// by its `kid` in the issuer's key set. Then the signature, the `alg` (in the issuer's list, of the key's type
    /// and, when the key names one, the key's), `aud`, `exp` (required), `nbf` and `iat` (when present) are checked,
    /// the times with the issuer's leeway.
    ///
    /// - Throws: ``OIDCError``, whose ``OIDCError/kind`` tells which check failed.
    public func verify(_ token: String) async throws -> OIDCIdentity {
        let parsed = try OIDCCompactToken(token)
        guard let iss = parsed.payload["iss"] else {
            throw OIDCError(.malformedToken, "the token has no iss claim")
        }
        guard case .string(let issuerName) = iss else {
            throw OIDCError(.malformedToken, "the token's iss claim is not a string")
        }
        guard let issuer = issuers[issuerName] else {
            throw OIDCError(.unknownIssuer, "the token's issuer \(OIDCText.quoted(issuerName)) is not a configured OIDC issuer")
        }
        let alg = try Self.checkAlgorithm(parsed.header, issuer: issuer)
        var kid: String?
        if let value = parsed.header["kid"] {
            guard case .string(let name) = value else {
                throw OIDCError(.malformedToken, "the token's kid header is not a string")
            }
            kid = name
        }

        let candidates = try await keys(for: issuer, kid: kid, alg: alg)
        var verified: OIDCClaimsPayload?
        for key in candidates {
            let collection = try await collection(for: key, alg: alg, issuer: issuer)
            do {
                verified = try await collection.verify(token, as: OIDCClaimsPayload.self)
                break
            } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
                continue
            } catch let error as JWTError {
                throw OIDCError(
                    .invalidSignature,
                    "the token's signature could not be checked with key \(key.label) of issuer \(OIDCText.quoted(issuer.issuer)) (\(error.errorType))"
                )
            } catch {
                throw OIDCError(
                    .invalidSignature,
                    "the token's signature could not be checked with key \(key.label) of issuer \(OIDCText.quoted(issuer.issuer)) (\(type(of: error)))"
                )
            }
        }
        guard let claims = verified?.claims else {
            let which = candidates.count == 1 ? "key \(candidates[0].label)" : "any of the issuer's \(candidates.count) \(alg) keys"
            throw OIDCError(
                .invalidSignature, "the token's \(alg) signature does not verify with \(which) of issuer \(OIDCText.quoted(issuer.issuer))")
        }
        return try Self.identity(from: claims, issuer: issuer, now: now())
    }

    /// Whether `token` has the shape of a compact JWS — three base64url segments separated by dots, the first two not
    /// empty — as opposed to one of the server's own API tokens (`wdn_…`). Says nothing of its validity.
    public nonisolated static func looksLikeJWT(_ token: String) -> Bool {
        guard !token.hasPrefix("wdn_"), token.utf8.count <= tokenLimit else { return false }
        let segments = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard segments.count == 3, !segments[0].isEmpty, !segments[1].isEmpty else { return false }
        return segments.allSatisfy { $0.allSatisfy(OIDCBase64URL.isAlphabet) }
    }

    // MARK: - Algorithms

    /// The algorithms this verifier can check, with the key type (and curve) each needs.
    static let supportedAlgorithms: [String: (kty: String, crv: String?)] = [
        "RS256": ("RSA", nil), "RS384": ("RSA", nil), "RS512": ("RSA", nil),
        "PS256": ("RSA", nil), "PS384": ("RSA", nil), "PS512": ("RSA", nil),
        "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
        "EdDSA": ("OKP", "Ed25519"),
    ]

    private static func checkAlgorithm(_ header: [String: OIDCJSON], issuer: OIDCIssuer) throws -> String {
        guard case .string(let alg) = header["alg"] else {
            throw OIDCError(.malformedToken, "the token's header has no alg string")
        }
        if alg.lowercased() == "none" {
            throw OIDCError(.algorithmNotAllowed, "the token is unsigned (alg none), which is never accepted")
        }
        if alg.uppercased().hasPrefix("HS") {
            throw OIDCError(
                .algorithmNotAllowed,
                "the token is signed with a shared-secret MAC (alg \(OIDCText.quoted(alg))), which is never accepted from an OIDC issuer"
            )
        }
        guard issuer.algorithms.contains(alg), supportedAlgorithms[alg] != nil else {
            let accepted = issuer.algorithms.filter { supportedAlgorithms[$0] != nil }.joined(separator: ", ")
            throw OIDCError(
                .algorithmNotAllowed,
                "the token's alg \(OIDCText.quoted(alg)) is not among those accepted from issuer \(OIDCText.quoted(issuer.issuer)) (\(accepted))"
            )
        }
        if header["crit"] != nil {
            throw OIDCError(.malformedToken, "the token's header lists critical extensions (crit), none of which are supported")
        }
        return alg
    }

    // MARK: - Claims

    private static func identity(from claims: [String: OIDCJSON], issuer: OIDCIssuer, now: Date) throws -> OIDCIdentity {
        let time = now.timeIntervalSince1970
        guard let expValue = claims["exp"] else {
            throw OIDCError(.invalidClaim, "the token has no exp claim, which is required")
        }
        guard case .number(let exp) = expValue, exp.isFinite else {
            throw OIDCError(.invalidClaim, "the token's exp claim is not a number")
        }
        if time >= exp + issuer.leeway {
            throw OIDCError(.expired, "the token expired at \(OIDCText.date(exp)) (leeway \(OIDCText.seconds(issuer.leeway)))")
        }
        if let value = claims["nbf"] {
            guard case .number(let nbf) = value, nbf.isFinite else {
                throw OIDCError(.invalidClaim, "the token's nbf claim is not a number")
            }
            if time + issuer.leeway < nbf {
                throw OIDCError(.notYetValid, "the token is not valid before \(OIDCText.date(nbf)) (leeway \(OIDCText.seconds(issuer.leeway)))")
            }
        }
        if let value = claims["iat"] {
            guard case .number(let iat) = value, iat.isFinite else {
                throw OIDCError(.invalidClaim, "the token's iat claim is not a number")
            }
            if time + issuer.leeway < iat {
                throw OIDCError(
                    .issuedInFuture,
                    "the token says it was issued at \(OIDCText.date(iat)), in the future (leeway \(OIDCText.seconds(issuer.leeway)))")
            }
        }

        let audiences: [String]
        switch claims["aud"] {
        case .string(let one): audiences = [one]
        case .array(let many):
            audiences = many.compactMap { if case .string(let s) = $0 { s } else { nil } }
        case nil, .null:
            throw OIDCError(.audienceMismatch, "the token has no aud claim")
        default:
            throw OIDCError(.audienceMismatch, "the token's aud claim is neither a string nor an array of strings")
        }
        guard audiences.contains(where: issuer.audiences.contains) else {
            let accepted = issuer.audiences.map(OIDCText.quoted).joined(separator: ", ")
            throw OIDCError(.audienceMismatch, "the token's audience names none of those accepted from this issuer (\(accepted))")
        }

        guard case .string(let subject) = claims[issuer.subjectClaim], !subject.isEmpty else {
            throw OIDCError(
                .invalidClaim, "the token's \(OIDCText.quoted(issuer.subjectClaim)) claim (the subject) is missing or not a non-empty string")
        }
        var groups: [String] = []
        switch claims[issuer.groupsClaim] {
        case nil, .null: break
        case .string(let one): groups = [one]
        case .array(let many):
            for element in many {
                guard case .string(let group) = element else {
                    throw OIDCError(
                        .invalidClaim, "the token's \(OIDCText.quoted(issuer.groupsClaim)) claim (the groups) holds a value that is not a string")
                }
                groups.append(group)
            }
        default:
            throw OIDCError(
                .invalidClaim, "the token's \(OIDCText.quoted(issuer.groupsClaim)) claim (the groups) is neither a string nor an array of strings")
        }
        return OIDCIdentity(issuer: issuer.issuer, subject: subject, groups: groups, expiresAt: Date(timeIntervalSince1970: exp))
    }

    // MARK: - Keys

    /// The keys of `issuer` that may have signed a token with `kid` and `alg`, fetching the key set as needed.
    private func keys(for issuer: OIDCIssuer, kid: String?, alg: String) async throws -> [OIDCKey] {
        let name = OIDCText.quoted(issuer.issuer)
        var (keySet, fetched) = try await currentKeys(for: issuer)
        if let kid, !keySet.keys.contains(where: { $0.kid == kid }) {
            if !fetched {
                let state = states[issuer.issuer] ?? OIDCIssuerState()
                if state.fetch == nil, let attempted = state.attemptedAt, now().timeIntervalSince(attempted) < minimumRefetch {
                    let age = OIDCText.seconds(max(0, now().timeIntervalSince(attempted)).rounded())
                    throw OIDCError(
                        .unknownKey,
                        "the key set of issuer \(name) has no key \(OIDCText.quoted(kid)); it was fetched \(age) ago, "
                            + "and is fetched again for an unknown kid at most every \(OIDCText.seconds(minimumRefetch))"
                    )
                }
                keySet = try await refresh(issuer)
            }
            guard keySet.keys.contains(where: { $0.kid == kid }) else {
                throw OIDCError(.unknownKey, "the key set of issuer \(name) has no key \(OIDCText.quoted(kid)), even fetched anew")
            }
        }
        let named = keySet.keys.filter { kid == nil || $0.kid == kid }
        guard !named.isEmpty else {
            throw OIDCError(.unknownKey, "the key set of issuer \(name) has no usable keys")
        }
        let usable = named.filter { $0.accepts(alg) }
        guard !usable.isEmpty else {
            if named.count == 1 {
                throw OIDCError(.algorithmNotAllowed, "the token's alg is \(alg), but key \(named[0].label) of issuer \(name) is \(named[0].summary)")
            }
            throw OIDCError(
                .algorithmNotAllowed, "the token's alg is \(alg), but no key of issuer \(name)\(kid == nil ? "" : " with its kid") is one for \(alg)")
        }
        return usable
    }

    /// The cached key set of `issuer`, fetched first when there is none or it is older than the refresh interval;
    /// `fetched` tells whether it was fetched for this call.
    private func currentKeys(for issuer: OIDCIssuer) async throws -> (keySet: OIDCKeySet, fetched: Bool) {
        let state = states[issuer.issuer] ?? OIDCIssuerState()
        if let keySet = state.keySet {
            guard now().timeIntervalSince(keySet.fetchedAt) >= refreshInterval else { return (keySet, false) }
            if state.fetch == nil, let attempted = state.attemptedAt, now().timeIntervalSince(attempted) < minimumRefetch {
                return (keySet, false)  // a refresh failed a moment ago: keep the keys until the next try
            }
            do {
                return (try await refresh(issuer), true)
            } catch {
                logger.warning(
                    "OIDC key set refresh failed; keeping the keys fetched before",
                    metadata: ["issuer": "\(issuer.issuer)", "error": "\(error)"]
                )
                return (keySet, false)
            }
        }
        if state.fetch == nil, let failure = state.failure, let attempted = state.attemptedAt,
            now().timeIntervalSince(attempted) < minimumRefetch
        {
            throw OIDCError(.keySetUnavailable, failure.reason + " (tried again at most every \(OIDCText.seconds(minimumRefetch)))")
        }
        return (try await refresh(issuer), true)
    }

    /// Fetches the key set of `issuer`, or joins the fetch already under way.
    private func refresh(_ issuer: OIDCIssuer) async throws -> OIDCKeySet {
        if let fetch = states[issuer.issuer]?.fetch {
            return try await fetch.value
        }
        let client = httpClient
        let logger = logger
        let now = now
        let fetch = Task {
            var keys = try await Self.download(issuer, client: client, logger: logger)
            keys.fetchedAt = now()
            return keys
        }
        states[issuer.issuer, default: OIDCIssuerState()].fetch = fetch
        states[issuer.issuer, default: OIDCIssuerState()].attemptedAt = now()
        do {
            let keys = try await fetch.value
            states[issuer.issuer, default: OIDCIssuerState()] = OIDCIssuerState(keySet: keys, attemptedAt: now())
            return keys
        } catch {
            let failure =
                (error as? OIDCError)
                ?? OIDCError(.keySetUnavailable, "the key set of issuer \(OIDCText.quoted(issuer.issuer)) could not be fetched: \(error)")
            states[issuer.issuer, default: OIDCIssuerState()].fetch = nil
            states[issuer.issuer, default: OIDCIssuerState()].failure = failure
            throw failure
        }
    }

    /// A key collection holding only `key`, for `alg` (cached until the key set is fetched again).
    private func collection(for key: OIDCKey, alg: String, issuer: OIDCIssuer) async throws -> JWTKeyCollection {
        let id = OIDCCollectionID(index: key.index, alg: alg)
        if let cached = states[issuer.issuer]?.collections[id] {
            return cached
        }
        var jwk = key.jwk
        jwk.algorithm = JWK.Algorithm(rawValue: alg)
        jwk.keyIdentifier = JWKIdentifier(string: key.kid ?? "")
        let collection = JWTKeyCollection()
        do {
            try await collection.add(jwk: jwk, isDefault: true)
        } catch {
            // jwt-kit's reasons here are fixed texts; other errors are named by their type only.
            let cause = (error as? JWTError).map { $0.reason ?? "\($0.errorType)" } ?? "\(type(of: error))"
            throw OIDCError(
                .keySetUnavailable,
                "key \(key.label) in the key set of issuer \(OIDCText.quoted(issuer.issuer)) cannot be used for \(alg): \(cause)"
            )
        }
        states[issuer.issuer]?.collections[id] = collection
        return collection
    }

    // MARK: - Fetching

    private static func download(_ issuer: OIDCIssuer, client: HTTPClient, logger: Logger) async throws -> OIDCKeySet {
        let name = OIDCText.quoted(issuer.issuer)
        let jwksURL: String
        if let configured = issuer.jwksURL {
            jwksURL = configured
        } else {
            var base = issuer.issuer
            while base.hasSuffix("/") { base.removeLast() }
            let discoveryURL = base + "/.well-known/openid-configuration"
            let body = try await fetch(discoveryURL, what: "the discovery document of issuer \(name)", client: client)
            let what = "the discovery document of issuer \(name) at \(discoveryURL)"
            guard let document = try? JSONDecoder().decode([String: OIDCJSON].self, from: body) else {
                throw OIDCError(.keySetUnavailable, "\(what) is not a JSON object")
            }
            guard case .string(let named) = document["issuer"], named == issuer.issuer else {
                throw OIDCError(.keySetUnavailable, "\(what) does not name the issuer \(name) as its issuer")
            }
            guard case .string(let uri) = document["jwks_uri"] else {
                throw OIDCError(.keySetUnavailable, "\(what) has no jwks_uri")
            }
            jwksURL = uri
        }
        let body = try await fetch(jwksURL, what: "the key set of issuer \(name)", client: client)
        let keys = try OIDCKeySet(body, what: "the key set of issuer \(name) at \(jwksURL)")
        logger.info(
            "OIDC key set fetched",
            metadata: [
                "issuer": "\(issuer.issuer)", "url": "\(jwksURL)",
                "kids": "\(keys.keys.map { $0.kid ?? "-" }.joined(separator: ","))", "skipped": "\(keys.skipped)",
            ]
        )
        return keys
    }

    /// The body of a GET of `url`, which must answer 200 within the timeout and with at most the size limit.
    private static func fetch(_ url: String, what: String, client: HTTPClient) async throws -> Data {
        let place = "\(what) at \(url)"
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host, !host.isEmpty else {
            throw OIDCError(.keySetUnavailable, "the URL of \(what) is not an absolute http(s) URL: \(url)")
        }
        guard scheme == "https" || (scheme == "http" && OIDCText.isLoopback(host)) else {
            throw OIDCError(.keySetUnavailable, "\(what) must be fetched over https (plain http only from a loopback host): \(url)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        do {
            // The client's deadline ends with the response head; the time limit bounds the body too.
            // The client's own deadline comes first and names the cause (a refused connection is retried until it).
            return try await withTimeLimit(seconds: Double(fetchTimeout) + 0.25) { [request] in
                let response = try await client.execute(request, deadline: .now() + .seconds(fetchTimeout))
                guard response.status == .ok else {
                    throw OIDCError(.keySetUnavailable, "\(place) answered HTTP \(response.status.code)")
                }
                if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > fetchLimit {
                    throw OIDCError(.keySetUnavailable, "\(place) is larger than \(fetchLimit >> 20) MiB (\(length) bytes)")
                }
                let buffer = try await response.body.collect(upTo: fetchLimit)
                return Data(buffer.readableBytesView)
            }
        } catch let error as OIDCError {
            throw error
        } catch is NIOTooManyBytesError {
            throw OIDCError(.keySetUnavailable, "\(place) is larger than \(fetchLimit >> 20) MiB")
        } catch let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) {
            throw OIDCError(.keySetUnavailable, "\(place) was not received within \(fetchTimeout) s")
        } catch is OIDCTimeLimitExceeded {
            throw OIDCError(.keySetUnavailable, "\(place) was not received within \(fetchTimeout) s")
        } catch {
            throw OIDCError(.keySetUnavailable, "\(place) could not be fetched: \(OIDCText.describe(error))")
        }
    }

    /// The result of `operation`, which is cancelled when it takes longer than `seconds`.
    private static func withTimeLimit<T: Sendable>(seconds: Double, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw OIDCTimeLimitExceeded()
            }
            return value
        }
    }
}

struct OIDCTimeLimitExceeded: Error {}

// MARK: - Key sets

/// One usable key of an issuer's key set.
struct OIDCKey: Sendable {
    /// Its position in the key set (keys need not have a kid).
    var index: Int
    var kid: String?
    var kty: String
    var crv: String?
    var alg: String?
    /// The public parts of the key.
    var jwk: JWK

    var label: String { kid.map(OIDCText.quoted) ?? "#\(index + 1)" }

    var summary: String { "an \(kty)\(crv.map { " \($0)" } ?? "") key\(alg.map { " for \($0)" } ?? "")" }

    /// Whether a signature made with `alg` can be checked with this key.
    func accepts(_ alg: String) -> Bool {
        guard let needed = OIDCVerifier.supportedAlgorithms[alg], needed.kty == kty else { return false }
        if let curve = needed.crv, crv != curve { return false }
        return self.alg == nil || self.alg == alg
    }
}

/// The usable keys of a JWKS: signing keys of a supported type, with their private parts dropped.
struct OIDCKeySet: Sendable {
    var keys: [OIDCKey]
    /// How many entries were passed over (encryption keys, unsupported types, unreadable keys).
    var skipped: Int
    var fetchedAt = Date(timeIntervalSince1970: 0)

    init(_ body: Data, what: String) throws {
        let document: OIDCRawKeySet
        do {
            document = try JSONDecoder().decode(OIDCRawKeySet.self, from: body)
        } catch {
            throw OIDCError(.keySetUnavailable, "\(what) is not a JWKS (a JSON object with a keys array)")
        }
        keys = []
        skipped = 0
        for (index, raw) in document.keys.enumerated() {
            guard var jwk = raw.jwk, let kty = raw.kty, raw.use == nil || raw.use == "sig",
                OIDCVerifier.supportedAlgorithms.values.contains(where: { $0.kty == kty })
            else {
                skipped += 1
                continue
            }
            jwk.privateExponent = nil
            jwk.prime1 = nil
            jwk.prime2 = nil
            keys.append(OIDCKey(index: index, kid: raw.kid, kty: kty, crv: raw.crv, alg: raw.alg, jwk: jwk))
        }
    }
}

/// A JWKS as published: each entry read leniently, so that one odd key does not spoil the set.
struct OIDCRawKeySet: Decodable {
    var keys: [OIDCRawKey]
}

struct OIDCRawKey: Decodable {
    var kid: String?
    var kty: String?
    var crv: String?
    var alg: String?
    var use: String?
    var jwk: JWK?

    private enum CodingKeys: String, CodingKey {
        case kid, kty, crv, alg, use
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kid = try? container.decodeIfPresent(String.self, forKey: .kid)
        kty = try? container.decodeIfPresent(String.self, forKey: .kty)
        crv = try? container.decodeIfPresent(String.self, forKey: .crv)
        alg = try? container.decodeIfPresent(String.self, forKey: .alg)
        use = try? container.decodeIfPresent(String.self, forKey: .use)
        jwk = try? JWK(from: decoder)
    }
}

struct OIDCCollectionID: Hashable, Sendable {
    var index: Int
    var alg: String
}

/// What the verifier knows of one issuer's keys.
struct OIDCIssuerState {
    var keySet: OIDCKeySet?
    /// When the key set was last fetched or tried.
    var attemptedAt: Date?
    /// The fetch under way, which concurrent verifications join.
    var fetch: Task<OIDCKeySet, any Error>?
    /// Why the last fetch failed, when there are no keys yet.
    var failure: OIDCError?
    var collections: [OIDCCollectionID: JWTKeyCollection] = [:]
}

// MARK: - Tokens

/// A compact JWS split and decoded, not yet verified.
struct OIDCCompactToken {
    var header: [String: OIDCJSON]
    var payload: [String: OIDCJSON]

    init(_ token: String) throws {
        guard token.utf8.count <= OIDCVerifier.tokenLimit else {
            throw OIDCError(.malformedToken, "the token is longer than \(OIDCVerifier.tokenLimit) bytes")
        }
        let segments = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard segments.count == 3 else {
            throw OIDCError(.malformedToken, "the token is not three dot-separated segments (it has \(segments.count))")
        }
        guard let headerBytes = OIDCBase64URL.decode(segments[0]), let payloadBytes = OIDCBase64URL.decode(segments[1]),
            OIDCBase64URL.decode(segments[2]) != nil
        else {
            throw OIDCError(.malformedToken, "a segment of the token is not unpadded base64url")
        }
        guard let header = try? JSONDecoder().decode([String: OIDCJSON].self, from: headerBytes) else {
            throw OIDCError(.malformedToken, "the token's header is not a JSON object")
        }
        guard let payload = try? JSONDecoder().decode([String: OIDCJSON].self, from: payloadBytes) else {
            throw OIDCError(.malformedToken, "the token's payload is not a JSON object")
        }
        self.header = header
        self.payload = payload
    }
}

/// The claims of a token whose signature jwt-kit verified; they are checked afterwards, with the issuer's settings.
struct OIDCClaimsPayload: JWTPayload {
    var claims: [String: OIDCJSON]

    init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: OIDCJSON].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A JSON value.
enum OIDCJSON: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([OIDCJSON])
    case object([String: OIDCJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([OIDCJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: OIDCJSON].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

enum OIDCBase64URL {
    static func isAlphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// The bytes of unpadded base64url text, or `nil` when it is not that.
    static func decode(_ text: Substring.UTF8View.SubSequence) -> Data? {
        guard text.allSatisfy(isAlphabet), text.count % 4 != 1 else { return nil }
        var base64 = String(decoding: text, as: UTF8.self)
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// Text for reasons: values that came from a token are quoted, cut short and stripped of control characters.
enum OIDCText {
    static func quoted(_ value: String) -> String {
        var text = String(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
        if text.count > 100 {
            text = String(text.prefix(100)) + "…"
        }
        return "'" + text + "'"
    }

    static func date(_ seconds: Double) -> String {
        // Years 1 to 9999 as ISO 8601, anything else as the number.
        guard seconds > -62_135_596_800, seconds < 253_402_300_800 else { return "\(seconds)" }
        return Date(timeIntervalSince1970: seconds).formatted(.iso8601)
    }

    /// A duration of configuration, in whole seconds where it is one.
    static func seconds(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e12 else { return "\(value) s" }
        return value.rounded() == value ? "\(Int64(value)) s" : "\(value) s"
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
