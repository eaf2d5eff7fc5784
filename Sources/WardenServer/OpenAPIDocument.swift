/// The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`; the same text is committed as
/// `docs/openapi.json` (a test checks they are identical and that every route of the router is in it).
enum OpenAPIDocument {
    static let json = #"{"openapi":"3.1.0","info":{"title":"Warden","version":"1"},"paths":{}}"#
}
