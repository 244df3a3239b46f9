import Foundation
import Testing
import Wasserstein
@testable import Experiments

@Suite("JKO against SGD sweep")
struct SweepTests {
    /// A one-dimensional problem (fixed second layer, d = 1) so that the reference JKO run is
    /// cheap even in a debug build.
    static let spec = """
    {
      "model": {"activation": "relu", "input_dimension": 1, "second_layer": "fixed", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[2]], "coefficients": [1], "noise": 0.0},
      "initialization": {"w": {"mean": 0, "std": 1}},
      "energy": {"lambda": 0.0},
      "particles": 16, "horizon": 0.5, "seed": 5,
      "sgd": {"eta": 0.005, "kind": "online"},
      "jko": {"tau": 0.05, "scheme": "particle", "transport": "exact"},
      "record_every": 0.05
    }
    """

    /// `count` quantiles of N(0, 1): the reference starts from them, so its own sampling error is
    /// O(1/count) instead of O(1/sqrt(count)).
    static func normalQuantiles(_ count: Int) -> [Double] {
        (0 ..< count).map { i in
            let p = (Double(i) + 0.5) / Double(count)
            var lo = -10.0, hi = 10.0
            for _ in 0 ..< 100 {
                let mid = (lo + hi) / 2
                if 0.5 * erfc(-mid / 2.0.squareRoot()) < p { lo = mid } else { hi = mid }
            }
            return (lo + hi) / 2
        }
    }

    @Test("max_risk_gap shrinks as M grows at small eta (fixed seeds)")
    func gapShrinksWithWidth() throws {
        let spec = try ExperimentSpec.parse(data: Data(Self.spec.utf8))
        let start = try PointCloud(values: Self.normalQuantiles(256))
        let out = try SweepRun.run(spec: spec, particles: [4, 64], etas: [0.005], seeds: 6,
                                   referenceStart: start, directory: nil)
        let small = out.cells.first { $0.particles == 4 }!.mean
        let large = out.cells.first { $0.particles == 64 }!.mean
        // 1/sqrt(M) predicts a ratio of 4 between M = 4 and M = 64; SGD's own sqrt(eta) error
        // and the reference's O(tau) error put a floor under the large-M gap. We require at
        // least a factor 2 (measured: 0.290 and 0.053, a factor 5.4; slope -0.61).
        #expect(large < small / 2, "gap(4) = \(small), gap(64) = \(large)")
        #expect(out.slopesInParticles.first!.slope < -0.25)
    }

    @Test("Sweep lists are parsed strictly")
    func lists() throws {
        #expect(try SweepRun.parseIntegerList("100, 400,1600", option: "--sweep-particles") == [100, 400, 1600])
        #expect(try SweepRun.parseList("0.01,0.003", option: "--sweep-eta") == [0.01, 0.003])
        for bad in ["", "1,,2", "a,2", "0,1", "-3", "1.5"] {
            #expect(throws: ExperimentError.self) { try SweepRun.parseIntegerList(bad, option: "--sweep-particles") }
        }
        #expect(throws: ExperimentError.self) { try SweepRun.parseList("0.01,nan", option: "--sweep-eta") }
    }

    @Test("The log-log slope of an exact power law is its exponent")
    func slope() {
        let x = [10.0, 100, 1000], y = x.map { 3 / $0.squareRoot() }
        #expect(abs(SweepRun.logLogSlope(x: x, y: y)! + 0.5) < 1e-12)
        #expect(SweepRun.logLogSlope(x: [1], y: [1]) == nil)
    }

    @Test("The bootstrap interval collapses on seed-free data, stays inside the extreme refits, and is reproducible")
    func bootstrapInterval() throws {
        let x = [10.0, 100]
        // Every seed of a cell equal: every replicate refits the same slope.
        let flat = SweepRun.bootstrapSlopeInterval(x: x, samples: [[0.2, 0.2, 0.2], [0.05, 0.05, 0.05]], seed: 1)!
        let exact = SweepRun.logLogSlope(x: x, y: [0.2, 0.05])!
        #expect(flat.lowerBound == exact && flat.upperBound == exact)
        // Two cells: a replicate's slope is (log mean2 - log mean1) / log 10, and a resampled mean
        // lies between its cell's extremes, so the interval lies between the two extreme slopes.
        let first = [0.30, 0.22, 0.26, 0.35], second = [0.080, 0.11, 0.06, 0.095]
        let interval = try #require(SweepRun.bootstrapSlopeInterval(x: x, samples: [first, second], seed: 7))
        let steepest = log(second.min()! / first.max()!) / log(10.0), flattest = log(second.max()! / first.min()!) / log(10.0)
        #expect(interval.lowerBound >= steepest && interval.upperBound <= flattest)
        // It holds the slope through the means, and is not degenerate on scattered seeds.
        let mean = { (v: [Double]) in v.reduce(0, +) / Double(v.count) }
        let fitted = SweepRun.logLogSlope(x: x, y: [mean(first), mean(second)])!
        #expect(interval.contains(fitted) && interval.upperBound - interval.lowerBound > 0.05)
        // Seeded: the same seed gives the same interval, another seed a nearby one.
        #expect(SweepRun.bootstrapSlopeInterval(x: x, samples: [first, second], seed: 7) == interval)
        let other = try #require(SweepRun.bootstrapSlopeInterval(x: x, samples: [first, second], seed: 8))
        #expect(abs(other.lowerBound - interval.lowerBound) < 0.05 && abs(other.upperBound - interval.upperBound) < 0.05)
        // One seed per cell: no interval.
        #expect(SweepRun.bootstrapSlopeInterval(x: x, samples: [[0.3], [0.1]], seed: 7) == nil)
    }

    @Test("A sweep reports each slope's interval in summary.json and the legend, and draws error bars")
    func sweepFiles() throws {
        let spec = try ExperimentSpec.parse(data: Data(Self.spec.utf8))
        let folder = NSTemporaryDirectory() + "wasserstein-sweep-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = try OutputDirectory.writing(to: folder) {
            try SweepRun.run(spec: spec, particles: [4, 16], etas: [0.01, 0.005], seeds: 3, referenceParticles: 32, directory: $0)
        }
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/summary.json"))) as? [String: Any])
        let slopes = try #require(summary["slope_in_particles"] as? [[String: Any]])
        #expect(slopes.count == 2)
        for (entry, fit) in zip(slopes, out.slopesInParticles) {
            let ci = try #require(entry["slope_ci95"] as? [Double])
            let interval = try #require(fit.interval)
            // Through JSON text and Foundation's parser: to the last digit or so.
            #expect(ci.count == 2 && abs(ci[0] - interval.lowerBound) < 1e-12 && abs(ci[1] - interval.upperBound) < 1e-12)
        }
        let svg = try String(contentsOfFile: folder + "/sweep_particles.svg", encoding: .utf8)
        for fit in out.slopesInParticles {
            #expect(svg.contains(xmlEscape(SweepRun.describeSlope(fit.slope, interval: fit.interval))))
        }
        // One bar per cell and curve, as long as two standard deviations of the seeds' gaps.
        let bars = svg.components(separatedBy: "data-error=\"").dropFirst().map { Double($0.prefix { $0 != "\"" })! }
        #expect(bars.count == 4)
        #expect(Set(bars) == Set(out.cells.map(\.standardDeviation)))
    }
}
