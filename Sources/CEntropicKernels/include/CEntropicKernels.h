#ifndef C_ENTROPIC_KERNELS_H
#define C_ENTROPIC_KERNELS_H

/// The exponential sums of the entropic solvers' row loops and the separable convolution's
/// pass (grid geometries), each with a run-time choice between a
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

/// One pass of the separable convolution across the rows of `src` (`n0 x n1`, row-major),
/// stored transposed, for the output rows `k_begin <= k < k_end`:
/// `dst[j * n0 + k] = t_0 src[k, j] + sum_{d = 1 ... w} t_d (src[k - d, j] + src[k + d, j])`
/// (terms off the grid left out), `d` ascending. `taps` holds `t_0 ... t_w`; `pack` is scratch
/// of `16 * n0` doubles. AVX2 where the processor has it; the same bits either way.
void ck_convolve_rows_transposed(const double *src, double *dst, long n0, long n1, const double *taps,
                                 long w, long k_begin, long k_end, double *pack);

/// The portable loop of `ck_convolve_rows_transposed`, whatever the processor.
void ck_convolve_rows_transposed_portable(const double *src, double *dst, long n0, long n1, const double *taps,
                                          long w, long k_begin, long k_end, double *pack);

/// The update of the proximal (JKO) step on kept scalings, for `n` entries (see
/// `EntropicSinkhorn.iterateProximalScalings`): per entry `target = q - omt (log max(z, 1e-280) - cv)`,
/// the residual term `z |u - exp(target + la - cu)|`, `p <- p + w (target - p)`,
/// `u <- exp(p + la - cu)`. Returns the residual (four partial sums, lane `i mod 4`, combined
/// as `(s0 + s1) + (s2 + s3)`); `*high_out = max (p + la)` of the new `p`. `z` must be finite
/// and non-negative. `exp` is `entropicExp`'s polynomial, `log` a
/// branch-free series within a few ulps. AVX2 where the processor has it; the same bits either way.
double ck_proximal_update(double *p, double *u, const double *z, const double *q, const double *la, long n,
                          double cv, double cu, double w, double one_minus_theta, double *high_out);

/// The portable loop of `ck_proximal_update`, whatever the processor.
double ck_proximal_update_portable(double *p, double *u, const double *z, const double *q, const double *la, long n,
                                   double cv, double cu, double w, double one_minus_theta, double *high_out);

/// 1 when `ck_exp_tile_sum` runs the AVX2 loop on this processor, 0 otherwise.
int ck_uses_avx2(void);

#ifdef __cplusplus
}
#endif

#endif
