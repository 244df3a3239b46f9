import GradientFlows

/// The case of a ``GradientFlowsError`` as a short label, to check which case a call throws
/// without copying its message: `invalidParameter(tau)`, `dimensionMismatch`, `unsupported`,
/// `solverFailure`, `tooLarge`; `nil` for any other error.
func flowsErrorCase(_ error: any Error) -> String? {
    switch error as? GradientFlowsError {
    case .invalidParameter(let name, _, _): return "invalidParameter(\(name))"
    case .dimensionMismatch: return "dimensionMismatch"
    case .unsupported: return "unsupported"
    case .solverFailure: return "solverFailure"
    case .tooLarge: return "tooLarge"
    case nil: return nil
    }
}
