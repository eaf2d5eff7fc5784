import ArgumentParser
import CommandSupport
import Documents
import Foundation
import Vulnerability

struct VEXCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vex", abstract: "VEX statements: what is known about a vulnerability in a product.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Write an OpenVEX 0.2.0 document with one statement.",
            discussion: """
                Name the vulnerability with --id, or a finding with --finding ID@PURL (as `warden scan` prints it); \
                with --report FILE the finding is looked up in a `warden scan -o json` report, so the statement carries \
                every alias of the vulnerability. --product is an image (sha256:DIGEST, NAME@sha256:DIGEST or \
                pkg:oci/NAME@sha256:DIGEST) or a package purl; for an image and a finding, the finding's package is the \
                statement's subcomponent. A not_affected statement needs --justification or --impact-statement.

                Justifications: \(VEXStatement.justifications.joined(separator: ", ")).
                """)

        @Option(name: .long, help: "The vulnerability id (CVE-…, GHSA-…).") var id: String?
        @Option(name: .long, help: "A finding key, ID@PURL.") var finding: String?
        @Option(name: .long, help: "A `warden scan -o json` report to look --finding up in.") var report: String?
        @Option(name: .long, help: "The product: an image digest or reference, or a purl.") var product: String
        @Option(name: .long, help: "not_affected, affected, fixed or under_investigation.") var status: String
        @Option(name: .long, help: "Why the product is not affected (a VEX justification label).") var justification: String?
        @Option(name: .long, help: "Free text: why the vulnerability cannot be exploited.") var impactStatement: String?
        @Option(name: .long, help: "Free text: what to do about it (for affected).") var actionStatement: String?
        @Option(name: [.customShort("o"), .customLong("output")], help: "Write the document to this file (default: standard output).")
        var output: String?

        func validate() throws {
            guard (id == nil) != (finding == nil) else { throw ValidationError("give exactly one of --id and --finding") }
            if report != nil && finding == nil { throw ValidationError("--report looks up a --finding; give --finding ID@PURL") }
            guard VEXStatement.Status(rawValue: status) != nil else {
                throw ValidationError(
                    "unknown status \"\(status)\" (expected \(VEXStatement.Status.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if let justification, !VEXStatement.justifications.contains(justification) {
                throw ValidationError("unknown justification \"\(justification)\" (expected \(VEXStatement.justifications.joined(separator: ", ")))")
            }
            if let finding, !finding.contains("@pkg:") {
                throw ValidationError("--finding is ID@PURL, e.g. CVE-2024-1234@pkg:deb/debian/libc6@2.36-9")
            }
        }

        func run() async throws {
            let status = VEXStatement.Status(rawValue: status)!
            let document: VEXDocument
            do {
                if let id {
                    document = try VEX.statement(
                        for: id, product: product, status: status, justification: justification, impactStatement: impactStatement,
                        actionStatement: actionStatement, timestamp: Date())
                } else {
                    document = try VEX.statement(
                        for: try lookUp(finding!), product: product, status: status, justification: justification, impactStatement: impactStatement,
                        actionStatement: actionStatement, timestamp: Date())
                }
                let bytes = document.openVEXJSON()
                if let output {
                    try PrivateFiles.writeAtomically(Data(bytes), to: output, mode: 0o644)
                } else {
                    FileHandle.standardOutput.write(Data(bytes))
                }
            } catch {
                throw failure(for: error)
            }
        }

        /// The finding a key names: from the report when one is given (with every alias), else built from the key.
        func lookUp(_ key: String) throws -> Finding {
            if let report {
                guard let data = FileManager.default.contents(atPath: report) else {
                    throw VulnerabilityError(.notFound, "\(report): cannot read the file")
                }
                let scan = try ScanReport.read(json: [UInt8](data), name: report)
                guard let found = scan.findings.first(where: { $0.key == key }) else {
                    let near = scan.findings.filter { key.hasPrefix($0.id + "@") }.map(\.key)
                    throw VulnerabilityError(
                        .notFound, "\(report): no finding \(key)" + (near.isEmpty ? "" : "; findings of that id: \(near.joined(separator: ", "))"))
                }
                return found
            }
            let at = key.range(of: "@pkg:")!
            let id = String(key[..<at.lowerBound])
            let purl = String(key[key.index(after: at.lowerBound)...])
            return Finding(id: id, ids: [id], advisories: [], package: MatchedPackage(name: "", version: "", type: "", purl: purl, ecosystem: ""))
        }
    }
}
