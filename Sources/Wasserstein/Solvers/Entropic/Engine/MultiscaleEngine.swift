#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The a-posteriori check of a multiscale solve: how much the truncation could have hidden.
public struct TruncationCheck: Sendable, Equatable {
    /// An upper bound on the L1 distance between the marginals of the exact plan of the returned
    /// multiscale potentials and the truncated ones
    /// (`MultiscalePointCloudGeometry.truncationBound(f:g:logA:logB:epsilon:)`, package).
    public var bound: Double
    /// The most the check accepts: a tenth of the tolerance times the source mass (the driver ran
    /// to nine tenths of the tolerance, so the exact plan meets the tolerance when the check passes).
    public var limit: Double
    /// Whether the truncation could not have mattered: `bound <= limit`.
    public var passed: Bool { bound <= limit }
}

/// A solve on the multiscale geometry, checked, with the online fallback.
public struct MultiscaleOutput: Sendable {
    /// The accepted result: the multiscale one when the check passed (its ``EntropicOutput/marginalError``
    /// then includes the check's bound: it bounds the exact plan's error), otherwise the online
    /// geometry's, warm-started from the multiscale potentials (``EntropicOutput/geometry`` says which).
    public var output: EntropicOutput
    /// The check of the multiscale potentials.
    public var check: TruncationCheck
    /// Whether the online geometry produced ``output`` (the check failed).
    public var fellBack: Bool { !check.passed }
}

/// The Sinkhorn divergence on the multiscale geometry, with the check of each of its three solves.
public struct MultiscaleDivergenceOutput: Sendable {
    /// The divergence and its three solves (each multiscale or, after a failed check, online).
    public var divergence: EntropicDivergenceOutput
    /// The checks of the cross term and the two self terms, in that order.
    public var checks: [TruncationCheck]
}

extension EntropicEngine {
    /// `OT_eps(a, b)` on ``MultiscalePointCloudGeometry`` (cost `|x - y|^2`, `D <= 3`), checked a
    /// posteriori, and solved again on ``OnlinePointCloudGeometry`` from the multiscale potentials
    /// when the check fails.
    ///
    /// The driver runs to nine tenths of `parameters.tolerance`; the check accepts when the
    /// truncation can have changed the marginals by at most a tenth of it, so an accepted result
    /// meets the tolerance for the exact plan, not just the truncated one. GeomLoss's multiscale
    /// back end makes no such check.
    ///
    /// Why no epsilon stages here (``EntropicParameters/scaling`` is ignored): at the large eps of
    /// the first stages every term matters, so a stage costs as much as an online soft-min
    /// (`n m` pairs), more than the iterations it saves (the engine's measurements, section 2.1 of
    /// Docs/Benchmarks.md: 131 cross iterations without stages against 142 with them at
    /// `n = 2000`, eps = 0.0025).
    ///
    /// - Parameters:
    ///   - problem: the two clouds (`D <= 3`).
    ///   - parameters: epsilon, the tolerance and the iteration budget.
    ///   - truncation: `k`: terms below `exp(-k)` of their row's sum may be dropped.
    ///   - progress: receives the driver's reports (the truncated solve, then any fallback).
    /// - Throws: the geometry's (``WassersteinError/unsupported(_:)`` for `D > 3`), the problem's
    ///   and the driver's errors.
    public static func solveMultiscale(_ problem: TransportProblem, parameters: EntropicParameters,
                                       truncation: Double = MultiscalePointCloudGeometry.defaultTruncation,
                                       progress: EntropicProgressObserver? = nil) throws -> MultiscaleOutput {
        if problem.source == problem.target {
            return try solveSelfMultiscale(problem.source, parameters: parameters, truncation: truncation, progress: progress)
        }
        let geometry = try MultiscalePointCloudGeometry(source: problem.source, target: problem.target, truncation: truncation)
        return try checkedSolve(geometry: geometry, problem: .balanced(problem), parameters: parameters, progress: progress)
    }

    /// `OT_eps(a, a)` on the multiscale geometry, checked, with the online fallback.
    public static func solveSelfMultiscale(_ cloud: PointCloud, parameters: EntropicParameters,
                                           truncation: Double = MultiscalePointCloudGeometry.defaultTruncation,
                                           progress: EntropicProgressObserver? = nil) throws -> MultiscaleOutput {
        let geometry = try MultiscalePointCloudGeometry(source: cloud, target: cloud, truncation: truncation)
        return try checkedSolve(geometry: geometry, problem: .symmetric(a: cloud.weights), parameters: parameters,
                                progress: progress)
    }

    /// The Sinkhorn divergence, each of the three solves on the multiscale geometry and checked.
    public static func divergenceMultiscale(_ problem: TransportProblem, parameters: EntropicParameters,
                                            truncation: Double = MultiscalePointCloudGeometry.defaultTruncation,
                                            progress: EntropicProgressObserver? = nil) throws -> MultiscaleDivergenceOutput {
        let cross = try solveMultiscale(problem, parameters: parameters, truncation: truncation, progress: progress)
        let sourceSelf = try solveSelfMultiscale(problem.source, parameters: parameters, truncation: truncation, progress: progress)
        let targetSelf = try solveSelfMultiscale(problem.target, parameters: parameters, truncation: truncation, progress: progress)
        let divergence = EntropicDivergenceOutput(
            divergence: cross.output.regularizedCost - (sourceSelf.output.regularizedCost + targetSelf.output.regularizedCost) / 2,
            cross: cross.output, sourceSelf: sourceSelf.output, targetSelf: targetSelf.output)
        return MultiscaleDivergenceOutput(divergence: divergence, checks: [cross.check, sourceSelf.check, targetSelf.check])
    }

    static func checkedSolve(geometry: MultiscalePointCloudGeometry, problem: EntropicProblem,
                             parameters: EntropicParameters, progress: EntropicProgressObserver?) throws -> MultiscaleOutput {
        var inner = parameters
        inner.tolerance = 0.9 * parameters.tolerance
        inner.scaling = .none
        var driver = try EntropicSinkhorn(geometry: geometry, problem: problem, parameters: inner)
        driver.progress = progress
        var output = try driver.solve()
        let logA = problem.a.map { $0 > 0 ? log($0) : -Double.infinity }
        let logB = problem.b.map { $0 > 0 ? log($0) : -Double.infinity }
        let bound = output.f.withUnsafeBufferPointer { fb in
            output.g.withUnsafeBufferPointer { gb in
                logA.withUnsafeBufferPointer { ab in
                    logB.withUnsafeBufferPointer { bb in
                        geometry.truncationBound(f: fb, g: gb, logA: ab, logB: bb, epsilon: output.epsilon)
                    }
                }
            }
        }
        let tolerance = parameters.tolerance * problem.sourceMass
        let check = TruncationCheck(bound: bound, limit: 0.1 * tolerance)
        if check.passed {
            output.marginalError += bound
            output.converged = output.marginalError <= tolerance
            return MultiscaleOutput(output: output, check: check)
        }
        // The fallback: every pair, from where the truncated iteration got to.
        var online = try EntropicSinkhorn(geometry: geometry.online, problem: problem, parameters: parameters)
        online.progress = progress
        try online.warmStart(f: output.f, g: output.g)
        var exact = try online.solve()
        exact.iterations += output.iterations
        return MultiscaleOutput(output: exact, check: check)
    }
}
