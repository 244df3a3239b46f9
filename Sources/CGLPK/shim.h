// The GLPK C API. Only Sources/Wasserstein/Solvers/Exact/LinearProgramSolver.swift imports it;
// every other file works with the Swift types that solver returns.
#ifndef CGLPK_SHIM_H
#define CGLPK_SHIM_H
#include <glpk.h>
#endif
