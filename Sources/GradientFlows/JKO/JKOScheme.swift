import Wasserstein

/// A JKO scheme: one proximal step `rho_{k+1} = argmin F(rho) + W2^2(rho, rho_k) / (2 tau)` at a
/// time, on its own representation of the law.
///
/// Why a protocol: the run loop (initial report, steps, annotations, progress) is the same for
/// particles (``ParticleJKO``, any dimension) and grid densities (``GridJKO``, `D <= 3`);
/// ``JKORunner`` runs every scheme through one generic loop, and a new discretisation only has
/// to say how it reports a state and how it steps.
public protocol JKOScheme {
    /// The discrete law the scheme moves: a `PointCloud` of particles or a ``GridDensity``.
    associatedtype State

    /// The step `tau > 0`.
    var tau: Double { get }

    /// The report of a state before any step (step 0, time 0): energy, moments.
    func initialReport(_ state: State) -> JKOStepReport

    /// One proximal step from `state`; `index` is the step number `k >= 1` (time `k tau`).
    mutating func advance(from state: State, index: Int) throws -> (state: State, report: JKOStepReport)
}

extension ParticleJKO: JKOScheme {
    public mutating func advance(from state: PointCloud, index: Int) throws -> (state: PointCloud, report: JKOStepReport) {
        let step = try step(from: state, index: index)
        return (step.particles, step.report)
    }
}

extension GridJKO: JKOScheme {
    public mutating func advance(from state: GridDensity, index: Int) throws -> (state: GridDensity, report: JKOStepReport) {
        let step = try step(from: state, index: index)
        return (step.density, step.report)
    }
}
