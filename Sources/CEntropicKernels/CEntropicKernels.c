// Exponential tile sums for the entropic row loops and the separable convolution's pass, portable
// and AVX2, chosen at run time.
//
// Why C: Swift has no per-function target attributes, so a loop that may use AVX2 without
// requiring it of the whole build (the default x86-64 target has no AVX) must live here.
// Both loops evaluate the same polynomial as Swift's `entropicExp` with the same separate
// multiplications and additions (this file is compiled without contraction: no FMA), and sum
// into the same four partial sums, so they agree bit for bit with each other and with Swift.

#include "CEntropicKernels.h"

#pragma STDC FP_CONTRACT OFF
/* The 4-wide helpers below are always inlined: no vector crosses a call, so the AVX ABI note
   clang gives for vector arguments in the portable build does not apply. */
#pragma clang diagnostic ignored "-Wpsabi"

#define CK_MAGIC 6755399441055744.0  /* 1.5 * 2^52: adding it rounds to an integer */

typedef union { double d; long long i; } ck_bits;

static inline double ck_exp(double x) {
    double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    double t = xc * 1.4426950408889634 + CK_MAGIC;
    double k = t - CK_MAGIC;
    double r = (xc - k * 0.693147180369123816490) - k * 1.90821492927058770002e-10;
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double c0 = 1.0 + r;
    double c1 = 0.5 + r * (1.0 / 6.0);
    double c2 = 1.0 / 24.0 + r * (1.0 / 120.0);
    double c3 = 1.0 / 720.0 + r * (1.0 / 5040.0);
    double c4 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
    double c5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0);
    double c6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
    double p = (c0 + r2 * c1) + r4 * (c2 + r2 * c3) + r8 * ((c4 + r2 * c5) + r4 * c6);
    ck_bits tb = { t }, mb = { CK_MAGIC }, sb;
    long long kbits = tb.i - mb.i;
    sb.i = (long long)((unsigned long long)(kbits + 1023) << 52);
    double value = p * sb.d;
    return x < -708.0 ? 0.0 : value;
}

double ck_exp_tile_sum_portable(const double *c, const double *t, long n, double shift, double inv_eps,
                                int weighted, double *weighted_out) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, w0 = 0, w1 = 0, w2 = 0, w3 = 0;
    long j = 0;
    if (weighted) {
        for (; j + 4 <= n; j += 4) {
            double e0 = ck_exp((t[j] - c[j] + shift) * inv_eps), e1 = ck_exp((t[j + 1] - c[j + 1] + shift) * inv_eps);
            double e2 = ck_exp((t[j + 2] - c[j + 2] + shift) * inv_eps), e3 = ck_exp((t[j + 3] - c[j + 3] + shift) * inv_eps);
            s0 += e0; s1 += e1; s2 += e2; s3 += e3;
            w0 += e0 * c[j]; w1 += e1 * c[j + 1]; w2 += e2 * c[j + 2]; w3 += e3 * c[j + 3];
        }
    } else {
        for (; j + 4 <= n; j += 4) {
            s0 += ck_exp((t[j] - c[j] + shift) * inv_eps);
            s1 += ck_exp((t[j + 1] - c[j + 1] + shift) * inv_eps);
            s2 += ck_exp((t[j + 2] - c[j + 2] + shift) * inv_eps);
            s3 += ck_exp((t[j + 3] - c[j + 3] + shift) * inv_eps);
        }
    }
    for (; j < n; j++) {
        double e = ck_exp((t[j] - c[j] + shift) * inv_eps);
        s0 += e;
        w0 += e * c[j];
    }
    if (weighted) *weighted_out = (w0 + w1) + (w2 + w3);
    return (s0 + s1) + (s2 + s3);
}

// MARK: The separable convolution's pass across rows (SeparableConvolution.swift)
//
// One body, written with 4-wide vectors of the compiler's vector extension, inlined into a
// portable function (two SSE2 operations per vector) and an AVX2 one (one). Every output is
// t_0 s[k] + sum_{d >= 1} t_d (s[k - d] + s[k + d]), d ascending, then the one-sided taps near
// the edges, with separate multiplications and additions: the two give the same bits.

typedef double ck_v4 __attribute__((vector_size(32)));

/* An unaligned load (a macro: a function returning a vector would warn of the AVX ABI). */
#define ck_load4(p) ({ ck_v4 ck_v_; __builtin_memcpy(&ck_v_, (p), sizeof ck_v_); ck_v_; })

static inline __attribute__((always_inline)) long ck_min(long a, long b) { return a < b ? a : b; }
static inline __attribute__((always_inline)) long ck_max(long a, long b) { return a > b ? a : b; }

/* One output row k of a 16-column strip packed contiguously (row r at pack + 16 r), stored
   transposed at dst[(j0 + c) n0 + k]. */
static inline __attribute__((always_inline))
void ck_block16(const double *pack, double *dst, long n0, long k, long j0, const double *t, long w) {
    long below = ck_min(w, k), above = ck_min(w, n0 - 1 - k), both = ck_min(below, above);
    const double *centre = pack + 16 * k, *up = centre, *down = centre;
    ck_v4 c0 = { t[0], t[0], t[0], t[0] };
    ck_v4 a0 = c0 * ck_load4(centre), a1 = c0 * ck_load4(centre + 4);
    ck_v4 a2 = c0 * ck_load4(centre + 8), a3 = c0 * ck_load4(centre + 12);
    long d = 1;
    for (; d <= both; d++) {
        up -= 16; down += 16;
        ck_v4 c = { t[d], t[d], t[d], t[d] };
        a0 += c * (ck_load4(up) + ck_load4(down));
        a1 += c * (ck_load4(up + 4) + ck_load4(down + 4));
        a2 += c * (ck_load4(up + 8) + ck_load4(down + 8));
        a3 += c * (ck_load4(up + 12) + ck_load4(down + 12));
    }
    for (long e = d; e <= below; e++) {
        up -= 16;
        ck_v4 c = { t[e], t[e], t[e], t[e] };
        a0 += c * ck_load4(up); a1 += c * ck_load4(up + 4); a2 += c * ck_load4(up + 8); a3 += c * ck_load4(up + 12);
    }
    for (long e = d; e <= above; e++) {
        down += 16;
        ck_v4 c = { t[e], t[e], t[e], t[e] };
        a0 += c * ck_load4(down); a1 += c * ck_load4(down + 4); a2 += c * ck_load4(down + 8); a3 += c * ck_load4(down + 12);
    }
    double *o = dst + j0 * n0 + k;
    for (int c = 0; c < 4; c++) {
        o[(long)c * n0] = a0[c];
        o[(long)(c + 4) * n0] = a1[c];
        o[(long)(c + 8) * n0] = a2[c];
        o[(long)(c + 12) * n0] = a3[c];
    }
}

/* One output of one column read in place (row stride n1), the same sum order as the blocks. */
static inline __attribute__((always_inline))
double ck_single(const double *src, long n0, long n1, long k, long j, const double *t, long w) {
    long below = ck_min(w, k), above = ck_min(w, n0 - 1 - k), both = ck_min(below, above);
    const double *centre = src + k * n1 + j, *up = centre, *down = centre;
    double a = t[0] * centre[0];
    long d = 1;
    for (; d <= both; d++) { up -= n1; down += n1; a += t[d] * (up[0] + down[0]); }
    for (long e = d; e <= below; e++) { up -= n1; a += t[e] * up[0]; }
    for (long e = d; e <= above; e++) { down += n1; a += t[e] * down[0]; }
    return a;
}

static inline __attribute__((always_inline))
void ck_convolve_body(const double *src, double *dst, long n0, long n1, const double *t, long w,
                      long k_begin, long k_end, double *pack) {
    long first = ck_max(0, k_begin - w), last = ck_min(n0 - 1, k_end - 1 + w);
    long j0 = 0;
    for (; j0 + 16 <= n1; j0 += 16) {
        for (long r = first; r <= last; r++) __builtin_memcpy(pack + 16 * r, src + r * n1 + j0, 16 * sizeof(double));
        for (long k = k_begin; k < k_end; k++) ck_block16(pack, dst, n0, k, j0, t, w);
    }
    for (; j0 < n1; j0++) {
        for (long k = k_begin; k < k_end; k++) dst[j0 * n0 + k] = ck_single(src, n0, n1, k, j0, t, w);
    }
}

void ck_convolve_rows_transposed_portable(const double *src, double *dst, long n0, long n1, const double *taps,
                                          long w, long k_begin, long k_end, double *pack) {
    ck_convolve_body(src, dst, n0, n1, taps, w, k_begin, k_end, pack);
}

// MARK: The proximal update of the grid JKO step (EntropicSinkhorn.iterateProximalScalings)
//
// Per entry one log and two exps, the log by the odd series of atanh, the exps by the
// polynomial of ck_exp: branch-free, so one body written with 4-wide vectors serves the
// portable function and the AVX2 one with the same bits; the residual in four partial sums
// (lane i mod 4), combined as (s0 + s1) + (s2 + s3).

typedef long long ck_v4i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) ck_v4 ck_splat(double x) { ck_v4 v = { x, x, x, x }; return v; }

/* log x for normal positive finite x: x = 2^k m, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
   s = (m - 1) / (m + 1), |s| <= 0.172, by its odd series to s^23 (the next term is below 1e-19),
   k log 2 with log 2 split so that k * ln2High is exact. Within a few ulps (tested against glibc). */
static inline __attribute__((always_inline)) ck_v4 ck_log4(ck_v4 x) {
    ck_v4i bits;
    __builtin_memcpy(&bits, &x, sizeof bits);
    const ck_v4i mantissa = { 0x000FFFFFFFFFFFFFLL, 0x000FFFFFFFFFFFFFLL, 0x000FFFFFFFFFFFFFLL, 0x000FFFFFFFFFFFFFLL };
    const ck_v4i one = { 0x3FF0000000000000LL, 0x3FF0000000000000LL, 0x3FF0000000000000LL, 0x3FF0000000000000LL };
    const ck_v4i two52 = { 0x4330000000000000LL, 0x4330000000000000LL, 0x4330000000000000LL, 0x4330000000000000LL };
    ck_v4i mbits = (bits & mantissa) | one;
    /* the biased exponent (bits >> 52, at most 2047) as a double, exactly: 2^52 + e - (2^52 + 1023) */
    ck_v4i ebits = ((ck_v4i)((unsigned long long __attribute__((vector_size(32))))bits >> 52)) | two52;
    ck_v4 m, e;
    __builtin_memcpy(&m, &mbits, sizeof m);
    __builtin_memcpy(&e, &ebits, sizeof e);
    ck_v4 k = e - ck_splat(4503599627371519.0);
    ck_v4i high = m > ck_splat(1.4142135623730951);
    ck_v4 half = ck_splat(0.5), unit = ck_splat(1.0);
    ck_v4 mh = m * half, k1 = k + unit;
    ck_v4i mhb, mb, k1b, kb;
    __builtin_memcpy(&mhb, &mh, sizeof mhb); __builtin_memcpy(&mb, &m, sizeof mb);
    __builtin_memcpy(&k1b, &k1, sizeof k1b); __builtin_memcpy(&kb, &k, sizeof kb);
    mb = (high & mhb) | (~high & mb);
    kb = (high & k1b) | (~high & kb);
    __builtin_memcpy(&m, &mb, sizeof m);
    __builtin_memcpy(&k, &kb, sizeof k);
    ck_v4 s = (m - unit) / (m + unit);
    ck_v4 s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
    ck_v4 p0 = unit + s2 * ck_splat(1.0 / 3.0);
    ck_v4 p1 = ck_splat(1.0 / 5.0) + s2 * ck_splat(1.0 / 7.0);
    ck_v4 p2 = ck_splat(1.0 / 9.0) + s2 * ck_splat(1.0 / 11.0);
    ck_v4 p3 = ck_splat(1.0 / 13.0) + s2 * ck_splat(1.0 / 15.0);
    ck_v4 p4 = ck_splat(1.0 / 17.0) + s2 * ck_splat(1.0 / 19.0);
    ck_v4 p5 = ck_splat(1.0 / 21.0) + s2 * ck_splat(1.0 / 23.0);
    ck_v4 series = (p0 + s4 * p1) + s8 * ((p2 + s4 * p3) + s8 * (p4 + s4 * p5));
    return k * ck_splat(0.693147180369123816490) + (ck_splat(2.0) * s * series + k * ck_splat(1.90821492927058770002e-10));
}

/* ck_exp on four lanes, the same operations (no branch: the clamps and the underflow are selects). */
static inline __attribute__((always_inline)) ck_v4 ck_exp4v(ck_v4 x) {
    ck_v4 lo = ck_splat(-708.0), hi = ck_splat(709.0), magic = ck_splat(CK_MAGIC);
    ck_v4i below = x < lo, above = x > hi;
    ck_v4i xb, lob, hib;
    __builtin_memcpy(&xb, &x, sizeof xb); __builtin_memcpy(&lob, &lo, sizeof lob); __builtin_memcpy(&hib, &hi, sizeof hib);
    ck_v4i xcb = (below & lob) | (above & hib) | (~(below | above) & xb);
    ck_v4 xc;
    __builtin_memcpy(&xc, &xcb, sizeof xc);
    ck_v4 t = xc * ck_splat(1.4426950408889634) + magic;
    ck_v4 k = t - magic;
    ck_v4 r = (xc - k * ck_splat(0.693147180369123816490)) - k * ck_splat(1.90821492927058770002e-10);
    ck_v4 r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    ck_v4 c0 = ck_splat(1.0) + r;
    ck_v4 c1 = ck_splat(0.5) + r * ck_splat(1.0 / 6.0);
    ck_v4 c2 = ck_splat(1.0 / 24.0) + r * ck_splat(1.0 / 120.0);
    ck_v4 c3 = ck_splat(1.0 / 720.0) + r * ck_splat(1.0 / 5040.0);
    ck_v4 c4 = ck_splat(1.0 / 40320.0) + r * ck_splat(1.0 / 362880.0);
    ck_v4 c5 = ck_splat(1.0 / 3628800.0) + r * ck_splat(1.0 / 39916800.0);
    ck_v4 c6 = ck_splat(1.0 / 479001600.0) + r * ck_splat(1.0 / 6227020800.0);
    ck_v4 p = (c0 + r2 * c1) + r4 * (c2 + r2 * c3) + r8 * ((c4 + r2 * c5) + r4 * c6);
    ck_v4i tb, mgb;
    __builtin_memcpy(&tb, &t, sizeof tb); __builtin_memcpy(&mgb, &magic, sizeof mgb);
    const ck_v4i bias = { 1023, 1023, 1023, 1023 };
    ck_v4i sb = (ck_v4i)((unsigned long long __attribute__((vector_size(32))))(tb - mgb + bias) << 52);
    ck_v4 scale;
    __builtin_memcpy(&scale, &sb, sizeof scale);
    ck_v4 value = p * scale;
    ck_v4i vb;
    __builtin_memcpy(&vb, &value, sizeof vb);
    vb = vb & ~below;   /* x < -708 gives exactly 0; NaN compares false and stays NaN */
    __builtin_memcpy(&value, &vb, sizeof value);
    return value;
}

static inline __attribute__((always_inline)) ck_v4 ck_load4v(const double *p, long count) {
    ck_v4 v = ck_splat(0.0);
    for (long l = 0; l < count; l++) v[l] = p[l];
    return v;
}

static inline __attribute__((always_inline))
double ck_proximal_body(double *p, double *u, const double *z, const double *q, const double *la, long n,
                        double cv, double cu, double w, double one_minus_theta, double *high_out) {
    ck_v4 sum = ck_splat(0.0), high = ck_splat(-__builtin_inf());
    for (long i = 0; i < n; i += 4) {
        long count = n - i < 4 ? n - i : 4;
        ck_v4 zi = count == 4 ? ck_load4(z + i) : ck_load4v(z + i, count);
        ck_v4 pi = count == 4 ? ck_load4(p + i) : ck_load4v(p + i, count);
        ck_v4 ui = count == 4 ? ck_load4(u + i) : ck_load4v(u + i, count);
        ck_v4 qi = count == 4 ? ck_load4(q + i) : ck_load4v(q + i, count);
        ck_v4 lai = count == 4 ? ck_load4(la + i) : ck_load4v(la + i, count);
        ck_v4 tiny = ck_splat(1e-280);
        ck_v4i small = zi < tiny;
        ck_v4i zb, tb;
        __builtin_memcpy(&zb, &zi, sizeof zb); __builtin_memcpy(&tb, &tiny, sizeof tb);
        zb = (small & tb) | (~small & zb);
        ck_v4 zc;
        __builtin_memcpy(&zc, &zb, sizeof zc);
        ck_v4 target = qi - ck_splat(one_minus_theta) * (ck_log4(zc) - ck_splat(cv));
        ck_v4 u_new = ck_exp4v(target + lai - ck_splat(cu));
        ck_v4 diff = ui - u_new;
        ck_v4i db;
        __builtin_memcpy(&db, &diff, sizeof db);
        const ck_v4i abs_mask = { 0x7FFFFFFFFFFFFFFFLL, 0x7FFFFFFFFFFFFFFFLL, 0x7FFFFFFFFFFFFFFFLL, 0x7FFFFFFFFFFFFFFFLL };
        db &= abs_mask;
        __builtin_memcpy(&diff, &db, sizeof diff);
        ck_v4 next = pi + ck_splat(w) * (target - pi);
        ck_v4 exponent = next + lai;
        ck_v4 un = ck_exp4v(exponent - ck_splat(cu));
        ck_v4 term = zi * diff;
        if (count == 4) {
            sum += term;
            high = (ck_v4)(((ck_v4i)(exponent > high) & (ck_v4i)exponent) | (~(ck_v4i)(exponent > high) & (ck_v4i)high));
            __builtin_memcpy(p + i, &next, sizeof next);
            __builtin_memcpy(u + i, &un, sizeof un);
        } else {
            for (long l = 0; l < count; l++) {
                sum[l] += term[l];
                if (exponent[l] > high[l]) high[l] = exponent[l];
                p[i + l] = next[l];
                u[i + l] = un[l];
            }
        }
    }
    double top = high[0];
    for (int l = 1; l < 4; l++) if (high[l] > top) top = high[l];
    *high_out = top;
    return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

double ck_proximal_update_portable(double *p, double *u, const double *z, const double *q, const double *la, long n,
                                   double cv, double cu, double w, double one_minus_theta, double *high_out) {
    return ck_proximal_body(p, u, z, q, la, n, cv, cu, w, one_minus_theta, high_out);
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

__attribute__((target("avx2")))
static inline __m256d ck_exp4(__m256d x) {
    const __m256d lo = _mm256_set1_pd(-708.0), hi = _mm256_set1_pd(709.0);
    const __m256d magic = _mm256_set1_pd(CK_MAGIC);
    // max(lo, x) and min(hi, .) return their second operand for NaN, so NaN stays NaN as in Swift.
    __m256d xc = _mm256_min_pd(hi, _mm256_max_pd(lo, x));
    __m256d t = _mm256_add_pd(_mm256_mul_pd(xc, _mm256_set1_pd(1.4426950408889634)), magic);
    __m256d k = _mm256_sub_pd(t, magic);
    __m256d r = _mm256_sub_pd(_mm256_sub_pd(xc, _mm256_mul_pd(k, _mm256_set1_pd(0.693147180369123816490))),
                              _mm256_mul_pd(k, _mm256_set1_pd(1.90821492927058770002e-10)));
    __m256d r2 = _mm256_mul_pd(r, r), r4 = _mm256_mul_pd(r2, r2), r8 = _mm256_mul_pd(r4, r4);
#define CK_TERM(a, b) _mm256_add_pd(_mm256_set1_pd(a), _mm256_mul_pd(r, _mm256_set1_pd(b)))
    __m256d c0 = _mm256_add_pd(_mm256_set1_pd(1.0), r);
    __m256d c1 = CK_TERM(0.5, 1.0 / 6.0);
    __m256d c2 = CK_TERM(1.0 / 24.0, 1.0 / 120.0);
    __m256d c3 = CK_TERM(1.0 / 720.0, 1.0 / 5040.0);
    __m256d c4 = CK_TERM(1.0 / 40320.0, 1.0 / 362880.0);
    __m256d c5 = CK_TERM(1.0 / 3628800.0, 1.0 / 39916800.0);
    __m256d c6 = CK_TERM(1.0 / 479001600.0, 1.0 / 6227020800.0);
#undef CK_TERM
    __m256d p = _mm256_add_pd(
        _mm256_add_pd(_mm256_add_pd(c0, _mm256_mul_pd(r2, c1)), _mm256_mul_pd(r4, _mm256_add_pd(c2, _mm256_mul_pd(r2, c3)))),
        _mm256_mul_pd(r8, _mm256_add_pd(_mm256_add_pd(c4, _mm256_mul_pd(r2, c5)), _mm256_mul_pd(r4, c6))));
    __m256i kbits = _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(magic));
    __m256i sbits = _mm256_slli_epi64(_mm256_add_epi64(kbits, _mm256_set1_epi64x(1023)), 52);
    __m256d value = _mm256_mul_pd(p, _mm256_castsi256_pd(sbits));
    __m256d under = _mm256_cmp_pd(x, lo, _CMP_LT_OQ);
    return _mm256_andnot_pd(under, value);   // x < -708 gives exactly 0, NaN stays NaN
}

__attribute__((target("avx2")))
static double ck_exp_tile_sum_avx2(const double *c, const double *t, long n, double shift, double inv_eps,
                                   int weighted, double *weighted_out) {
    __m256d s = _mm256_setzero_pd(), w = _mm256_setzero_pd();
    const __m256d sh = _mm256_set1_pd(shift), ie = _mm256_set1_pd(inv_eps);
    long j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d cj = _mm256_loadu_pd(c + j);
        __m256d e = ck_exp4(_mm256_mul_pd(_mm256_add_pd(_mm256_sub_pd(_mm256_loadu_pd(t + j), cj), sh), ie));
        s = _mm256_add_pd(s, e);
        w = _mm256_add_pd(w, _mm256_mul_pd(e, cj));
    }
    double sl[4], wl[4];
    _mm256_storeu_pd(sl, s);
    _mm256_storeu_pd(wl, w);
    for (; j < n; j++) {
        double e = ck_exp((t[j] - c[j] + shift) * inv_eps);
        sl[0] += e;
        wl[0] += e * c[j];
    }
    if (weighted) *weighted_out = (wl[0] + wl[1]) + (wl[2] + wl[3]);
    return (sl[0] + sl[1]) + (sl[2] + sl[3]);
}

static int ck_avx2_state = -1;   /* -1 unknown; every thread computes and stores the same value */

int ck_uses_avx2(void) {
    int state = __atomic_load_n(&ck_avx2_state, __ATOMIC_RELAXED);
    if (state < 0) {
        __builtin_cpu_init();
        state = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&ck_avx2_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

double ck_exp_tile_sum(const double *c, const double *t, long n, double shift, double inv_eps,
                       int weighted, double *weighted_out) {
    if (ck_uses_avx2()) return ck_exp_tile_sum_avx2(c, t, n, shift, inv_eps, weighted, weighted_out);
    return ck_exp_tile_sum_portable(c, t, n, shift, inv_eps, weighted, weighted_out);
}

__attribute__((target("avx2")))
static void ck_convolve_rows_transposed_avx2(const double *src, double *dst, long n0, long n1, const double *taps,
                                             long w, long k_begin, long k_end, double *pack) {
    ck_convolve_body(src, dst, n0, n1, taps, w, k_begin, k_end, pack);
}

void ck_convolve_rows_transposed(const double *src, double *dst, long n0, long n1, const double *taps,
                                 long w, long k_begin, long k_end, double *pack) {
    if (ck_uses_avx2()) ck_convolve_rows_transposed_avx2(src, dst, n0, n1, taps, w, k_begin, k_end, pack);
    else ck_convolve_rows_transposed_portable(src, dst, n0, n1, taps, w, k_begin, k_end, pack);
}

__attribute__((target("avx2")))
static double ck_proximal_update_avx2(double *p, double *u, const double *z, const double *q, const double *la, long n,
                                      double cv, double cu, double w, double one_minus_theta, double *high_out) {
    return ck_proximal_body(p, u, z, q, la, n, cv, cu, w, one_minus_theta, high_out);
}

double ck_proximal_update(double *p, double *u, const double *z, const double *q, const double *la, long n,
                          double cv, double cu, double w, double one_minus_theta, double *high_out) {
    if (ck_uses_avx2()) return ck_proximal_update_avx2(p, u, z, q, la, n, cv, cu, w, one_minus_theta, high_out);
    return ck_proximal_update_portable(p, u, z, q, la, n, cv, cu, w, one_minus_theta, high_out);
}

#else

int ck_uses_avx2(void) { return 0; }

double ck_exp_tile_sum(const double *c, const double *t, long n, double shift, double inv_eps,
                       int weighted, double *weighted_out) {
    return ck_exp_tile_sum_portable(c, t, n, shift, inv_eps, weighted, weighted_out);
}

void ck_convolve_rows_transposed(const double *src, double *dst, long n0, long n1, const double *taps,
                                 long w, long k_begin, long k_end, double *pack) {
    ck_convolve_rows_transposed_portable(src, dst, n0, n1, taps, w, k_begin, k_end, pack);
}

double ck_proximal_update(double *p, double *u, const double *z, const double *q, const double *la, long n,
                          double cv, double cu, double w, double one_minus_theta, double *high_out) {
    return ck_proximal_update_portable(p, u, z, q, la, n, cv, cu, w, one_minus_theta, high_out);
}

#endif
