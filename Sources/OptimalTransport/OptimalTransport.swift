// One import for the library: `import OptimalTransport` brings the three library layers.
//
// - Wasserstein: measures, costs, the exact, entropic and one-dimensional solvers, Gaussian closed
//   forms, file formats.
// - GradientFlows: energies, particle and grid JKO schemes, entropy estimators, the Gibbs point.
// - MeanField: the two-layer network, its kernels and energies, SGD and the reduced flow.
//
// The experiment layer (specs, runners, output folders) stays a separate `import Experiments`:
// it speaks in spec keys, which a library user does not need.
@_exported import GradientFlows
@_exported import MeanField
@_exported import Wasserstein
