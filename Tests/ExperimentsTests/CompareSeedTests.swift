import Foundation
import Testing
import Wasserstein
import GradientFlows
@testable import Experiments

/// `sgd.seed` (the dynamics' own draws) apart from `seed` (the initial cloud), and the particle
/// files `compare` writes.
@Suite("Compare seeds and particle files")
struct CompareSeedTests {
    static func spec(sgdSeed: String? = nil) throws -> ExperimentSpec {
        let seedMember = sgdSeed.map { ", \"seed\": \($0)" } ?? ""
        let text = """
        {
          "model": {"activation": "relu", "input_dimension": 3},
          "teacher": {"kind": "neurons", "directions": [[1, 0, 0]], "noise": 0.1},
          "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.5}},
          "energy": {"lambda": 0.01, "beta": 40},
          "particles": 20, "horizon": 0.2, "seed": 9,
          "sgd": {"eta": 0.02\(seedMember)},
          "jko": {"tau": 0.1}
        }
        """
        return try ExperimentSpec.parse(data: Data(text.utf8))
    }

    @Test("without sgd.seed, or with sgd.seed = seed, a comparison is the same bit for bit")
    func defaultIsTheOldBehaviour() throws {
        let plain = try CompareRun.run(spec: Self.spec(), directory: nil)
        let same = try CompareRun.run(spec: Self.spec(sgdSeed: "9"), directory: nil)
        #expect(plain.sgdStates == same.sgdStates && plain.jkoStates == same.jkoStates)
        #expect(plain.rows.map(\.riskSGD) == same.rows.map(\.riskSGD))
    }

    @Test("another sgd.seed keeps the initial cloud and the JKO run, and changes the noise")
    func separateSeeds() throws {
        let plain = try CompareRun.run(spec: Self.spec(), directory: nil)
        let other = try CompareRun.run(spec: Self.spec(sgdSeed: "1234"), directory: nil)
        #expect(other.sgdStates[0] == plain.sgdStates[0])          // same start
        #expect(other.rows[0].w2Clouds == 0)                       // and JKO starts there too
        #expect(other.jkoStates == plain.jkoStates)
        #expect(other.sgdStates.last! != plain.sgdStates.last!)    // other samples and noise
        // The same as the sgd command with that seed: the runners agree.
        let sgd = try SGDRun.run(spec: Self.spec(sgdSeed: "1234"), directory: nil)
        #expect(sgd.trajectory.finalParticles == other.sgdStates.last!)
        #expect(sgd.summary.serialized().contains("\"sgd_seed\":1234"))
    }

    @Test("sgd.seed is checked like seed")
    func badSeed() throws {
        for bad in ["-1", "1.5", "1e300"] {
            #expect(throws: ExperimentError.invalidSpec(key: "sgd.seed", reason: "must be an integer between 0 and 2^53")) {
                try Self.spec(sgdSeed: bad)
            }
        }
    }

    @Test("compare writes the initial cloud and both final clouds, as the jko and sgd runners compute them")
    func particleFiles() throws {
        let spec = try Self.spec(sgdSeed: "77")
        let folder = NSTemporaryDirectory() + "wasserstein-compare-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try OutputDirectory.writing(to: folder) { try CompareRun.run(spec: spec, directory: $0, pictures: false) }
        let initial = try NPYFormat.read(path: folder + "/particles_initial.npy")
        let jko = try NPYFormat.read(path: folder + "/particles_jko_final.npy")
        let sgd = try NPYFormat.read(path: folder + "/particles_sgd_final.npy")
        for a in [initial, jko, sgd] { #expect(a.shape == [20, 4]) }
        #expect(initial.values == (try JKORun.initialParticles(spec: spec)).coordinates)
        #expect(jko.values == (try JKORun.run(spec: spec, directory: nil)).result.final.particleCoordinates)
        #expect(sgd.values == (try SGDRun.run(spec: spec, directory: nil)).trajectory.finalParticles)
    }
}

extension JKOState {
    /// The coordinates of a particle state (empty for a density).
    var particleCoordinates: [Double] {
        if case .particles(let p) = self { return p.coordinates }
        return []
    }
}
