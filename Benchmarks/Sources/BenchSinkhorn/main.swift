import Foundation
import Wasserstein

func gaussianCloud(_ n: Int, seed: UInt64, shift: [Double]) -> PointCloud {
    var rng = Xoshiro256StarStar(seed: seed)
    var c = [Double]()
    for _ in 0 ..< n { for k in 0 ..< 2 { c.append(rng.nextGaussian() + shift[k]) } }
    return try! PointCloud(coordinates: c, dimension: 2)
}

let args = CommandLine.arguments
func arg(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let n = Int(arg("--n") ?? "2000")!
let eps = Double(arg("--eps") ?? "0.1")!
let tol = Double(arg("--tol") ?? "1e-9")!
let omega = arg("--omega").flatMap(Double.init)
let factor = Double(arg("--factor") ?? "0.5")!
let perStage = Int(arg("--per-stage") ?? "2")!
let noScale = args.contains("--no-scaling")
let maxIts = Int(arg("--max-its") ?? "100000")!
let x = gaussianCloud(n, seed: 1, shift: [0, 0])
let y = gaussianCloud(n, seed: 2, shift: [1, 0.5])
let problem = try! TransportProblem(source: x, target: y)
let solver = try! SinkhornSolver(epsilon: eps, tolerance: tol, maxIterations: maxIts,
                                 epsilonScaling: noScale ? .none : .geometric(factor: factor, iterationsPerStage: perStage),
                                 overRelaxation: omega.map { .fixed($0) } ?? .adaptive)
let ws = SinkhornWorkspace()
let t0 = Date()
let r = try! solver.solve(problem, warmStart: nil, workspace: ws)
let dt = Date().timeIntervalSince(t0)
print(String(format: "n=%d eps=%g time=%.3f s cost=%.12f reg=%.12f err=%.2e its=%d", n, eps, dt, r.cost, r.entropic!.regularizedCost, r.entropic!.marginalError, r.iterations), r.status, ws.lastStatistics)
if let path = arg("--dump-plan") {
    let dense = try! solver.densePlan(problem, potentials: r.potentials!)
    let data = dense.withUnsafeBufferPointer { Data(buffer: $0) }
    try! data.write(to: URL(fileURLWithPath: path))
    let xs = x.coordinates.withUnsafeBufferPointer { Data(buffer: $0) }
    try! xs.write(to: URL(fileURLWithPath: path + ".x"))
    let ys = y.coordinates.withUnsafeBufferPointer { Data(buffer: $0) }
    try! ys.write(to: URL(fileURLWithPath: path + ".y"))
}
