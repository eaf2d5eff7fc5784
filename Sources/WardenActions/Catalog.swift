import OCIRegistry
import Workflow

extension ActionCatalog {
    /// The built-in actions, using `registries` for the ones that reach registries; `http@v1` receives its
    /// callbacks through `callbacks`.
    public static func standard(registries: Registries, stateDirectory: String? = nil, callbacks: CallbackServer = CallbackServer()) -> ActionCatalog
    {
        ActionCatalog([
            ReplicateAction(registries: registries, stateDirectory: stateDirectory),
            NoopAction(), ProcessAction(), WasmAction(), HTTPAction(callbacks: callbacks), NotifyAction(), CopyAction(registries: registries),
            VerifyAction(registries: registries),
            PolicyEvalAction(registries: registries), SignAction(registries: registries), AttestAction(registries: registries),
            SBOMAction(registries: registries), ScanAction(registries: registries, stateDirectory: stateDirectory),
            FindingsScanAction(registries: registries, stateDirectory: stateDirectory), FindingsRecordAction(stateDirectory: stateDirectory),
        ])
    }

}
