import Documents
import Findings
import Testing

/// `kind: Component` documents: tags followed and versions pinned, read strictly with positions.
@Suite struct ComponentDocumentTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    @Test func tagsAndPinnedVersionsAreRead() throws {
        let doc = try ComponentDocument.parse(
            """
            apiVersion: warden.dev/v1
            kind: Component
            metadata: {name: shop}
            spec:
              version: "1.4"
              artefacts:
                - registry.example/shop/web:1.4
                - localhost:5000/shop/db@\(Self.digest)
                - registry.example:8443/team/deep/path:latest
            """, file: "shop.yaml")
        #expect(doc.name == "shop" && doc.version == "1.4")
        #expect(
            doc.tags == [
                .init(registry: "registry.example", repository: "shop/web", tag: "1.4"),
                .init(registry: "registry.example:8443", repository: "team/deep/path", tag: "latest"),
            ])
        #expect(doc.artefacts == [ArtefactID(registry: "localhost:5000", repository: "shop/db", digest: Self.digest)])
    }

    @Test(arguments: [
        ("kind: Component\nmetadata: {name: a}\nspec: {artefacts: [r/x:1]}", "apiVersion is missing"),
        ("apiVersion: warden.dev/v1\nkind: Workflow\nmetadata: {name: a}\nspec: {artefacts: [r/x:1]}", "kind must be Component"),
        ("apiVersion: warden.dev/v1\nkind: Component\nmetadata: {}\nspec: {artefacts: [r/x:1]}", "metadata.name is missing"),
        ("apiVersion: warden.dev/v1\nkind: Component\nmetadata: {name: a}\nspec: {artefacts: []}", "1 to 1000 artefacts"),
        ("apiVersion: warden.dev/v1\nkind: Component\nmetadata: {name: a}\nspec: {artefacts: [nohost]}", "is not registry/repository:tag"),
        ("apiVersion: warden.dev/v1\nkind: Component\nmetadata: {name: a}\nspec: {artefacts: [r/x@sha256:12]}", "is not registry/repository:tag"),
        ("apiVersion: warden.dev/v1\nkind: Component\nmetadata: {name: a}\nspec: {artefacts: [r/x]}", "is not registry/repository:tag"),
        ("apiVersion: warden.dev/v1\nkind: Component\nmetadata: {name: a}\nspec: {artefacts: [r/x:1], owner: me}", "owner"),
    ])
    func malformedDocumentsNameWhatAndWhere(_ text: String, _ message: String) throws {
        do {
            _ = try ComponentDocument.parse(text, file: "c.yaml")
            Issue.record("accepted: \(text)")
        } catch let e as YAMLError {
            #expect(e.description.contains(message) && e.description.contains("c.yaml:"), "\(e)")
        }
    }
}
