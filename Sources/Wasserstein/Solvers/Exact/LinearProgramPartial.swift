import CGLPK

extension LinearProgramSolver {
    /// Exact partial transport as GLPK's linear program, written directly with inequalities:
    ///
    ///     minimise sum_ij C_ij P_ij   subject to   P_ij >= 0,   sum_j P_ij <= a_i,   sum_i P_ij <= b_j,   sum_ij P_ij = mass.
    ///
    /// Why a second formulation: ``PartialTransport`` reduces the problem to a balanced one with
    /// dummy points; this one has no dummies and a general simplex, so agreement between the two
    /// checks the reduction itself. Small problems only (``maximumSize``).
    ///
    /// - Throws: ``WassersteinError/tooLarge(_:)`` beyond ``maximumSize``,
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for a mass outside
    ///   `[0, min(|a|, |b|)]` or non-finite costs, ``WassersteinError/solverFailure(_:)`` when
    ///   GLPK does not reach an optimum.
    public func solvePartial(costs: CostMatrix, sourceWeights a: [Double], targetWeights b: [Double],
                             mass: Double) throws -> PartialTransportResult {
        let n = costs.rows, m = costs.columns
        let (cells, overflow) = n.multipliedReportingOverflow(by: m)
        guard !overflow, cells <= maximumSize, cells <= Int(Int32.max) / 3 - 1 else {
            throw WassersteinError.tooLarge("the LP method with n * m = \(n) * \(m) variables exceeds its limit of \(maximumSize)")
        }
        try NetworkSimplexWorkspace.validateWeights(a, count: n, name: "source weights")
        try NetworkSimplexWorkspace.validateWeights(b, count: m, name: "target weights")
        let limit = min(a.reduce(0, +), b.reduce(0, +))
        guard mass.isFinite, mass >= 0, mass <= limit * (1 + PartialTransport.massTolerance) else {
            throw WassersteinError.invalidParameter(name: "partial mass", value: mass,
                                                    requirement: "must be in [0, min(total masses)] = [0, \(limit)]")
        }
        let target = min(mass, limit)
        return try glpkQueue.sync {
            glp_term_out(GLP_OFF)
            guard let lp = glp_create_prob() else { throw WassersteinError.solverFailure("GLPK could not create a problem") }
            defer { glp_delete_prob(lp) }
            glp_set_obj_dir(lp, GLP_MIN)
            glp_add_rows(lp, Int32(n + m + 1))
            glp_add_cols(lp, Int32(n * m))
            for i in 0 ..< n { glp_set_row_bnds(lp, Int32(i + 1), GLP_UP, 0, a[i]) }
            for j in 0 ..< m { glp_set_row_bnds(lp, Int32(n + j + 1), GLP_UP, 0, b[j]) }
            glp_set_row_bnds(lp, Int32(n + m + 1), GLP_FX, target, target)
            let count = 3 * n * m
            // GLPK arrays are 1-based; slot 0 is ignored.
            var ia = [Int32](repeating: 0, count: count + 1)
            var ja = [Int32](repeating: 0, count: count + 1)
            var ar = [Double](repeating: 1, count: count + 1)
            var k = 1
            for i in 0 ..< n {
                for j in 0 ..< m {
                    let column = Int32(i * m + j + 1)
                    let c = costs.values[i * m + j]
                    guard c.isFinite else {
                        throw WassersteinError.invalidParameter(name: "cost entry", value: c, requirement: "costs must be finite")
                    }
                    glp_set_col_bnds(lp, column, GLP_LO, 0, 0)
                    glp_set_obj_coef(lp, column, c)
                    for row in [Int32(i + 1), Int32(n + j + 1), Int32(n + m + 1)] {
                        ia[k] = row; ja[k] = column; k += 1
                    }
                }
            }
            Self.loadMatrix(lp, rows: &ia, columns: &ja, values: &ar, count: count)
            var parm = Self.simplexParameters(iterationLimit: iterationLimit)
            let code = glp_simplex(lp, &parm)
            guard code == 0, glp_get_status(lp) == GLP_OPT else {
                throw WassersteinError.solverFailure("GLPK ended without an optimum for the partial LP (code \(code))")
            }
            var entries = [TransportPlan.Entry]()
            var total = 0.0, moved = 0.0
            for i in 0 ..< n {
                for j in 0 ..< m {
                    let x = glp_get_col_prim(lp, Int32(i * m + j + 1))
                    if x > 0 {
                        entries.append(TransportPlan.Entry(source: i, target: j, mass: x))
                        total += x * costs.values[i * m + j]
                        moved += x
                    }
                }
            }
            return PartialTransportResult(cost: total, plan: TransportPlan(sourceCount: n, targetCount: m, entries: entries),
                                          transportedMass: moved, status: .optimal, iterations: Int(glp_get_it_cnt(lp)))
        }
    }
}
