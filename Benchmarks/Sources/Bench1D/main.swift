// 1-D W2 benchmark, files included: what `wasserstein distance x y --method sorted` does, in
// process, against NumPy's np.load / np.loadtxt + two np.sort + a mean (Benchmarks/python/bench_1d.py).
//
//     python3 Benchmarks/python/bench_1d.py --data-dir /tmp/wasserstein-bench    # writes .npy and .csv data, times NumPy
//     swift run -c release --package-path Benchmarks bench-1d --data-dir /tmp/wasserstein-bench
//
// Options: --n 10000000   --repeat 5   --skip-csv
// Rows: the whole (read both files, validate, sort both, merge), then its parts: reading and
// validating both clouds (`PointCloudFile.readPair`, both files at once), and the solve
// (`SortedSolver(planOutput: .none)`, both sorts at once). Best of --repeat wall-clock runs; "cpu s"
// is the least process CPU time (user + system, both cores) of a run, the fairer figure on a busy machine.
import Foundation
import Wasserstein

var dataDirectory = "/tmp/wasserstein-bench"
var n = 10_000_000
var repeatCount = 5
var runCSV = true
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let a = arguments.next() {
    switch a {
    case "--data-dir": dataDirectory = arguments.next() ?? dataDirectory
    case "--n": n = Int(arguments.next() ?? "") ?? n
    case "--repeat": repeatCount = max(1, Int(arguments.next() ?? "") ?? repeatCount)
    case "--skip-csv": runCSV = false
    default:
        FileHandle.standardError.write("unknown option \(a)\n".data(using: .utf8)!)
        exit(2)
    }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Best wall-clock time of `count` runs, the least process CPU time (both cores) of a run,
/// and the last value.
func bestOf<T>(_ count: Int, _ body: () throws -> T) rethrows -> ((wall: Double, cpu: Double), T) {
    var best = Double.infinity, leastCPU = Double.infinity
    var value: T? = nil
    for _ in 0 ..< count {
        let t0 = now(), c0 = cpuSeconds()
        value = try body()
        best = min(best, now() - t0)
        leastCPU = min(leastCPU, cpuSeconds() - c0)
    }
    return ((best, leastCPU), value!)
}

func padded(_ text: String, _ width: Int, left: Bool = false) -> String {
    let pad = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + pad : pad + text
}

/// Process CPU time (user + system, all threads), to compare runs on a busy machine.
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

@MainActor func row(_ step: String, _ seconds: (wall: Double, cpu: Double), _ cost: Double?) {
    let costText = cost.map { String(format: "%.15g", $0) } ?? "-"
    print(padded(step, 34, left: true) + " " + padded("\(n)", 10) + " " + padded(String(format: "%.4f", seconds.wall), 10)
          + " " + padded(String(format: "%.3f", seconds.cpu), 8) + " " + padded(costText, 20))
}

print("# \(Parallel.coreCount) cores; best of \(repeatCount) runs; seconds are wall-clock")
print(padded("step", 34, left: true) + " " + padded("n", 10) + " " + padded("seconds", 10) + " " + padded("cpu s", 8)
      + " " + padded("W2^2", 20))
let solver = SortedSolver(planOutput: .none)
for format in runCSV ? ["npy", "csv"] : ["npy"] {
    let x = "\(dataDirectory)/sorted-x-\(n).\(format)", y = "\(dataDirectory)/sorted-y-\(n).\(format)"
    guard FileManager.default.fileExists(atPath: x), FileManager.default.fileExists(atPath: y) else {
        print("# no \(x) or \(y): run Benchmarks/python/bench_1d.py first")
        exit(1)
    }
    let (total, result) = try bestOf(repeatCount) { () throws -> TransportResult in
        let (source, target) = try PointCloudFile.readPair(x, y)
        return try solver.solve(try TransportProblem(source: source, target: target))
    }
    row("total (\(format): read, sort, merge)", total, result.cost)
    let (read, clouds) = try bestOf(repeatCount) { try PointCloudFile.readPair(x, y) }
    row("read and validate both (\(format))", read, nil)
    if format == "npy" {
        let problem = try TransportProblem(source: clouds.0, target: clouds.1)
        let (solve, r) = try bestOf(repeatCount) { try solver.solve(problem) }
        row("sort both and merge", solve, r.cost)
    }
}
