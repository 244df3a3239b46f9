// swift-tools-version: 6.0
// The benchmark suite, kept out of the main package so that CI builds stay light.
// Run each with `swift run -c release --package-path Benchmarks <name>`; the Python peers
// (POT, NumPy) are in Benchmarks/python and are run side by side by Benchmarks/run-all.sh.
import PackageDescription

let package = Package(
    name: "WassersteinBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "Wasserstein", path: ".."),
    ],
    targets: [
        .executableTarget(name: "bench-exact", dependencies: [.product(name: "Wasserstein", package: "Wasserstein")], path: "Sources/BenchExact"),
        .executableTarget(name: "bench-1d", dependencies: [.product(name: "Wasserstein", package: "Wasserstein")], path: "Sources/Bench1D"),
        .executableTarget(name: "bench-sinkhorn", dependencies: [.product(name: "Wasserstein", package: "Wasserstein")], path: "Sources/BenchSinkhorn"),
        .executableTarget(name: "bench-engine", dependencies: [.product(name: "Wasserstein", package: "Wasserstein")], path: "Sources/BenchEngine"),
        .executableTarget(name: "bench-meanfield", dependencies: [.product(name: "MeanField", package: "Wasserstein"), .product(name: "Wasserstein", package: "Wasserstein")], path: "Sources/BenchMeanField"),
        .executableTarget(name: "bench-jko", dependencies: [.product(name: "GradientFlows", package: "Wasserstein"), .product(name: "MeanField", package: "Wasserstein"), .product(name: "Experiments", package: "Wasserstein"), .product(name: "Wasserstein", package: "Wasserstein")], path: "Sources/BenchJKO"),
    ]
)
