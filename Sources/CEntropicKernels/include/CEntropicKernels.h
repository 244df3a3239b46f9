#ifndef C_ENTROPIC_KERNELS_H
#define C_ENTROPIC_KERNELS_H

/// The exponential sums of the entropic solvers' row loops, with a run-time choice between a
/// portable SSE2 loop and an AVX2 loop (when the processor has AVX2). Both compute the same
/// IEEE operations in the same order (no fused multiply-add, the same four partial sums), so
/// they return the same bits: the choice changes the speed, never the answer.

#ifdef __cplusplus
extern "C" {
#endif

/// sum_{j < n} exp((t[j] - c[j] + shift) * inv_eps), with exp the polynomial of `entropicExp`
/// (Swift) and the terms summed into four partial sums s_{j mod 4}, combined as
/// (s0 + s1) + (s2 + s3). When `weighted` is non-zero, `*weighted_out` receives
/// sum_j exp(...) * c[j] summed the same way.
double ck_exp_tile_sum(const double *c, const double *t, long n, double shift, double inv_eps,
                       int weighted, double *weighted_out);

/// The portable loop of `ck_exp_tile_sum`, whatever the processor (for tests and benchmarks).
double ck_exp_tile_sum_portable(const double *c, const double *t, long n, double shift, double inv_eps,
                                int weighted, double *weighted_out);

/// 1 when `ck_exp_tile_sum` runs the AVX2 loop on this processor, 0 otherwise.
int ck_uses_avx2(void);

#ifdef __cplusplus
}
#endif

#endif
