#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the relaxation factor is chosen.
internal enum RelaxationRule {
    case plain
    case fixed(Double)
    case adaptive
}

/// The adaptive over-relaxation controller (see the notes at the top of SinkhornCore.swift).
///
/// It watches the marginal error over windows of iterations. The rate rho seen at factor w
/// gives, by Young's relation, the rate theta of plain Sinkhorn, and from it the optimal
/// factor w* = 2 / (1 + sqrt(1 - theta)). Early windows underestimate theta (fast modes are
/// still decaying), so the factor only moves up on that evidence; it moves down (halving
/// w - 1) only when two windows in a row fail to contract, which also absorbs the transient
/// growth that follows every increase of w.
internal struct RelaxationController {
    private(set) var omega: Double
    let adaptive: Bool
    /// The largest factor used; 2 is the limit of convergence.
    let maximum = 1.95
    /// Iterations per rate estimate, and iterations skipped after a change of the factor.
    let window = 10
    let settleAfterChange = 6
    private var settle = 4
    private var windowStart: Double?
    private var windowCount = 0
    private var failures = 0
    private var theta = 0.0
    /// Iterations since the factor last changed (for callers that need a steady regime).
    private(set) var steadyIterations = 0

    /// The controller of an engine loop for the parameters' relaxation, from a plain start.
    init(_ relaxation: EntropicParameters.Relaxation) {
        switch relaxation {
        case .none: self.init(rule: .plain, hint: 1)
        case .fixed(let w): self.init(rule: .fixed(w), hint: 1)
        case .adaptive: self.init(rule: .adaptive, hint: 1)
        }
    }

    init(rule: RelaxationRule, hint: Double) {
        switch rule {
        case .plain:
            omega = 1
            adaptive = false
        case .fixed(let w):
            omega = w
            adaptive = false
        case .adaptive:
            omega = Swift.min(Swift.max(1, hint), maximum)
            adaptive = true
        }
    }

    /// Feeds the marginal error of the latest iterate.
    mutating func observe(_ error: Double) {
        steadyIterations += 1
        guard adaptive, error.isFinite, error > 0 else { return }
        if settle > 0 {
            settle -= 1
            return
        }
        guard let start = windowStart else {
            windowStart = error
            windowCount = 0
            return
        }
        windowCount += 1
        guard windowCount >= window else { return }
        let rho = pow(error / start, 1 / Double(windowCount))
        windowStart = error
        windowCount = 0
        if !(rho < 0.999) {
            failures += 1
            if failures >= 2 {
                change(to: omega - 1 < 0.05 ? 1 : 1 + (omega - 1) / 2)
                failures = 0
            }
            return
        }
        failures = 0
        let w = omega
        let implied = Swift.min(0.999_999, (rho + w - 1) * (rho + w - 1) / (rho * w * w))
        guard implied > theta else { return }
        theta = implied
        let target = Swift.min(maximum, Swift.max(1, 2 / (1 + (1 - theta).squareRoot())))
        if target > omega + 0.01 { change(to: target) }
    }

    /// Back to plain Sinkhorn with a fresh estimate, after another method changed the iterate:
    /// a large factor applied to a new starting point first amplifies its error (the
    /// transient of a non-normal iteration) before the asymptotic rate takes over.
    mutating func restart() {
        guard adaptive else { return }
        theta = 0
        failures = 0
        change(to: 1)
    }

    private mutating func change(to newOmega: Double) {
        omega = newOmega
        settle = settleAfterChange
        windowStart = nil
        steadyIterations = 0
    }
}

/// Stops an iteration that sits at the precision floor: no halving of the best error for 500
/// iterations while that error is below the (pessimistic) floor estimate. Far above the floor
/// nothing is ever declared stalled, so slow but genuine convergence runs to the cap.
internal struct StagnationWatch {
    let floor: Double
    private var best = Double.infinity
    private var sinceImprovement = 0

    init(floor: Double) { self.floor = floor }

    mutating func stalled(after error: Double) -> Bool {
        guard error.isFinite else { return false }
        if error < 0.5 * best {
            best = error
            sinceImprovement = 0
            return false
        }
        sinceImprovement += 1
        return sinceImprovement >= 500 && best <= floor
    }
}
