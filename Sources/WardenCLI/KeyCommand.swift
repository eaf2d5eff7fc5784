import ArgumentParser
import CommandSupport
import Crypto
import Documents
import Foundation
import OCI
import Trust
import WardenApp

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Generate and read cosign-compatible signing keys.",
        subcommands: [KeyGenerate.self, KeyPublic.self])
}

/// Where a key password comes from: `WARDEN_PASSWORD` (may be empty), a file, or a prompt on the terminal.
struct PasswordOptions: ParsableArguments {
    @Option(name: .long, help: "Read the key password from this file (its first line).")
    var passwordFile: String?

    func password(confirm: Bool) throws -> Data {
        if let p = ProcessInfo.processInfo.environment["WARDEN_PASSWORD"] { return Data(p.utf8) }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw ValidationError("cannot read --password-file \(passwordFile)")
            }
            return Data((text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? "").utf8)
        }
        guard isatty(0) == 1 else {
            throw ValidationError("no password: set WARDEN_PASSWORD (empty is allowed) or use --password-file")
        }
        let first = String(cString: getpass("Enter password for private key: "))
        if confirm {
            let second = String(cString: getpass("Enter password for private key again: "))
            guard first == second else { throw ValidationError("the passwords do not match") }
        }
        return Data(first.utf8)
    }
}

struct KeyGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write an ECDSA P-256 key pair: PREFIX.key (encrypted, cosign format, mode 0600) and PREFIX.pub.")

    @Option(name: .long, help: "File name prefix for the key pair.")
    var outputKeyPrefix = "cosign"

    @Flag(name: .long, help: "Overwrite existing files.")
    var force = false

    @OptionGroup var password: PasswordOptions

    func run() async throws {
        let keyPath = outputKeyPrefix + ".key"
        let pubPath = outputKeyPrefix + ".pub"
        let fm = FileManager.default
        if !force {
            for p in [keyPath, pubPath] where fm.fileExists(atPath: p) {
                throw ValidationError("\(p) exists; use --force to overwrite it")
            }
        }
        let pw = try password.password(confirm: true)
        let key = P256.Signing.PrivateKey()
        let encrypted = try CosignKeyFile.encrypt(key, password: pw)
        // The private key file is created 0600 from its first byte (never world-readable, even for an instant),
        // and written before the public key, so a failure never leaves a public key without its private key.
        try PrivateFiles.writeAtomically(Data(encrypted.utf8), to: keyPath, mode: 0o600)
        try PrivateFiles.writeAtomically(Data(publicKeyPEM(key.publicKey).utf8), to: pubPath, mode: 0o644)
        print("Private key written to \(keyPath)")
        print("Public key written to \(pubPath)")
    }
}

struct KeyPublic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "public-key", abstract: "Decrypt a cosign-format private key and print its public key (PEM).")

    @Option(name: .long, help: "The private key file.")
    var key: String

    @OptionGroup var password: PasswordOptions

    func run() async throws {
        guard let text = try? String(contentsOfFile: key, encoding: .utf8) else {
            throw ValidationError("cannot read --key \(key)")
        }
        do {
            let k = try CosignKeyFile.decrypt(text, password: try password.password(confirm: false), source: key)
            print(publicKeyPEM(k.publicKey), terminator: "")
        } catch let e as TrustError {
            throw failure(for: e)
        }
    }
}
