import CEL
import Foundation
import Testing
import Workflow

@Suite struct DefinitionTests {
    static var example: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/examples/release-workflow.yaml")
    }

    @Test func theExampleParsesIntoADAG() throws {
        let def = try WorkflowDefinition.parse(try String(contentsOf: Self.example, encoding: .utf8), file: "w.yaml")
        #expect(def.name == "promote" && def.steps.map(\.id) == ["verify", "sbom", "decide", "approve", "copy", "notify"])
        #expect(try def.levels() == [["verify"], ["sbom"], ["decide"], ["approve"], ["copy"], ["notify"]])
        // References in expressions add edges: decide reads verify and sbom without `needs`.
        #expect(def.dependencies(of: def.steps[2]) == ["verify", "sbom"])
        #expect(def.inputs.map(\.name) == ["image", "target"] && def.inputs[0].required && !def.inputs[1].required)
        let verify = def.steps[0]
        #expect(verify.retry?.maxAttempts == 3 && verify.retry?.initialDelay == .seconds(2) && verify.timeout == .seconds(120))
        let step: WorkflowDefinition.Approval? = if case .approval(let a) = def.steps[3].kind { a } else { nil }
        let approval = try #require(step, "approve is not an approval step")
        #expect(approval.approvers.count == 2 && approval.timeout == .seconds(86_400) && approval.onTimeout == "reject")
        #expect(def.steps[5].continueOnError)
        let dot = def.graph(format: "dot")
        #expect(dot.contains("decide -> copy;") && dot.hasPrefix("digraph \"promote\" {"))
        #expect(def.graph(format: "mermaid").contains("approve{{\"approve<br/>approval\"}}"))
    }

    static let head = "apiVersion: warden.dev/v1\nkind: Workflow\ninputs:\n  image: {type: string}\nsteps:\n"

    /// Invalid definitions are refused before anything runs, with file, line and column.
    static let invalid: [(String, String)] = [
        ("  - id: a\n    uses: trust/verify@v1\n    retries: 3\n", "w.yaml:8:5: unknown key \"retries\""),
        ("  - id: a\n    uses: trust/verfy@v1\n", "w.yaml:7:11: unknown action \"trust/verfy\""),
        ("  - id: a\n    uses: trust/verify@v9\n", "w.yaml:7:11: action trust/verify has no version v9 (available: v1)"),
        ("  - id: a\n    uses: trust/verify\n", "w.yaml:7:11: uses must be ACTION@vMAJOR"),
        ("  - id: a\n    uses: noop@v1\n    needs: [b]\n  - id: b\n    uses: noop@v1\n    needs: [a]\n", "the steps form a cycle: a → b → a"),
        ("  - id: a\n    uses: noop@v1\n    needs: [c]\n", "w.yaml:6:5: step \"a\" needs \"c\", which is not a step of this workflow"),
        ("  - id: a\n    uses: noop@v1\n    with: {x: '${{ steps.nope.outputs.y }}'}\n", "reads steps.nope, which is not a step of this workflow"),
        (
            "  - id: a\n    uses: noop@v1\n    with: {x: '${{ inputs.imag }}'}\n",
            "w.yaml:8:26: `inputs.imag` reads inputs.imag, which is not declared"
        ),
        ("  - id: a\n    uses: noop@v1\n    with: {x: '${{ inputs.image + }}'}\n", "w.yaml:8:34: invalid CEL: unexpected end of input"),
        ("  - id: a\n    uses: noop@v1\n    if: size(inputs.image)\n", "w.yaml:8:9: the condition must be a bool"),
        ("  - id: a\n    uses: noop@v1\n    timeout: soon\n", "w.yaml:8:14: \"soon\" is not a duration"),
        ("  - id: a\n    uses: noop@v1\n  - id: a\n    wait: 5s\n", "w.yaml:8:5: duplicate step id \"a\""),
        ("  - id: a\n    uses: noop@v1\n    wait: 5s\n", "step \"a\" needs exactly one of uses, approval, wait or workflow"),
        ("  - id: a-b\n    uses: noop@v1\n", "w.yaml:6:9: step id \"a-b\" must be letters, digits and _"),
        ("  - id: a\n    approval: {approvers: [x], required: 2}\n", "required approvals must be between 1 and the number of approvers"),
        ("  - id: a\n    uses: noop@v1\n    retry: {backoff: sometimes}\n", "backoff must be constant, linear or exponential"),
        ("  - id: a\n    uses: noop@v1\n    retry: {on: [oops]}\n", "unknown error class \"oops\""),
        ("  - id: a\n    uses: noop@v1\n    with: {x: '${{ inputs.image'}\n", "unclosed ${{"),
    ]

    @Test(arguments: invalid) func invalidDefinitionsAreRefusedWithPositions(_ steps: String, _ message: String) {
        #expect {
            try WorkflowDefinition.parse(Self.head + steps, file: "w.yaml")
        } throws: { "\($0)".contains(message) }
    }

    @Test func inputsAreTyped() {
        #expect {
            try WorkflowDefinition.parse(
                "apiVersion: warden.dev/v1\nkind: Workflow\ninputs:\n  n: {type: int, default: x}\nsteps:\n  - id: a\n    uses: noop@v1\n",
                file: "w.yaml")
        } throws: {
            "\($0)".contains("w.yaml:4:27: default of input \"n\" is not an int")
        }
        #expect {
            try WorkflowDefinition.parse(
                "apiVersion: warden.dev/v1\nkind: Workflow\ninputs:\n  n: {type: float}\nsteps:\n  - id: a\n    uses: noop@v1\n", file: "w.yaml")
        } throws: {
            "\($0)".contains("unknown input type \"float\"")
        }
    }
}
