import CGLPK
import Dispatch

/// GLPK keeps its environment (terminal hook, memory accounting) in library-global state; the
/// toolkit serialises every use of it so that concurrent solves from several threads are safe
/// whether or not the installed GLPK was built thread-local. (A serial queue rather than
/// `Synchronization.Mutex`, which needs macOS 15.)
let glpkQueue = DispatchQueue(label: "Wasserstein.GLPK")

/// Exact W2 as a linear program solved by GLPK's simplex method.
///
/// The transportation LP
///
///     minimise  sum_ij C_ij P_ij   subject to   P_ij >= 0,   sum_j P_ij = a_i,   sum_i P_ij = b_j
///
/// has `n m` variables and `n + m` equality rows. GLPK returns an optimal basic solution: the
/// plan (at most `n + m - 1` non-zeros) and the row duals, which are the potentials `f` (source
/// rows) and `g` (target rows) with `f_i + g_j <= C_ij` and `sum a f + sum b g = <P, C>`.
///
/// This path exists as an independent check of ``NetworkSimplexSolver`` and for users who
/// want a general LP code's answer; it is slow. A general simplex treats the `n m` columns as
/// a sparse matrix and factorises bases, where the network simplex walks a tree: expect
/// seconds at `n = m = 300` and minutes at `1000`. ``maximumSize`` refuses such problems up
/// front with ``WassersteinError/tooLarge(_:)`` so that callers can suggest the exact method.
///
/// GLPK calls `exit()` on invalid input, so every argument is validated in Swift before the
/// first GLPK call; GLPK's own failures (iteration or time limit, singular basis, no optimum)
/// become ``WassersteinError/solverFailure(_:)``. GLPK's terminal output is switched off.
public struct LinearProgramSolver: TransportSolver, Sendable {
    /// The default cap on `n * m` (the number of LP variables), about `n = m = 316`: GLPK's
    /// simplex time grows roughly like `n^3` (Docs/Benchmarks.md, a 2-core machine:
    /// 0.05 s at `n = m = 100`, 0.40 s at 200, 1.5 s at 300), so beyond this the exact
    /// network simplex, which answers in milliseconds, is the method to use.
    public static let recommendedMaximumSize = 100_000

    /// Problems with more than this many variables `n * m` throw ``WassersteinError/tooLarge(_:)``.
    public var maximumSize: Int
    /// GLPK's simplex iteration limit; `nil` for none.
    public var iterationLimit: Int?
    /// GLPK's time limit in seconds; `nil` for none.
    public var timeLimit: Double?

    /// Creates a solver.
    ///
    /// - Parameters:
    ///   - maximumSize: the largest accepted `n * m`.
    ///   - iterationLimit: GLPK simplex iteration limit, `nil` for none.
    ///   - timeLimit: GLPK time limit in seconds, `nil` for none.
    public init(maximumSize: Int = LinearProgramSolver.recommendedMaximumSize, iterationLimit: Int? = nil,
                timeLimit: Double? = nil) {
        self.maximumSize = maximumSize
        self.iterationLimit = iterationLimit
        self.timeLimit = timeLimit
    }

    /// Whether a problem with `n` sources and `m` targets is within ``maximumSize``.
    public func accepts(sourceCount n: Int, targetCount m: Int) -> Bool {
        let (cells, overflow) = n.multipliedReportingOverflow(by: m)
        return !overflow && cells <= maximumSize
    }

    /// Solves the problem.
    ///
    /// - Throws: ``WassersteinError/tooLarge(_:)`` beyond ``maximumSize``,
    ///   ``WassersteinError/solverFailure(_:)`` when GLPK does not reach an optimum.
    public func solve(_ problem: TransportProblem) throws -> TransportResult {
        try checkSize(problem.source.count, problem.target.count)
        let costs = try SquaredEuclideanCost.matrix(source: problem.source, target: problem.target)
        return try solve(costs: costs, sourceWeights: problem.source.weights, targetWeights: problem.target.weights)
    }

    /// Solves the transport LP for a given cost matrix and weights.
    ///
    /// - Parameters:
    ///   - costs: the `n x m` costs.
    ///   - a: the source weights, `n` finite non-negative values with positive sum.
    ///   - b: the target weights, `m` such values with the same sum to a relative `1e-9`. Both
    ///     sides are rescaled to mass one for GLPK, whose tolerances are absolute, and the
    ///     plan and cost scaled back to the source mass.
    /// - Throws: as ``solve(_:)``, plus ``WassersteinError`` for bad weights.
    public func solve(costs: CostMatrix, sourceWeights a: [Double], targetWeights b: [Double]) throws -> TransportResult {
        let n = costs.rows, m = costs.columns
        try checkSize(n, m)
        try NetworkSimplexWorkspace.validateWeights(a, count: n, name: "source weights")
        try NetworkSimplexWorkspace.validateWeights(b, count: m, name: "target weights")
        let ma = a.reduce(0, +), mb = b.reduce(0, +)
        guard abs(ma - mb) <= TransportProblem.massTolerance * max(ma, mb) else {
            throw WassersteinError.massMismatch(source: ma, target: mb)
        }
        for v in costs.values where !v.isFinite {
            throw WassersteinError.invalidParameter(name: "cost entry", value: v, requirement: "costs must be finite")
        }
        if let it = iterationLimit, !(it >= 1 && it <= Int(Int32.max)) {
            throw WassersteinError.invalidParameter(name: "iterationLimit", value: Double(it), requirement: "must be in 1 ... 2^31 - 1")
        }
        if let t = timeLimit, !(t > 0 && t * 1000 <= Double(Int32.max)) {
            throw WassersteinError.invalidParameter(name: "timeLimit", value: t, requirement: "must be positive and below 2^31 ms")
        }
        // GLPK's feasibility tolerances are absolute (1e-7): at mass 3e-12 it returned a plan
        // whose cost was 70% too high. So the LP is solved at mass one (each side divided by
        // its own mass, which also makes the two masses agree to rounding) and scaled back.
        let unitA = ma == 1 ? a : a.map { $0 / ma }
        let unitB = mb == 1 ? b : b.map { $0 / mb }
        let result = try glpkQueue.sync {
            try solveLocked(costs: costs, unitA, unitB)
        }
        return result.scalingMass(by: ma)
    }

    private func checkSize(_ n: Int, _ m: Int) throws {
        let (cells, overflow) = n.multipliedReportingOverflow(by: m)
        // GLPK indexes the 2nm constraint coefficients with a C int.
        guard !overflow, cells <= maximumSize, cells <= Int(Int32.max) / 2 - 1 else {
            throw WassersteinError.tooLarge(
                "the LP method with n * m = \(n) * \(m) variables exceeds its limit of \(maximumSize); use the exact method (network simplex)")
        }
    }

    /// Everything that touches GLPK. Inputs are validated: sizes within `Int32`, finite data.
    private func solveLocked(costs: CostMatrix, _ a: [Double], _ b: [Double]) throws -> TransportResult {
        let n = costs.rows, m = costs.columns
        glp_term_out(GLP_OFF)
        guard let lp = glp_create_prob() else { throw WassersteinError.solverFailure("GLPK could not create a problem") }
        defer { glp_delete_prob(lp) }
        glp_set_obj_dir(lp, GLP_MIN)
        glp_add_rows(lp, Int32(n + m))
        glp_add_cols(lp, Int32(n * m))
        for i in 0 ..< n { glp_set_row_bnds(lp, Int32(i + 1), GLP_FX, a[i], a[i]) }
        for j in 0 ..< m { glp_set_row_bnds(lp, Int32(n + j + 1), GLP_FX, b[j], b[j]) }
        let count = 2 * n * m
        // GLPK arrays are 1-based; slot 0 is ignored.
        var ia = [Int32](repeating: 0, count: count + 1)
        var ja = [Int32](repeating: 0, count: count + 1)
        var ar = [Double](repeating: 1, count: count + 1)
        var k = 1
        for i in 0 ..< n {
            for j in 0 ..< m {
                let column = Int32(i * m + j + 1)
                glp_set_col_bnds(lp, column, GLP_LO, 0, 0)
                glp_set_obj_coef(lp, column, costs.values[i * m + j])
                ia[k] = Int32(i + 1); ja[k] = column; k += 1
                ia[k] = Int32(n + j + 1); ja[k] = column; k += 1
            }
        }
        Self.loadMatrix(lp, rows: &ia, columns: &ja, values: &ar, count: count)
        var parm = Self.simplexParameters(iterationLimit: iterationLimit)
        parm.meth = GLP_PRIMAL
        if let t = timeLimit { parm.tm_lim = Int32(clamping: Int(clamping: (t * 1000).rounded(.up), to: 0 ... Int(Int32.max))) }
        // A crash basis from the constraint structure; the all-slack start is valid too but slower.
        glp_adv_basis(lp, 0)
        let code = glp_simplex(lp, &parm)
        guard code == 0 else { throw WassersteinError.solverFailure("GLPK simplex returned \(Self.describe(code))") }
        let status = glp_get_status(lp)
        guard status == GLP_OPT else {
            throw WassersteinError.solverFailure("GLPK ended without an optimum (status \(status))")
        }
        var entries = [TransportPlan.Entry]()
        var total = 0.0
        for i in 0 ..< n {
            for j in 0 ..< m {
                let x = glp_get_col_prim(lp, Int32(i * m + j + 1))
                if x > 0 {
                    entries.append(TransportPlan.Entry(source: i, target: j, mass: x))
                    total += x * costs.values[i * m + j]
                }
            }
        }
        var f = [Double](repeating: 0, count: n), g = [Double](repeating: 0, count: m)
        for i in 0 ..< n { f[i] = glp_get_row_dual(lp, Int32(i + 1)) }
        for j in 0 ..< m { g[j] = glp_get_row_dual(lp, Int32(n + j + 1)) }
        let iterations = Int(glp_get_it_cnt(lp))
        return TransportResult(method: .lp, status: .optimal, cost: total,
                               plan: TransportPlan(sourceCount: n, targetCount: m, entries: entries),
                               potentials: DualPotentials(f: f, g: g), iterations: iterations)
    }

    /// Loads the 1-based triplets `(rows[k], columns[k], values[k])`, `k = 1 ... count`, as the
    /// constraint matrix of `lp` (slot 0 is GLPK's and ignored).
    static func loadMatrix(_ lp: OpaquePointer, rows ia: inout [Int32], columns ja: inout [Int32],
                           values ar: inout [Double], count: Int) {
        ar[0] = 0
        ia.withUnsafeMutableBufferPointer { ip in
            ja.withUnsafeMutableBufferPointer { jp in
                ar.withUnsafeMutableBufferPointer { rp in
                    glp_load_matrix(lp, Int32(count), ip.baseAddress!, jp.baseAddress!, rp.baseAddress!)
                }
            }
        }
    }

    /// The simplex settings of every LP here: silent, no presolve (the problems are already
    /// tight), and the iteration cap when one is set (clamped to GLPK's `Int32`).
    static func simplexParameters(iterationLimit: Int?) -> glp_smcp {
        var parm = glp_smcp()
        glp_init_smcp(&parm)
        parm.msg_lev = GLP_MSG_OFF
        parm.presolve = GLP_OFF
        if let it = iterationLimit { parm.it_lim = Int32(clamping: it) }
        return parm
    }

    private static func describe(_ code: Int32) -> String {
        switch code {
        case GLP_EBADB: return "an invalid initial basis (GLP_EBADB)"
        case GLP_ESING: return "a singular basis matrix (GLP_ESING)"
        case GLP_ECOND: return "an ill-conditioned basis matrix (GLP_ECOND)"
        case GLP_EBOUND: return "invalid bounds (GLP_EBOUND)"
        case GLP_EFAIL: return "a solver failure (GLP_EFAIL)"
        case GLP_EITLIM: return "its iteration limit (GLP_EITLIM)"
        case GLP_ETMLIM: return "its time limit (GLP_ETMLIM)"
        case GLP_ENOPFS: return "no primal feasible solution (GLP_ENOPFS)"
        case GLP_ENODFS: return "no dual feasible solution (GLP_ENODFS)"
        default: return "error code \(code)"
        }
    }
}
