import ArgumentParser
import CommandSupport
import Documents
import Foundation
import Logging
import OCI
import OCIRegistry
import Trust
import WardenApp
import Workflow

@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Supply-chain security for OCI artifacts: copy, verify and guard what you run.",
        discussion: """
            Locations are registry references (registry/repo:tag, registry/repo@sha256:...) or OCI image layouts \
            (oci-layout:PATH[:TAG|@DIGEST]).

            Exit codes: 0 success; 1 failure; 2 content integrity failure (digest or size mismatch); \
            3 not found; 4 authentication or authorization failure (or a wrong key password); \
            10 verify: no signature; 11 verify: signatures found, none valid; 12 verify: refused by the \
            trust policy; 13 replicate: some artifacts refused by verification; 64 usage error.
            """,
        version: WardenVersion.current,
        subcommands: [
            CopyCommand.self, InspectCommand.self, TagsCommand.self, KeyCommand.self, SignCommand.self, VerifyCommand.self, AttestCommand.self,
            VerifyAttestationCommand.self, PolicyCommand.self, ReplicateCommand.self, CELCommand.self, DigestCommand.self,
            CatalogCommand.self, SBOMCommand.self, WorkflowCommand.self, RunCommand.self, RunsCommand.self, ActionsCommand.self,
            DatabaseCommand.self, VEXCommand.self, ScanCommand.self, DemoCommand.self, ServeCommand.self, AdminCommand.self, AuditCommand.self,
            TriggerCommand.self, FindingsCommand.self, RescoreCommand.self, ComplianceCommand.self,
            LoginCommand.self,
            ReapCommand.self,
        ]
    )
}

/// The process runtime's reaper (`Reaper`): not for people to type.
struct ReapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: Reaper.command, shouldDisplay: false)
    @Argument(parsing: .captureForPassthrough) var command: [String] = []
    func run() throws {
        Reaper.run(command.first == "--" ? Array(command.dropFirst()) : command)
    }
}
