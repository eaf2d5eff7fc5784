import OCIRegistry
import Workflow

extension ActionCatalog {
    /// The built-in actions, using `registries` for the ones that reach registries.
    public static func standard(registries: Registries, stateDirectory: String? = nil) -> ActionCatalog {
        ActionCatalog([
            ReplicateAction(registries: registries, stateDirectory: stateDirectory),
            NoopAction(), ProcessAction(), WasmAction(), HTTPAction(), NotifyAction(), CopyAction(registries: registries),
            VerifyAction(registries: registries),
            PolicyEvalAction(registries: registries), SignAction(registries: registries), AttestAction(registries: registries),
            SBOMAction(registries: registries),
        ])
    }

}
