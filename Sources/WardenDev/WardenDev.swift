import ArgumentParser

/// `warden-dev`: the development tools — random test content, a throttling proxy, benchmark drivers. Not shipped
/// with `warden` (which links none of the test tools).
@main
struct WardenDev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden-dev",
        abstract: "Warden's development tools: test content, a test proxy and benchmark drivers.",
        version: "0.1.0",
        subcommands: [
            TestdataCommand.self, BenchIngestCommand.self, BenchFindingsCommand.self, BenchPolicyCommand.self, BenchWorkflowCommand.self,
            TestProxyCommand.self,
        ]
    )
}
