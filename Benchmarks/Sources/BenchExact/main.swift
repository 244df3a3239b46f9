// Exact W2 benchmark: network simplex, GLPK LP and the sorted 1-D solver, on the same data as
// POT's peer script Benchmarks/python/bench_exact.py.
//
//     python3 Benchmarks/python/bench_exact.py --data-dir /tmp/wasserstein-bench    # writes the .npy data, times POT
//     swift run -c release --package-path Benchmarks bench-exact --data-dir /tmp/wasserstein-bench
//     swift run -c release --package-path Benchmarks -Xswiftc -target-cpu -Xswiftc native bench-exact --data-dir ...
//
// Options: --sizes 1000,2000   --lp-sizes 100,200,300   --n1d 10000000   --repeat 3   --skip-lp   --skip-1d
//          --dimensions 3,5,10 (only: matrix vs coordinates in those dimensions, generated Gaussian data)
//          --block-factors 0.5,1,2 (only: runs with block size f * sqrt(n m), no warm-up run)
// Without the data files it generates its own clouds (xoshiro256**, not the Python data) and says so.
// Every time is the best of --repeat wall-clock runs, in seconds, problem construction excluded.
import Foundation
import Wasserstein

// MARK: - Options

var dataDirectory = "/tmp/wasserstein-bench"
var sizes = [1000, 2000]
var lpSizes = [100, 200, 300]
var n1d = 10_000_000
var repeatCount = 3
var runLP = true
var blockFactors = [Double]()
var dimensions = [Int]()
var run1D = true
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let a = arguments.next() {
    switch a {
    case "--data-dir": dataDirectory = arguments.next() ?? dataDirectory
    case "--sizes": sizes = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
    case "--lp-sizes": lpSizes = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
    case "--n1d": n1d = Int(arguments.next() ?? "") ?? n1d
    case "--repeat": repeatCount = max(1, Int(arguments.next() ?? "") ?? repeatCount)
    case "--skip-lp": runLP = false
    case "--dimensions": dimensions = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
    case "--block-factors": blockFactors = (arguments.next() ?? "").split(separator: ",").compactMap { Double($0) }
    case "--skip-1d": run1D = false
    default:
        FileHandle.standardError.write("unknown option \(a)\n".data(using: .utf8)!)
        exit(2)
    }
}

// MARK: - Helpers

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Best wall-clock time of `count` runs and the last value.
func bestOf<T>(_ count: Int, _ body: () throws -> T) rethrows -> (Double, T) {
    var best = Double.infinity
    var value: T? = nil
    for _ in 0 ..< count {
        let t0 = now()
        value = try body()
        best = min(best, now() - t0)
    }
    return (best, value!)
}

/// A minimal reader for the float64 C-order .npy files the Python script writes.
func readNPY(_ path: String) -> (values: [Double], shape: [Int])? {
    guard let data = FileManager.default.contents(atPath: path), data.count > 10 else { return nil }
    let bytes = [UInt8](data)
    guard bytes[0] == 0x93, String(bytes: bytes[1 ..< 6], encoding: .ascii) == "NUMPY" else { return nil }
    let major = bytes[6]
    let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
        : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
    let start = major == 1 ? 10 : 12
    guard let header = String(bytes: bytes[start ..< start + headerLength], encoding: .ascii),
          header.contains("'<f8'"), header.contains("'fortran_order': False"),
          let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")")
    else { return nil }
    let shape = header[open.upperBound ..< close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let count = shape.reduce(1, *)
    let offset = start + headerLength
    guard bytes.count - offset == 8 * count else { return nil }
    let values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
        bytes.withUnsafeBytes { raw in
            for k in 0 ..< count { buffer[k] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8 * k, as: UInt64.self))) }
        }
        initialized = count
    }
    return (values, shape)
}

var generated = false
/// The 2-D clouds of size n: from the Python data when present, else generated here.
@MainActor func planarClouds(_ n: Int) throws -> (PointCloud, PointCloud) {
    if let x = readNPY("\(dataDirectory)/exact-x-\(n).npy"), let y = readNPY("\(dataDirectory)/exact-y-\(n).npy") {
        return (try PointCloud(coordinates: x.values, dimension: 2, name: "x"), try PointCloud(coordinates: y.values, dimension: 2, name: "y"))
    }
    generated = true
    var g = Xoshiro256StarStar(seed: 1000 + UInt64(n))
    var x = [Double](repeating: 0, count: 2 * n), y = x
    g.fillGaussian(&x)
    g.fillGaussian(&y)
    for i in 0 ..< n { y[2 * i] += 1 }
    return (try PointCloud(coordinates: x, dimension: 2, name: "x"), try PointCloud(coordinates: y, dimension: 2, name: "y"))
}

@MainActor func lineClouds(_ n: Int) throws -> (PointCloud, PointCloud) {
    if let x = readNPY("\(dataDirectory)/sorted-x-\(n).npy"), let y = readNPY("\(dataDirectory)/sorted-y-\(n).npy") {
        return (try PointCloud(values: x.values, name: "x"), try PointCloud(values: y.values, name: "y"))
    }
    generated = true
    var g = Xoshiro256StarStar(seed: 7)
    var x = [Double](repeating: 0, count: n), y = x
    g.fillGaussian(&x)
    g.fillGaussian(&y, mean: 0.5, standardDeviation: 1.5)
    return (try PointCloud(values: x, name: "x"), try PointCloud(values: y, name: "y"))
}

struct Row {
    var method: String
    var n: Int
    var seconds: Double
    var cost: Double
    var note: String
}
var rows = [Row]()
@MainActor func record(_ method: String, _ n: Int, _ seconds: Double, _ result: TransportResult, _ note: String = "") {
    rows.append(Row(method: method, n: n, seconds: seconds, cost: result.cost,
                    note: note.isEmpty && result.iterations > 0 ? "\(result.iterations) pivots" : note))
    let r = rows.last!
    print(String(format: "%-28@ %10d %10.4f %20.15g  %@", r.method as NSString, r.n, r.seconds, r.cost, r.note as NSString))
}

// MARK: - Runs

print("# \(Parallel.coreCount) cores; best of \(repeatCount) runs; seconds are wall-clock")
print(String(format: "%-28@ %10@ %10@ %20@  %@", "method" as NSString, "n" as NSString, "seconds" as NSString,
             "W2^2" as NSString, "note" as NSString))

for d in dimensions {
    for n in sizes {
        var g = Xoshiro256StarStar(seed: 77)
        var xc = [Double](repeating: 0, count: n * d), yc = xc
        g.fillGaussian(&xc)
        g.fillGaussian(&yc)
        for i in 0 ..< n { yc[i * d] += 1 }
        let problem = try TransportProblem(source: try PointCloud(coordinates: xc, dimension: d),
                                           target: try PointCloud(coordinates: yc, dimension: d))
        for evaluation in [NetworkSimplexSolver.CostEvaluation.coordinates, .matrix] {
            let solver = NetworkSimplexSolver(costEvaluation: evaluation)
            let (t, r) = try bestOf(repeatCount) { try solver.solve(problem) }
            record("exact D=\(d) (\(evaluation.rawValue))", n, t, r)
        }
    }
}

for n in sizes where dimensions.isEmpty {
    let (x, y) = try planarClouds(n)
    let problem = try TransportProblem(source: x, target: y)
    let variants: [(String, NetworkSimplexSolver)] = [
        ("exact (default)", NetworkSimplexSolver()),
        ("exact (coordinates)", NetworkSimplexSolver(costEvaluation: .coordinates)),
        ("exact (cost matrix)", NetworkSimplexSolver(costEvaluation: .matrix)),
        ("exact (artificial start)", NetworkSimplexSolver(costEvaluation: .coordinates, initialBasis: .artificial)),
    ]
    var tuning = [(String, NetworkSimplexSolver)]()
    for f in blockFactors {
        let size = max(10, Int(f * Double(n * n).squareRoot()))
        tuning.append(("exact (block \(size))", NetworkSimplexSolver(costEvaluation: .coordinates, blockSize: size)))
    }
    for (name, solver) in (blockFactors.isEmpty ? variants : tuning) {
        if blockFactors.isEmpty { _ = try solver.solve(problem) }
        let (t, r) = try bestOf(repeatCount) { try solver.solve(problem) }
        record(name, n, t, r)
    }
    if !blockFactors.isEmpty { continue }
    // Warm start: a JKO-like inner iteration moves every source point by 1% of the spread.
    var g = Xoshiro256StarStar(seed: 5)
    let moved = try PointCloud(coordinates: x.coordinates.map { $0 + 0.01 * g.nextGaussian() }, dimension: 2)
    let next = try TransportProblem(source: moved, target: y)
    let (tCold, cold) = try bestOf(repeatCount) { try NetworkSimplexSolver().solve(next) }
    record("exact cold (perturbed)", n, tCold, cold)
    var warmBest = Double.infinity
    var warm: TransportResult? = nil
    for _ in 0 ..< repeatCount {
        let workspace = NetworkSimplexWorkspace()
        _ = try workspace.solve(problem)
        let t0 = now()
        warm = try workspace.solve(next)
        warmBest = min(warmBest, now() - t0)
        precondition(workspace.lastSolveWasWarmStarted)
    }
    record("exact warm (perturbed)", n, warmBest, warm!)
}

if runLP && dimensions.isEmpty {
    let (x, y) = try planarClouds(sizes.max() ?? 1000)
    for n in lpSizes where n <= x.count {
        let xs = try PointCloud(coordinates: Array(x.coordinates.prefix(2 * n)), dimension: 2)
        let ys = try PointCloud(coordinates: Array(y.coordinates.prefix(2 * n)), dimension: 2)
        let problem = try TransportProblem(source: xs, target: ys)
        let (t, r) = try bestOf(1) { try LinearProgramSolver(maximumSize: Int.max).solve(problem) }
        record("lp (GLPK simplex)", n, t, r, "\(r.iterations) simplex iterations")
        let (te, e) = try bestOf(repeatCount) { try NetworkSimplexSolver().solve(problem) }
        record("exact (same problem)", n, te, e)
    }
}

if run1D && n1d > 0 && dimensions.isEmpty {
    let (x, y) = try lineClouds(n1d)
    let problem = try TransportProblem(source: x, target: y)
    let (t, r) = try bestOf(max(1, min(repeatCount, 2))) { try SortedSolver(planOutput: .none).solve(problem) }
    record("sorted (cost only)", n1d, t, r)
    let (tp, rp) = try bestOf(1) { try SortedSolver(planOutput: .full).solve(problem) }
    record("sorted (plan and duals)", n1d, tp, rp, "\(rp.plan!.entries.count) plan entries")
}

if generated {
    print("# note: some data was generated here (no .npy files in \(dataDirectory)); run bench_exact.py first to share POT's data")
}
