import Wasserstein

/// The command line's words for the library's ``TransportMethod``: the one table from
/// `--method` values to methods, and from the method that ran to the `solver` label of the JSON
/// output. The command line adds no methods of its own: each name is a case of the library enum.
public enum MethodNames {
    /// One row per `--method` value: the name, the method (Sinkhorn takes its epsilon and
    /// options from the entropic options), and the label of the algorithm under `solver`.
    private static let table: [(name: String, method: @Sendable (Double, SinkhornOptions) -> TransportMethod, solver: String)] = [
        ("auto", { _, _ in .auto }, "auto"),
        ("exact", { _, _ in .exact }, "network_simplex"),
        ("lp", { _, _ in .lp }, "glpk"),
        ("sorted", { _, _ in .sorted }, "sorted"),
        ("gaussian", { _, _ in .gaussian }, "gaussian"),
        ("sinkhorn", { epsilon, options in .sinkhorn(epsilon: epsilon, options: options) }, "sinkhorn"),
    ]

    /// The `--method` values, in the order of the help text.
    public static var names: [String] { table.map(\.name) }

    /// Whether `name` needs the entropic options (`--epsilon`).
    public static func isEntropic(_ name: String) -> Bool { name == "sinkhorn" }

    /// The method a `--method` value names.
    ///
    /// - Parameters:
    ///   - name: the option's value.
    ///   - epsilon: `--epsilon` (used by `sinkhorn` only).
    ///   - options: the other entropic options.
    /// - Throws: ``ExperimentError/invalidList(option:reason:)`` for an unknown name.
    public static func method(named name: String, epsilon: Double = 0, options: SinkhornOptions = SinkhornOptions()) throws -> TransportMethod {
        guard let row = table.first(where: { $0.name == name }) else {
            throw ExperimentError.invalidList(option: "--method", reason: "unknown method '\(MessageText.excerpt(name))' (expected \(names.joined(separator: ", ")))")
        }
        return row.method(epsilon, options)
    }

    /// The JSON `solver` label of the algorithm that ran (`network_simplex` for the exact method
    /// in `D >= 2`, `glpk` for the LP).
    public static func solverLabel(_ method: TransportMethod) -> String {
        table.first(where: { $0.name == method.name })?.solver ?? method.name
    }
}
