import Foundation
import Testing
@testable import Experiments
import GradientFlows
import MeanField
import Wasserstein

/// The one method vocabulary (library and command line) and the translation of library words
/// into spec keys and options, which happens in Experiments only.
@Suite("One vocabulary: methods, plan switch, errors per layer")
struct VocabularyTests {
    static let mu = try! PointCloud(points: [[0, 0], [1, 0], [0.5, 1]])
    static let nu = try! PointCloud(points: [[1, 1], [2, 1]], weights: [0.25, 0.75])

    @Test("Every --method name is a case of TransportMethod with the same name; unknown names are usage errors")
    func methodTable() throws {
        #expect(MethodNames.names == ["auto", "exact", "lp", "sorted", "gaussian", "sinkhorn"])
        for name in MethodNames.names {
            #expect(try MethodNames.method(named: name, epsilon: 0.1).name == name)
        }
        #expect(try MethodNames.method(named: "sinkhorn", epsilon: 0.25).epsilon == 0.25)
        #expect(MethodNames.solverLabel(.exact) == "network_simplex" && MethodNames.solverLabel(.lp) == "glpk")
        #expect(MethodNames.solverLabel(.sinkhorn(epsilon: 1)) == "sinkhorn")
        do {
            _ = try MethodNames.method(named: "fast")
            Issue.record("an unknown method was accepted")
        } catch let error as ExperimentError {
            guard case .invalidList(let option, _) = error else { Issue.record("\(error)"); return }
            #expect(option == "--method" && error.isUsageError)
        }
    }

    // 7/3 by hand (GuideSampleTests 4.1): x_0 = (0,0) alone feeds y_0.
    @Test("wasserstein2 runs every method of the table on two clouds; exact ones give the hand value")
    func oneCallEveryMethod() throws {
        for name in ["auto", "exact", "lp"] {
            let r = try wasserstein2(Self.mu, Self.nu, method: MethodNames.method(named: name))
            #expect(abs(r.cost - 7.0 / 3.0) < 1e-12, "\(name)")
            #expect(r.plan == nil && r.potentials != nil && r.converged, "\(name): no plan unless asked")
        }
        // Bures between the moment-matched Gaussians: 1-D, equal means 1.5, variances 5/4 and 2/3.
        let a = [0.0, 1, 2, 3], b = [0.5, 1.5, 2.5]
        let bures = try wasserstein2(a, b, method: .gaussian)
        let expected = (1.25.squareRoot() - (2.0 / 3).squareRoot()) * (1.25.squareRoot() - (2.0 / 3).squareRoot())
        #expect(bures.method == .gaussian && abs(bures.cost - expected) < 1e-12)
        // Sorted: every piece of mass moves by 1/2.
        let sorted = try wasserstein2(a, b, method: .sorted)
        #expect(sorted.method == .sorted && abs(sorted.cost - 0.25) < 1e-14)
        // Arrays with a dimension are the clouds they describe.
        let fromArrays = try wasserstein2([0, 0, 1, 0, 0.5, 1], [1, 1, 2, 1, 1.5, 1], dimension: 2)
        let fromClouds = try wasserstein2(PointCloud(coordinates: [0, 0, 1, 0, 0.5, 1], dimension: 2),
                                          PointCloud(coordinates: [1, 1, 2, 1, 1.5, 1], dimension: 2))
        #expect(fromArrays.cost == fromClouds.cost && fromArrays.method == .exact)
        #expect(throws: WassersteinError.self) { try wasserstein2([0, 1, 2], [1, 2], dimension: 2) }
    }

    // Shifting the source by v adds 2 <v, x_i - y_j> + |v|^2 to C_ij, separable in i and j: the
    // entropic plan is unchanged and <P, C> grows by 2 <v, mean(x) - mean(y)> + |v|^2 exactly.
    @Test("Sinkhorn in one call: translation law of the transport cost, the debiased W(mu, mu) = 0, dense = online")
    func sinkhornOneCall() throws {
        let x = try PointCloud(coordinates: (0 ..< 40).map { Double(($0 * 37) % 23) / 23 }, dimension: 2)
        let y = try PointCloud(coordinates: (0 ..< 40).map { Double(($0 * 17) % 29) / 29 + 0.3 }, dimension: 2)
        let v = [0.7, -0.4]
        let method = TransportMethod.sinkhorn(epsilon: 0.05, options: SinkhornOptions(tolerance: 1e-12, divergence: true))
        let base = try wasserstein2(x, y, method: method)
        let moved = try wasserstein2(x.translated(by: v), y, method: method)
        let mx = x.mean, my = y.mean
        let shift = 2 * (v[0] * (mx[0] - my[0]) + v[1] * (mx[1] - my[1])) + v[0] * v[0] + v[1] * v[1]
        #expect(base.converged && moved.converged && base.method == method)
        #expect(abs(moved.cost - (base.cost + shift)) < 1e-9)
        let selfDivergence = try wasserstein2(x, x, method: method).entropic?.divergence
        #expect(selfDivergence != nil && abs(selfDivergence!) < 1e-10)
        var online = SinkhornOptions(tolerance: 1e-12, geometry: .online)
        let onlineResult = try wasserstein2(x, y, method: .sinkhorn(epsilon: 0.05, options: online))
        online.geometry = .dense
        let denseResult = try wasserstein2(x, y, method: .sinkhorn(epsilon: 0.05, options: online))
        #expect(onlineResult.entropic?.geometry == .online && denseResult.entropic?.geometry == .dense)
        #expect(abs(onlineResult.cost - denseResult.cost) <= 1e-9 * denseResult.cost)
        #expect(abs(base.cost - denseResult.cost) <= 1e-9 * denseResult.cost)
    }

    @Test("One plan switch: none, sparse (entries above the threshold, bounded dropped mass), full")
    func planSwitch() throws {
        let problem = try TransportProblem(source: Self.mu, target: Self.nu)
        let sinkhorn = TransportMethod.sinkhorn(epsilon: 0.5, options: SinkhornOptions(tolerance: 1e-12))
        let full = try wasserstein2(problem, method: sinkhorn, planOutput: .full)
        let threshold = 0.01
        let sparse = try wasserstein2(problem, method: sinkhorn, planOutput: .sparse(minimumMass: threshold))
        let fullPlan = try #require(full.plan), sparsePlan = try #require(sparse.plan)
        #expect(fullPlan.entries.count == 6)
        #expect(sparsePlan.entries.allSatisfy { $0.mass >= threshold })
        let dropped = fullPlan.entries.reduce(0) { $0 + $1.mass } - sparsePlan.entries.reduce(0) { $0 + $1.mass }
        #expect(dropped >= 0 && dropped <= 6 * threshold)
        #expect(try wasserstein2(problem, method: sinkhorn).plan == nil)
        #expect(try SortedSolver(planOutput: .none).solve(TransportProblem(source: PointCloud(values: [0, 1]), target: PointCloud(values: [2, 3]))).plan == nil)
        #expect(throws: WassersteinError.self) { try wasserstein2(problem, planOutput: .sparse(minimumMass: -1)) }
    }

    // The Sinkhorn gradient comes from the potentials (rows rebuilt); here it is checked against
    // 2 sum_j P_ij (x_i - y_j) summed by hand over the returned full plan.
    @Test("One source gradient: a Sinkhorn result's gradient equals the plan formula summed by hand")
    func oneSourceGradient() throws {
        let problem = try TransportProblem(source: Self.mu, target: Self.nu)
        let result = try wasserstein2(problem, method: .sinkhorn(epsilon: 0.3, options: SinkhornOptions(tolerance: 1e-12)),
                                      planOutput: .full)
        let gradient = try result.sourceGradient(problem: problem)
        var byHand = [Double](repeating: 0, count: 6)
        for e in try #require(result.plan).entries {
            for k in 0 ..< 2 {
                byHand[e.source * 2 + k] += 2 * e.mass * (Self.mu.coordinates[e.source * 2 + k] - Self.nu.coordinates[e.target * 2 + k])
            }
        }
        for (g, h) in zip(gradient, byHand) { #expect(abs(g - h) < 1e-12) }
        #expect(throws: WassersteinError.self) { try wasserstein2(problem).sourceGradient(problem: problem) }
    }

    /// The mean-field parameters and the spec keys the command line names for them (the keys
    /// the errors named before the library spoke its own words).
    static let specKeys: [(MeanFieldParameter, String)] = [
        (.stepSize, "sgd.eta"), (.noise, "sgd.noise"), (.inverseTemperature, "energy.beta"),
        (.weightDecay, "energy.lambda"), (.particleCount, "particles"), (.horizon, "horizon"),
        (.recordInterval, "record_every"), (.firstLayerSpread, "initialization.w.std"),
        (.secondLayerSpread, "initialization.a.std"), (.firstLayerMean, "initialization.w.mean"),
        (.teacherCoefficients, "teacher.coefficients"), (.trainingSamples, "sgd.samples"),
        (.initialParticles, "initial_particles"), (.quadratureNodes, "quadrature_nodes"),
        (.inputDimension, "model.input_dimension"), (.radialSpread, "initialization.w.std"),
    ]

    @Test("Experiments maps library parameters to spec keys; the command line's message is the spec's")
    func meanFieldErrorsInSpecWords() throws {
        for (parameter, key) in Self.specKeys { #expect(SpecKeys.key(for: parameter) == key) }
        #expect(SpecKeys.key(for: .direction) == nil)
        let error = MeanFieldError.invalidSetting(parameter: .stepSize, value: "-2.0", requirement: "must be > 0 and finite")
        #expect(error.description == "invalid step size eta = -2.0: must be > 0 and finite")
        #expect(SpecKeys.message(for: error) == "invalid sgd.eta = -2.0: must be > 0 and finite")
        // A library-only parameter keeps its library name.
        let array = MeanFieldError.lengthMismatch(parameter: .direction, expected: 3, actual: 2)
        #expect(SpecKeys.message(for: array) == "invalid direction: expected 3 values, got 2")
        // The Wasserstein layer names its remedy; the command line adds the option.
        let mass = WassersteinError.massMismatch(source: 1, target: 2)
        #expect(!mass.description.contains("--") && SpecKeys.message(for: mass).hasSuffix("(--normalize at the command line)"))
    }

    @Test("Spec names of the library's enums parse in Experiments; unknown names name their key")
    func specNames() throws {
        #expect(try Activation(specName: "ReLU").description == "relu")
        #expect(try SecondLayer(specName: "fixed") == .fixed)
        #expect(try InputDistribution(specName: "sphere") == .sphere)
        #expect(try SGDKind(specName: "multipass", samples: 10) == .multipass(samples: 10))
        func key(_ f: () throws -> Void) -> String? {
            do { try f(); return nil } catch ExperimentError.invalidSpec(let key, _) { return key } catch { return "?" }
        }
        #expect(key { _ = try Activation(specName: "gelu") } == "model.activation")
        #expect(key { _ = try SecondLayer(specName: "frozen") } == "model.second_layer")
        #expect(key { _ = try InputDistribution(specName: "cube") } == "model.inputs")
        #expect(key { _ = try SGDKind(specName: "batch") } == "sgd.kind")
        #expect(key { _ = try SGDKind(specName: "multipass") } == "sgd.samples")
        #expect(key { _ = try SGDKind(specName: "multipass", samples: 0) } == "sgd.samples")
    }

    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")

    /// The string literals of a Swift source, comments skipped (line-based: enough for this tree).
    static func stringLiterals(_ text: String) -> [String] {
        var out: [String] = []
        for line in text.split(separator: "\n") {
            let code = line.trimmingCharacters(in: .whitespaces)
            if code.hasPrefix("//") { continue }
            let parts = code.split(separator: "\"", omittingEmptySubsequences: false)
            for k in stride(from: 1, to: parts.count, by: 2) {
                // Interpolated code (`\\(sgd.eta)` reads a property) is not text of the message.
                out.append(String(parts[k]).replacingOccurrences(of: #"\\\((?:[^()]|\([^()]*\))*\)"#, with: "",
                                                                 options: .regularExpression))
            }
        }
        return out
    }

    @Test("No spec key and no command-line option in the string literals of Wasserstein, GradientFlows and MeanField")
    func noSpecWordsBelowExperiments() throws {
        // Keys with a dot or an underscore cannot be ordinary words ("horizon", "grid" can).
        let keys = Set(SpecKeys.meanField.values.filter { $0.contains(".") || $0.contains("_") })
            .union(["model.activation", "model.second_layer", "model.inputs", "sgd.kind"])
        #expect(Self.stringLiterals("a \"sgd.eta\" b \"--normalize \\(x.y)\"\n// \"sgd.kind\"") == ["sgd.eta", "--normalize "])
        var offences: [String] = []
        for module in ["Wasserstein", "GradientFlows", "MeanField"] {
            let root = Self.sources.appendingPathComponent(module).path
            let names = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".swift") }
            #expect(!names.isEmpty, "no sources under \(root)")
            for name in names {
                let text = try String(contentsOfFile: root + "/" + name, encoding: .utf8)
                for literal in Self.stringLiterals(text) {
                    if keys.contains(where: { literal.contains($0) }) || literal.range(of: "--[a-z]", options: .regularExpression) != nil {
                        offences.append("\(module)/\(name): \"\(literal)\"")
                    }
                }
            }
        }
        #expect(offences.isEmpty, "\(offences)")
    }
}
