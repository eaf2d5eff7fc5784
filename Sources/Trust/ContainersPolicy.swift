import Foundation

/// Converts the `docker` transport of a containers `policy.json` (containers-policy.json(5)) into a Warden trust
/// policy (YAML text). `sigstoreSigned` becomes authorities; `insecureAcceptAnything` becomes `allowUnsigned`;
/// `reject` stays `reject`. GPG requirements (`signedBy`) have no equivalent and are refused with their scope.
public enum ContainersPolicyImport {
    public static func convert(_ json: Data, source: String) throws -> String {
        guard let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw TrustError(.malformed, "\(source): not a JSON object")
        }
        var scopes: [(String, [Any])] = []
        if let docker = (root["transports"] as? [String: Any])?["docker"] as? [String: Any] {
            for (scope, reqs) in docker {
                guard let list = reqs as? [Any] else { throw TrustError(.malformed, "\(source): transports.docker[\"\(scope)\"] is not a list") }
                scopes.append((scope, list))
            }
        }
        // Warden takes the first matching rule: most specific scopes first, as containers/image does.
        scopes.sort { ($0.0.count, $1.0) > ($1.0.count, $0.0) }
        if let def = root["default"] as? [Any] { scopes.append(("", def)) }
        var authorities: [String] = []
        var policies: [String] = []
        for (n, (scope, reqs)) in scopes.enumerated() {
            let where_ = scope.isEmpty ? "default" : "transports.docker[\"\(scope)\"]"
            var names: [String] = []
            var reject = false
            var accept = false
            var sigstoreCount = 0
            for (i, r) in reqs.enumerated() {
                guard let req = r as? [String: Any], let type = req["type"] as? String else {
                    throw TrustError(.malformed, "\(source): \(where_)[\(i)] has no type")
                }
                switch type {
                case "reject": reject = true
                case "insecureAcceptAnything": accept = true
                case "sigstoreSigned":
                    sigstoreCount += 1
                    let base = "scope\(n + 1)-\(sigstoreCount)"
                    var rekor: [String] = []
                    for k in ["rekorPublicKeyPath"] { if let p = req[k] as? String { rekor.append(p) } }
                    rekor += (req["rekorPublicKeyPaths"] as? [String]) ?? []
                    if req["rekorPublicKeyData"] != nil || req["rekorPublicKeyDatas"] != nil {
                        throw TrustError(
                            .unsupported,
                            "\(source): \(where_)[\(i)]: rekorPublicKeyData is not supported; save the key to a file and use rekorPublicKeyPath")
                    }
                    let rekorYAML = rekor.isEmpty ? "" : "\n    rekor:\n      keys: [\(rekor.map(quote).joined(separator: ", "))]"
                    var keys: [String] = []
                    if let p = req["keyPath"] as? String { keys.append("    key: \(quote(p))") }
                    for p in (req["keyPaths"] as? [String]) ?? [] { keys.append("    key: \(quote(p))") }
                    var datas = (req["keyDatas"] as? [String]) ?? []
                    if let d = req["keyData"] as? String { datas.append(d) }
                    for d in datas {
                        guard let pem = Data(base64Encoded: d).map({ String(decoding: $0, as: UTF8.self) }) else {
                            throw TrustError(.malformed, "\(source): \(where_)[\(i)]: keyData is not base64")
                        }
                        keys.append("    keyData: |\n" + pem.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n"))
                    }
                    if let f = req["fulcio"] as? [String: Any] {
                        guard let ca = f["caPath"] as? String else {
                            throw TrustError(
                                .unsupported, "\(source): \(where_)[\(i)]: fulcio.caData is not supported; save the CA to a file and use caPath")
                        }
                        guard let issuer = f["oidcIssuer"] as? String, let email = f["subjectEmail"] as? String else {
                            throw TrustError(.malformed, "\(source): \(where_)[\(i)]: fulcio needs oidcIssuer and subjectEmail")
                        }
                        keys.append(
                            "    keyless:\n      roots: \(quote(ca))\n      identities:\n        - subject: \(quote(email))\n          issuer: \(quote(issuer))"
                        )
                    }
                    if let p = req["pki"] as? [String: Any] {
                        guard let roots = p["caRootsPath"] as? String else {
                            throw TrustError(.unsupported, "\(source): \(where_)[\(i)]: pki.caRootsData is not supported; use caRootsPath")
                        }
                        var text = "    keyless:\n      roots: \(quote(roots))"
                        if let inter = p["caIntermediatesPath"] as? String { text += "\n      intermediates: \(quote(inter))" }
                        text += "\n      identities:"
                        for s in [p["subjectEmail"], p["subjectHostname"]].compactMap({ $0 as? String }) {
                            text += "\n        - subject: \(quote(s))"
                        }
                        guard text.hasSuffix("\"") else {
                            throw TrustError(.malformed, "\(source): \(where_)[\(i)]: pki needs subjectEmail or subjectHostname")
                        }
                        keys.append(text)
                    }
                    guard !keys.isEmpty else { throw TrustError(.malformed, "\(source): \(where_)[\(i)]: sigstoreSigned needs a key, fulcio or pki") }
                    if keys.count > 1 && sigstoreCount > 1 || keys.count > 1 && reqs.count > 1 {
                        throw TrustError(
                            .unsupported, "\(source): \(where_): several keys in one requirement combined with other requirements cannot be expressed"
                        )
                    }
                    for (j, k) in keys.enumerated() {
                        let name = keys.count == 1 ? base : "\(base)-\(j + 1)"
                        authorities.append("  \(name):\n\(k)\(rekorYAML)")
                        names.append(name)
                    }
                default:
                    throw TrustError(
                        .unsupported,
                        "\(source): \(where_)[\(i)]: requirement type \"\(type)\" has no Warden equivalent (only sigstoreSigned, insecureAcceptAnything and reject)"
                    )
                }
            }
            let images = scope.isEmpty ? ["**"] : [scope, scope + "/**"]
            var rule = "  - name: \(quote(scope.isEmpty ? "default" : scope))\n    images: [\(images.map(quote).joined(separator: ", "))]"
            if reject {
                rule += "\n    reject: true"
            } else if !names.isEmpty {
                rule += "\n    authorities: [\(names.joined(separator: ", "))]"
                // Every sigstoreSigned requirement must hold (containers' AND); keys within one are alternatives.
                rule += "\n    threshold: \(sigstoreCount > 1 ? names.count : 1)"
            } else if accept {
                rule += "\n    allowUnsigned: true"
            } else {
                rule += "\n    reject: true"
            }
            policies.append(rule)
        }
        guard !policies.isEmpty else { throw TrustError(.malformed, "\(source): neither default nor transports.docker has requirements") }
        return """
            # Imported from \(source)
            apiVersion: warden.dev/v1
            kind: TrustPolicy
            authorities:\(authorities.isEmpty ? " {}" : "\n" + authorities.joined(separator: "\n"))
            policies:
            \(policies.joined(separator: "\n"))

            """
    }

    static func quote(_ s: String) -> String { jsonString(s) }
}
