import Hummingbird
import JWTKit
import Prometheus

/// The control plane's HTTP server (`warden serve`).
public enum ControlPlane {}
