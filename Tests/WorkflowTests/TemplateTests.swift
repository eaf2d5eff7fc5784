import CEL
import Foundation
import Testing
import Workflow

@Suite struct TemplateTests {
    static var example: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/examples/mirror-template.yaml").path
    }

    @Test func placeholdersTakeTypedValuesAndTheResultValidates() throws {
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        #expect(WorkflowTemplate.isTemplate(text))
        let template = try WorkflowTemplate.parse(text, file: "t.yaml")
        #expect(template.parameters.map(\.name) == ["team", "registry", "attempts", "notify"])
        let yaml = try template.instantiate(["team": .string("payments"), "attempts": .int(5), "notify": .bool(true)])
        let def = try WorkflowDefinition.parse(yaml, file: "instantiated.yaml")
        #expect(def.name == "mirror-payments")
        #expect(def.steps[0].retry?.maxAttempts == 5)
        #expect(def.steps[2].condition?.source == "true")
        let literals: (String, String)? =
            if case .literal(.string(let destination)) = def.steps[1].with.first(where: { $0.name == "destination" })?.value,
                case .literal(.string(let key)) = def.steps[0].with.first(where: { $0.name == "key" })?.value
            {
                (destination, key)
            } else {
                nil
            }
        let (destination, key) = try #require(literals, "destination or key is not a literal string")
        #expect(destination == "registry.internal:5000/payments/app:latest" && key == "keys/payments.pub")
        // Runtime expressions are left alone.
        #expect(yaml.contains("${{ inputs.image }}"))
    }

    @Test func parametersAreChecked() throws {
        let template = try WorkflowTemplate.parse(try String(contentsOfFile: Self.example, encoding: .utf8), file: "t.yaml")
        for (given, message) in [
            ([String: Value](), "parameter \"team\" of template \"mirror\" is required (--param team=VALUE)"),
            (["team": .string("a"), "attempts": .string("x")], "parameter \"attempts\" must be an int, not string"),
            (["team": .string("a"), "colour": .string("x")], "template \"mirror\" has no parameter \"colour\""),
        ] {
            #expect(throws: WorkflowError.self) { try template.instantiate(given) }
            do { _ = try template.instantiate(given) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
        #expect(try template.coerce("attempts", "7").jsonText() == "7")
    }

    @Test(arguments: [
        (
            "parameters:\n  a: {type: string}\nworkflow:\n  steps:\n    - id: s\n      uses: noop@v1\n      with: {x: \"[[ b ]]\"}\n",
            "t.yaml:10:17: placeholder [[ b ]] names no parameter (parameters: a)"
        ),
        ("parameters:\n  a: {type: strng}\nworkflow: {}\n", "t.yaml:5:13: unknown parameter type \"strng\""),
        ("parameters:\n  a: {type: int, default: x}\nworkflow: {}\n", "t.yaml:5:27: default of parameter \"a\" is not an int"),
        ("parameters: {}\n", "t.yaml:1:1: workflow is missing"),
        ("parameters:\n  a: {}\nworkflow:\n  name: \"[[ a \"\n", "unclosed [[ in \"[[ a \""),
    ])
    func malformedTemplatesAreRefusedWithPositions(_ body: String, _ message: String) {
        do {
            _ = try WorkflowTemplate.parse("apiVersion: warden.dev/v1\nkind: WorkflowTemplate\nname: t\n" + body, file: "t.yaml")
            Issue.record("accepted: \(body)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}
