import Foundation
import Wasserstein

/// The POT reference cases of `Fixtures/pot-cases.json` (POT 0.9.7; see its "generator" note).
struct POTCase {
    let index: Int
    let x: [[Double]]
    let y: [[Double]]
    let a: [Double]
    let b: [Double]
    let w2SquaredExact: Double
    /// epsilon -> (transport_cost, regularized_cost)
    let sinkhorn: [Double: (transport: Double, regularized: Double)]

    func problem() throws -> TransportProblem {
        try TransportProblem(source: PointCloud(points: x, weights: a, name: "x"),
                             target: PointCloud(points: y, weights: b, name: "y"))
    }

    static let all: [POTCase] = {
        guard let url = Bundle.module.url(forResource: "pot-cases", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else { return [] }
        return cases.enumerated().compactMap { index, c in
            guard let x = c["x"] as? [[Double]], let y = c["y"] as? [[Double]],
                  let a = c["a"] as? [Double], let b = c["b"] as? [Double],
                  let exact = c["w2_squared_exact"] as? Double,
                  let sk = c["sinkhorn"] as? [String: [String: Double]] else { return nil }
            var table = [Double: (Double, Double)]()
            for (key, values) in sk {
                guard let eps = Double(key), let t = values["transport_cost"], let r = values["regularized_cost"] else { continue }
                table[eps] = (t, r)
            }
            return POTCase(index: index, x: x, y: y, a: a, b: b, w2SquaredExact: exact, sinkhorn: table)
        }
    }()
}

/// Seeded clouds for property tests: Gaussian, or uniform in the unit cube.
enum EntropicTestClouds {
    static func gaussian(_ n: Int, dimension: Int = 2, seed: UInt64, shift: Double = 0, scale: Double = 1,
                         randomWeights: Bool = false) throws -> PointCloud {
        var rng = Xoshiro256StarStar(seed: seed)
        var coordinates = [Double]()
        for _ in 0 ..< n * dimension { coordinates.append(shift + scale * rng.nextGaussian()) }
        return try PointCloud(coordinates: coordinates, dimension: dimension,
                              weights: randomWeights ? weights(n, using: &rng) : nil)
    }

    /// `n` points uniform in the unit cube `[0, 1]^D` (plus `shift` on the first axis).
    static func uniform(_ n: Int, dimension: Int, seed: UInt64, shift: Double = 0, randomWeights: Bool = false) throws -> PointCloud {
        var rng = Xoshiro256StarStar(seed: seed)
        var coordinates = [Double]()
        for i in 0 ..< n * dimension { coordinates.append(rng.nextUniform() + (i % dimension == 0 ? shift : 0)) }
        return try PointCloud(coordinates: coordinates, dimension: dimension,
                              weights: randomWeights ? weights(n, using: &rng) : nil)
    }

    /// Normalised weights in `[0.2, 1.2)` before normalisation, drawn after the coordinates.
    static func weights(_ n: Int, using rng: inout Xoshiro256StarStar) -> [Double] {
        let raw = (0 ..< n).map { _ in 0.2 + rng.nextUniform() }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }
}
