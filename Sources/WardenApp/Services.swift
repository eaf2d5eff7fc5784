import Foundation
import Logging
import ServiceLifecycle
import Storage
import Synchronization
import Workflow

/// Drives runs as a long-running part of a process (`warden run`, `warden runs resume`; `warden serve` later): a
/// swift-service-lifecycle `Service`. On graceful shutdown (SIGTERM or SIGINT through the `ServiceGroup`) driving
/// stops at the next transition: everything done is in the journal, the run is released, and `warden runs resume`
/// (or another process) continues it — attempts that were in flight run again under a new attempt number.
public final class RunDriverService: Service, Sendable {
    public enum Target: Sendable {
        /// These runs, one after the other.
        case runs([String])
        /// Every unfinished run no live process drives, together.
        case unfinished
    }

    let engine: WorkflowEngine
    let target: Target
    let logger: Logger
    let state = Mutex<(finished: [RunRecord], interrupted: Bool)>(([], false))

    public init(engine: WorkflowEngine, target: Target, logger: Logger = Logger(label: "warden.runs")) {
        self.engine = engine
        self.target = target
        self.logger = logger
    }

    /// The runs driven to their end.
    public var finished: [RunRecord] { state.withLock { $0.finished } }
    /// True when a graceful shutdown stopped the driving before every run ended.
    public var interrupted: Bool { state.withLock { $0.interrupted } }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                switch self.target {
                case .unfinished:
                    let done = try await self.engine.resumeAll()
                    self.state.withLock { $0.finished += done }
                case .runs(let ids):
                    for id in ids {
                        let done = try await self.engine.drive(id)
                        self.state.withLock { $0.finished.append(done) }
                    }
                }
            }
        } catch  where Task.isShuttingDownGracefully {
            state.withLock { $0.interrupted = true }
            logger.notice("shutting down: runs stop at their last journal entry", metadata: ["error": "\(error)"])
        }
    }
}

/// The standalone callback listener of the http runtime as a `Service`: it listens (from first use) until the
/// group shuts down.
public struct CallbackListenerService: Service {
    public let listener: StandaloneCallbackListener
    public init(listener: StandaloneCallbackListener) { self.listener = listener }

    public func run() async throws {
        try? await gracefulShutdown()
        await listener.close()
    }
}

extension RunsJob {
    /// Drives `target` with the callback listener alongside, as one service group that shuts down gracefully on
    /// SIGTERM and SIGINT and when the driving is done. Returns the driver service (its runs, and whether a signal
    /// interrupted it).
    public static func drive(
        _ target: RunDriverService.Target, engine: WorkflowEngine, listener: StandaloneCallbackListener?, logger: Logger
    ) async throws -> RunDriverService {
        let driver = RunDriverService(engine: engine, target: target, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: driver, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let listener { services.append(.init(service: CallbackListenerService(listener: listener))) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        return driver
    }
}
