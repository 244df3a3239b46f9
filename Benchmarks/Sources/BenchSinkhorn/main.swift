// Entropic OT benchmark (the Swift side of Benchmarks/python/bench_sinkhorn.py).
//
//   swift build -c release --package-path Benchmarks --product bench-sinkhorn
//   python3 Benchmarks/python/bench_sinkhorn.py          # writes the data, runs both sides, prints a table
//
// Direct use, on the .npy clouds the Python script writes (x_N.npy, y_N.npy in --data):
//   bench-sinkhorn --data /tmp/sinkhorn-bench --n 2000 --eps 0.1 [--tol 1e-9] [--repeat 3]
// Without --data it generates its own clouds (seeded xoshiro, x ~ N(0, I), y ~ N((1, 0.5), I)).
// Solver variants for tuning: --no-scaling, --factor F --per-stage K, --omega W (fixed),
// --no-newton, --max-its K, --engine dense|online [--newton] (the cross term on the engine's driver), --warm (time a warm-started re-solve after moving x by 1e-3).
// --self: the symmetric self term OT_eps(x, x) of the divergence (`solveSelf`) instead of the
// cross term.
// Output: one JSON line per case (time = best of --repeat, fresh workspace each run, cost
// matrix computed inside the solve).
import Foundation
import Wasserstein

let args = CommandLine.arguments
func arg(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

/// Reads a little-endian float64 C-order 2-D .npy file (what NumPy's `np.save` writes).
func readNPY(_ path: String) throws -> (values: [Double], rows: Int, columns: Int) {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let bytes = [UInt8](data)
    guard bytes.count > 10, bytes[0] == 0x93, String(bytes: bytes[1 ..< 6], encoding: .ascii) == "NUMPY" else {
        throw WassersteinError.malformedShape("\(path) is not an .npy file")
    }
    let major = bytes[6]
    let headerLength: Int, headerStart: Int
    if major == 1 {
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        headerStart = 10
    } else {
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        headerStart = 12
    }
    let header = String(bytes: bytes[headerStart ..< headerStart + headerLength], encoding: .ascii) ?? ""
    guard header.contains("'descr': '<f8'"), header.contains("'fortran_order': False"),
          let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
        throw WassersteinError.malformedShape("\(path): only C-order <f8 arrays are supported (\(header))")
    }
    let dims = header[open.upperBound ..< close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard dims.count == 2 else { throw WassersteinError.malformedShape("\(path): expected a 2-D array") }
    let start = headerStart + headerLength
    let count = dims[0] * dims[1]
    var values = [Double](repeating: 0, count: count)
    values.withUnsafeMutableBytes { out in
        data.copyBytes(to: out.bindMemory(to: UInt8.self), from: start ..< start + count * 8)
    }
    return (values, dims[0], dims[1])
}

func gaussianCloud(_ n: Int, seed: UInt64, shift: [Double]) -> PointCloud {
    var rng = Xoshiro256StarStar(seed: seed)
    var c = [Double]()
    for _ in 0 ..< n { for k in 0 ..< 2 { c.append(rng.nextGaussian() + shift[k]) } }
    return try! PointCloud(coordinates: c, dimension: 2)
}

let n = Int(arg("--n") ?? "2000")!
let eps = Double(arg("--eps") ?? "0.1")!
let tol = Double(arg("--tol") ?? "1e-9")!
let repeatCount = Int(arg("--repeat") ?? "1")!
let maxIts = Int(arg("--max-its") ?? "100000")!
let x: PointCloud, y: PointCloud
if let dir = arg("--data") {
    let xs = try readNPY("\(dir)/x_\(n).npy"), ys = try readNPY("\(dir)/y_\(n).npy")
    x = try PointCloud(coordinates: xs.values, dimension: xs.columns)
    y = try PointCloud(coordinates: ys.values, dimension: ys.columns)
} else {
    x = gaussianCloud(n, seed: 1, shift: [0, 0])
    y = gaussianCloud(n, seed: 2, shift: [1, 0.5])
}
let problem = try TransportProblem(source: x, target: y)
var solver = try SinkhornSolver(epsilon: eps, tolerance: tol, maxIterations: maxIts)
if args.contains("--no-scaling") { solver.epsilonScaling = .none }
if let f = arg("--factor").flatMap(Double.init) {
    solver.epsilonScaling = .geometric(factor: f, iterationsPerStage: Int(arg("--per-stage") ?? "10")!)
}
if args.contains("--no-newton") { solver.newtonSteps = false }
if let w = arg("--omega").flatMap(Double.init) { solver.overRelaxation = w == 1 ? .none : .fixed(w) }

if let kind = arg("--engine") {
    // The cross term on the engine's driver instead (issue 19's port): log-domain `dense` or
    // `online` geometry, with the driver's Newton-CG stage when --newton is given.
    var parameters = try EntropicParameters(epsilon: eps, tolerance: tol, maxIterations: maxIts)
    parameters.usesNewtonSteps = args.contains("--newton")
    var best = Double.infinity
    var out: EntropicOutput!
    for _ in 0 ..< max(1, repeatCount) {
        let start = DispatchTime.now().uptimeNanoseconds
        out = kind == "online" ? try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
            : try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.dense())
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    }
    let record: [String: Any] = [
        "side": "swift-engine", "geometry": kind, "newton": parameters.usesNewtonSteps, "n": n, "eps": eps, "tol": tol,
        "time": best, "transport_cost": out.transportCost, "regularized_cost": out.regularizedCost,
        "marginal_error_l1": out.marginalError, "iterations": out.iterations, "converged": out.converged,
        "newton_steps": out.newtonSteps,
    ]
    let json = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
    exit(0)
}

var best = Double.infinity
var result: TransportResult!
var statistics = SinkhornStatistics()
for _ in 0 ..< max(1, repeatCount) {
    let workspace = SinkhornWorkspace()
    let start = DispatchTime.now().uptimeNanoseconds
    result = args.contains("--self") ? try solver.solveSelf(x, warmStart: nil, workspace: workspace)
        : try solver.solve(problem, warmStart: nil, workspace: workspace)
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    best = min(best, elapsed)
    statistics = workspace.lastStatistics
}
var record: [String: Any] = [
    "side": "swift", "term": args.contains("--self") ? "self" : "cross", "n": n, "eps": eps, "tol": tol, "time": best,
    "transport_cost": result.cost, "regularized_cost": result.entropic!.regularizedCost,
    "marginal_error_l1": result.entropic!.marginalError, "iterations": result.iterations,
    "converged": result.converged, "stages": statistics.stages, "kernel_builds": statistics.kernelBuilds,
    "newton_steps": statistics.newtonSteps, "cg_iterations": statistics.conjugateGradientIterations,
    "relaxation": statistics.finalRelaxation, "cores": ProcessInfo.processInfo.activeProcessorCount,
]
if args.contains("--warm") {
    // A JKO-like re-solve: x moved by 1e-3, started from the previous potentials.
    let moved = try TransportProblem(source: x.translated(by: [1e-3, -5e-4]), target: y)
    let workspace = SinkhornWorkspace()
    _ = try solver.solve(problem, warmStart: nil, workspace: workspace)
    let start = DispatchTime.now().uptimeNanoseconds
    let warm = try solver.solve(moved, warmStart: result.potentials, workspace: workspace)
    record["warm_time"] = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    record["warm_iterations"] = warm.iterations
}
let json = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
print(String(decoding: json, as: UTF8.self))
if let path = arg("--dump-clouds") {
    // The clouds as raw float64 (row-major), for offline analysis.
    try x.coordinates.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: path + ".x"))
    try y.coordinates.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: path + ".y"))
}
