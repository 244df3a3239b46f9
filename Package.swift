// swift-tools-version: 6.0
//
// The layering is the folder tree: each target imports only the ones above it.
//
//   CGLPK            system library; the only place that sees glpk.h
//   CEntropicKernels C loops with AVX2 chosen at run time (exponential sums of the entropic solvers)
//   OptimalTransport one import for library users: re-exports Wasserstein, GradientFlows, MeanField
//   Wasserstein      measures, costs -> solvers -> results (imports CGLPK)
//   GradientFlows    energies, JKO schemes, entropy estimators (imports Wasserstein)
//   MeanField        the two-layer network, its energies and particle dynamics (imports GradientFlows)
//   Experiments      specs, runners, comparisons, output files (imports MeanField)
//   WassersteinCLI   the `wasserstein` command (imports Experiments)
import PackageDescription

let package = Package(
    name: "Wasserstein",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "OptimalTransport", targets: ["OptimalTransport"]),
        .library(name: "Wasserstein", targets: ["Wasserstein"]),
        .library(name: "GradientFlows", targets: ["GradientFlows"]),
        .library(name: "MeanField", targets: ["MeanField"]),
        .library(name: "Experiments", targets: ["Experiments"]),
        .executable(name: "wasserstein", targets: ["WassersteinCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CGLPK",
            path: "Sources/CGLPK",
            providers: [.apt(["libglpk-dev"])]
        ),
        // The AVX2 exponential sums, chosen at run time (the default x86-64 target has no AVX).
        .target(
            name: "CEntropicKernels",
            path: "Sources/CEntropicKernels"
        ),
        .target(
            name: "Wasserstein",
            dependencies: ["CGLPK", "CEntropicKernels"]
        ),
        .target(
            name: "GradientFlows",
            dependencies: ["Wasserstein"]
        ),
        .target(
            name: "MeanField",
            dependencies: ["GradientFlows", "Wasserstein"]
        ),
        // One import for library users: re-exports Wasserstein, GradientFlows and MeanField.
        .target(
            name: "OptimalTransport",
            dependencies: ["MeanField", "GradientFlows", "Wasserstein"]
        ),
        .target(
            name: "Experiments",
            dependencies: ["MeanField", "GradientFlows", "Wasserstein"]
        ),
        .executableTarget(
            name: "WassersteinCLI",
            dependencies: [
                "Experiments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Examples: `swift run -c release example-...` (see Examples/README.md).
        .executableTarget(
            name: "example-single-neuron",
            dependencies: ["Experiments", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/SingleNeuron",
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "example-fokker-planck",
            dependencies: ["Experiments", "GradientFlows", "Wasserstein",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/FokkerPlanck",
            exclude: ["README.md"]
        ),
        .executableTarget(
            name: "example-jko-versus-sgd",
            dependencies: ["Experiments", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/JKOVersusSGD",
            exclude: ["README.md", "spec.json"]
        ),
        .executableTarget(
            name: "example-noisy-sgd-gibbs",
            dependencies: ["Experiments", "MeanField", "GradientFlows", "Wasserstein",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/NoisySGDGibbs",
            exclude: ["README.md", "spec.json"]
        ),
        .executableTarget(
            name: "example-reduced-dimensions",
            dependencies: ["Experiments", "MeanField", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/ReducedDimensions",
            exclude: ["README.md", "relu-teacher.json", "he2-teacher.json"]
        ),
        .testTarget(
            name: "WassersteinTests",
            dependencies: ["Wasserstein", "CEntropicKernels"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "GradientFlowsTests",
            dependencies: ["GradientFlows", "Wasserstein"]
        ),
        .testTarget(
            name: "MeanFieldTests",
            dependencies: ["MeanField", "GradientFlows", "Wasserstein"]
        ),
        .testTarget(
            name: "ExperimentsTests",
            dependencies: ["Experiments", "OptimalTransport", "MeanField", "GradientFlows", "Wasserstein"]
        ),
        .testTarget(
            name: "CommandLineTests",
            dependencies: ["WassersteinCLI", "Wasserstein"]
        ),
    ]
)
