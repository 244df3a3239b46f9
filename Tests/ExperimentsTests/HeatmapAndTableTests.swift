import Foundation
import Testing
import GradientFlows
import MeanField
import Wasserstein
@testable import Experiments

@Suite("Heat maps and tabulated mean-field energies")
struct HeatmapAndTableTests {
    @Test("Heat maps are well-formed XML with one rect per finite cell and the colour scale they claim")
    func heatmap() throws {
        let xs = [0.0, 0.5, 1.0], ys = [-1.0, 0.0, 1.0, 2.0]
        var values = (0 ..< 12).map { Double($0) / 11 }
        values[5] = .nan  // not drawn
        let chart = HeatmapChart(title: "density <rho> & co", xLabel: "w_1", yLabel: "w_2", xCenters: xs, yCenters: ys,
                                 values: values, valueRange: (0, 2), markers: [(1, 0, "w*")])
        let svg = try #require(SVGInspector.inspect(chart.svg()))
        let group = try #require(svg.elements.first { $0.attributes["data-heatmap"] != nil })
        #expect(group.attributes["data-columns"] == "3")
        #expect(group.attributes["data-rows"] == "4")
        #expect(group.attributes["data-cells"] == "11")
        #expect(group.attributes["data-min"] == "0.0" && group.attributes["data-max"] == "2.0")
        let cells = svg.elements.filter { $0.name == "rect" && $0.attributes["data-value"] != nil }
        #expect(cells.count == 11)
        // The cell values round-trip, in x-major order with the NaN left out.
        let drawn = cells.compactMap { Double($0.attributes["data-value"]!) }
        #expect(drawn == values.filter(\.isFinite))
        #expect(svg.elements.contains { $0.attributes["data-marker"] == "w*" })
        // Without a range the scale is the data's.
        let auto = try #require(SVGInspector.inspect(HeatmapChart(title: "t", xLabel: "x", yLabel: "y", xCenters: xs, yCenters: ys,
                                                                  values: (0 ..< 12).map(Double.init)).svg()))
        let g = try #require(auto.elements.first { $0.attributes["data-heatmap"] != nil })
        #expect(g.attributes["data-min"] == "0.0" && g.attributes["data-max"] == "11.0")
    }

    @Test("The colour scale runs from the first anchor to the last and clamps outside [0, 1]")
    func palette() {
        #expect(HeatmapPalette.color(0) == "#440154")
        #expect(HeatmapPalette.color(1) == "#fde725")
        #expect(HeatmapPalette.color(-3) == HeatmapPalette.color(0))
        #expect(HeatmapPalette.color(7) == HeatmapPalette.color(1))
        #expect(HeatmapPalette.color(.nan) == HeatmapPalette.color(0))
    }

    /// The table holds the same kernel values as the O(N^2) evaluation of MeanFieldEnergy, so
    /// the two agree to rounding: 1e-12 relative to the size of the terms.
    @Test("The tabulated energy equals MeanFieldEnergy on its grid and falls back to it elsewhere",
          arguments: [(1, SecondLayer.trained), (2, SecondLayer.fixed)])
    func tabulated(d: Int, layer: SecondLayer) throws {
        let model = try NetworkModel(activation: .relu, inputDimension: d, secondLayer: layer)
        let direction = d == 1 ? [1.0] : [1.0, 0.0]
        let risk = try PopulationRisk(model: model, teacher: .singleNeuron(direction))
        let base = try MeanFieldEnergy(risk: risk, weightDecay: 0.3)
        let grid = try RegularGrid(dimension: 2, lower: -2, upper: 2, pointsPerAxis: 12)
        let points = grid.points
        let table = try TabulatedMeanFieldEnergy(energy: base, points: points)
        let density = try NormalLaw(mean: [0.4, -0.2], standardDeviation: [0.7, 0.5]).discretized(on: grid)
        let n = grid.count
        func evaluate(_ e: any Energy, _ x: [Double], _ w: [Double], gradient: Bool) -> (Double, [Double], [Double]) {
            var psi = [Double](repeating: 0, count: w.count), grad = [Double](repeating: 0, count: x.count)
            let v = e.value(points: x.span, weights: w.span)
            do {
                var pp: MutableSpan<Double>? = psi.mutableSpan, gp: MutableSpan<Double>? = nil
                if gradient { gp = grad.mutableSpan }
                e.firstVariation(points: x.span, weights: w.span, potential: &pp, gradient: &gp)
            }
            return (v, psi, grad)
        }
        let (v0, psi0, _) = evaluate(base, points, density.masses, gradient: false)
        let (v1, psi1, _) = evaluate(table, points, density.masses, gradient: false)
        let scale = max(1, psi0.map(abs).max()!)
        #expect(abs(v0 - v1) <= 1e-12 * scale)
        for i in 0 ..< n { #expect(abs(psi0[i] - psi1[i]) <= 1e-12 * scale) }
        // An independent value: R from the risk's own formula plus the weight decay by hand.
        var decay = 0.0
        for i in 0 ..< n {
            let x = points[2 * i], y = points[2 * i + 1]
            decay += density.masses[i] * (x * x + y * y)
        }
        #expect(abs(v1 - (risk.risk(points: points, weights: density.masses) + 0.15 * decay)) <= 1e-12 * scale)
        // Gradients and other point sets go to the wrapped energy: identical results.
        let (_, psiG0, g0) = evaluate(base, points, density.masses, gradient: true)
        let (_, psiG1, g1) = evaluate(table, points, density.masses, gradient: true)
        #expect(psiG0 == psiG1 && g0 == g1)
        let shifted = points.map { $0 + 0.01 }
        let (vs0, ps0, _) = evaluate(base, shifted, density.masses, gradient: false)
        let (vs1, ps1, _) = evaluate(table, shifted, density.masses, gradient: false)
        #expect(vs0 == vs1 && ps0 == ps1)
    }

    @Test("The tabulated energy rejects ragged, non-finite and oversized point sets")
    func tabulatedErrors() throws {
        let model = try NetworkModel(activation: .relu, inputDimension: 2, secondLayer: .fixed)
        let base = try MeanFieldEnergy(risk: PopulationRisk(model: model, teacher: .singleNeuron([1, 0])))
        #expect(throws: MeanFieldError.self) { try TabulatedMeanFieldEnergy(energy: base, points: [1, 2, 3]) }
        #expect(throws: MeanFieldError.self) { try TabulatedMeanFieldEnergy(energy: base, points: [1, .nan]) }
        #expect(throws: MeanFieldError.self) { try TabulatedMeanFieldEnergy(energy: base, points: []) }
        #expect(throws: MeanFieldError.self) {
            try TabulatedMeanFieldEnergy(energy: base, points: [Double](repeating: 0, count: 2 * (TabulatedMeanFieldEnergy.maximumCount + 1)))
        }
    }
}
