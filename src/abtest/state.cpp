// \brief STATE (Zhou et al., KDD 2024): Student's-t regression of the outcome on [1, T, g] fitted by variational EM,
// effect = the coefficient of T (the t-model location shift); spec Part A.3 to A.6.
//
// Model: y_i = alpha + delta T_i + gamma g_i (+ eta T_i (g_i - gbar)) + e_i, e_i iid t(0, sigma^2, nu), written as a
// Gaussian scale mixture with u_i ~ Gamma(nu/2, nu/2). The EM (A.4), with r_i = y_i - z_i' beta and q_i =
// r_i^2/sigma^2:
//   start   beta, sigma^2 = OLS and mean(r^2); nu = abtest.state.nu
//   E-step  a = (nu + 1)/2, b_i = nu/2 + q_i/2, w_i = a / b_i = (nu + 1)/(nu + q_i), l_i = psi(a) - ln b_i
//   M-step  beta = (sum w z z')^-1 sum w z y; sigma^2 = mean(w (y - z' beta)^2);
//           nu = the root of F(nu) = ln(nu/2) - psi(nu/2) + 1 + mean(l - w) on log nu, clamped to [nu_min, nu_max]
//           (F decreases strictly; safeguarded Newton inside a bisection bracket), or nu fixed.
// Every sum is additive and all-reduced: per iteration one all-reduce for the E-step sums with the M-step's normal
// equations, one for sigma^2. The observed log-likelihood sum ln St(y | z' beta, sigma^2, nu), evaluated in the E-step
// pass, must not decrease (it is the ELBO at the exact E-step); its trace goes into details.loglik_trace. Stop when
// its relative change, max_j |d beta_j| rms(z_j) / sigma and |d ln nu| are all below abtest.state.tol.
// SEs (A.6): model-based sigma^2 (nu+3)/(nu+1) (Z'Z)^-1, and the sandwich A^-1 B A^-1 over every estimated
// parameter (beta, sigma^2, nu, and a ratio metric's linearisation R_g, Dbar_g; see sandwich() below). The spec's
// form with sigma^2 and nu held fixed (score psi(r) = (nu+1) r / (nu + q)) is kept in details.se_sandwich_fixed_scale
// and used when the full A is not positive definite; when that one is not either, the model-based SE, with a warning.
// A point mass in the outcome (most units at one value: zero-inflated spend, a 0/1 metric) makes the t-likelihood
// unbounded as sigma -> 0; when sigma^2 falls below kCollapse of sum w (y - ybar)^2 / sum w the EM stops with a warning
// (details.degenerate = true, converged = false) instead of iterating towards sigma^2 = 0.
#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max, std::min
#include <cmath>      // for std::log, std::log1p, std::lgamma, std::sqrt, std::exp, std::fabs

#include "abtest/internal.h"    // for Design, make_design, fill_inference, DFCL_REGISTER_ESTIMATOR
#include "core/special.h"     // for digamma, trigamma, log_minus_digamma
#include "abtest/stats.h"       // for NormalEquations, cholesky
#include "core/error.h"         // for DataError
#include "dist/communicator.h"  // for Communicator

namespace dfcl::abtest {
namespace {

// sigma^2 below this share of the weighted mean square of the outcome about its mean, sum w (y - ybar)^2 / sum w
// (over the units the fit currently believes: outliers are weighted out), i.e. sigma below 1e-10 of the outcome's
// spread: the fit is collapsing onto a point mass of the outcome. A t-fit of real noise stops far above it; a point
// mass drives sigma^2 to 0 through it. Not the OLS residual variance: outliers a billion noise-scales out inflate
// that by 1e15 and more, and the robust sigma^2 falls below any fixed share of it (test
// ExtremeOutliersAreNotMistakenForAPointMass).
constexpr double kCollapse = 1e-20;

// The M-step's nu: the root of ln(nu/2) - psi(nu/2) + c = 0 in [lo, hi] (c <= 0 in exact arithmetic).
double solve_nu(double c, double lo, double hi, double start) {
  auto F = [&](double u) { return log_minus_digamma(std::exp(u) / 2) + c; };  // decreasing in u = ln nu
  double a = std::log(lo), b = std::log(hi);
  if (F(a) <= 0) return lo;
  if (F(b) >= 0) return hi;
  double u = std::min(std::max(std::log(start), a), b);
  for (int it = 0; it < 200; ++it) {
    const double f = F(u), nu = std::exp(u);
    if (f == 0) break;
    if (f > 0)
      a = u;
    else
      b = u;
    const double slope = 1 - nu / 2 * trigamma(nu / 2);  // dF/du = nu (1/nu - psi_1(nu/2) / 2) < 0
    double next = u - f / slope;
    if (!(next > a && next < b)) next = 0.5 * (a + b);
    if (std::fabs(next - u) < 1e-14 * std::max(1.0, std::fabs(u)) || b - a < 1e-15) {
      u = next;
      break;
    }
    u = next;
  }
  return std::exp(u);
}

// The E-step pass over this rank's n units at (beta, sigma2, nu), the loop that dominates STATE's time: into `wls`
// (k = 3, or 4 with the interaction; three extras) it adds sum w z z', sum w z yc, sum w, and the extras
// sum log1p(q / nu), sum w, sum w yc^2, with yc = y - centre, r = yc - z' beta, q = r^2 / sigma2,
// w = (nu + 1)/(nu + q); z = [1, T, g - gbar (, T (g - gbar))] as in the Design.
// Blocks of kBlock units: a loop without calls (the design unrolled: T^2 = T, so z z' has only 6 distinct sums, 8 with
// the interaction T (g - gbar)), which the compiler vectorises under `omp simd` (-fopenmp-simd; the reduction is
// summed lane by lane, a fixed order for a given n), keeps q; then sum log(nu + q) as the log of products of four
// factors (one log call per four units: the log is most of a scalar pass), less n log nu. A product that could
// overflow (q beyond ~1e75) takes the four logs instead. For a large nu (q / nu tiny) that subtraction would cancel
// the digits that matter, so there log1p(q / nu) is summed unit by unit (a loop-invariant choice).
template <bool kInteraction>
void estep_sums(const Design& d, double centre, const uint8_t* t, const double* g, const double* y, int64_t n,
                const double* beta, double sigma2, double nu, NormalEquations& wls) {
  constexpr int kBlock = 512;
  double qbuf[kBlock];
  const double b0 = beta[0], b1 = beta[1], b2 = beta[2], b3 = kInteraction ? beta[3] : 0.0;
  const double inv_s2 = 1 / sigma2, inv_nu = 1 / nu, nu1 = nu + 1, gbar = d.gbar, ybar = centre;
  const bool cheap_log = nu <= 1e4;
  double s_w = 0, s_wt = 0, s_wg = 0, s_wtg = 0, s_wgg = 0, s_wtgg = 0;  // sums of w times 1, T, gc, T gc, gc^2, T gc^2
  double s_wy = 0, s_wty = 0, s_wgy = 0, s_wtgy = 0, s_wyy = 0, s_log = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int m = int(std::min<int64_t>(kBlock, n - i0));
    const uint8_t* tb = t + i0;
    const double *gb = g + i0, *yb = y + i0;
    double a_w = 0, a_wt = 0, a_wg = 0, a_wtg = 0, a_wgg = 0, a_wtgg = 0, a_wy = 0, a_wty = 0, a_wgy = 0, a_wtgy = 0,
           a_wyy = 0;
#pragma omp simd reduction(+ : a_w, a_wt, a_wg, a_wtg, a_wgg, a_wtgg, a_wy, a_wty, a_wgy, a_wtgy, a_wyy)
    for (int j = 0; j < m; ++j) {
      const double ti = double(tb[j]), gc = gb[j] - gbar, yc = yb[j] - ybar;  // the Analysis checked t is 0 or 1
      const double r = yc - b0 - b1 * ti - b2 * gc - (kInteraction ? b3 * ti * gc : 0.0);
      const double q = r * r * inv_s2, w = nu1 / (nu + q);
      const double wt = w * ti, wg = w * gc, wtg = wt * gc;
      qbuf[j] = q;
      a_w += w, a_wt += wt, a_wg += wg, a_wtg += wtg, a_wgg += wg * gc;
      a_wy += w * yc, a_wty += wt * yc, a_wgy += wg * yc, a_wyy += w * yc * yc;
      if (kInteraction) a_wtgg += wtg * gc, a_wtgy += wtg * yc;
    }
    s_w += a_w, s_wt += a_wt, s_wg += a_wg, s_wtg += a_wtg, s_wgg += a_wgg, s_wtgg += a_wtgg;
    s_wy += a_wy, s_wty += a_wty, s_wgy += a_wgy, s_wtgy += a_wtgy, s_wyy += a_wyy;
    double l = 0;
    int j = 0;
    if (cheap_log) {
      for (; j + 4 <= m; j += 4) {
        const double x0 = nu + qbuf[j], x1 = nu + qbuf[j + 1], x2 = nu + qbuf[j + 2], x3 = nu + qbuf[j + 3];
        const double p = (x0 * x1) * (x2 * x3);
        l += p < 1e300 ? std::log(p) : std::log(x0) + std::log(x1) + std::log(x2) + std::log(x3);
      }
      for (; j < m; ++j) l += std::log(nu + qbuf[j]);
    } else {
      for (; j < m; ++j) l += std::log1p(qbuf[j] * inv_nu);
    }
    s_log += l;
  }
  if (cheap_log) s_log -= double(n) * std::log(nu);  // sum log1p(q / nu) = sum log(nu + q) - n log nu
  double* S = wls.raw();  // upper triangle of Z'WZ row by row | Z'Wy | sum w | extras 0 1 2
  if (!kInteraction) {    // 00 01 02 11 12 22 (T^2 = T)
    const double zz[] = {s_w, s_wt, s_wg, s_wt, s_wtg, s_wgg, s_wy, s_wty, s_wgy, s_w};
    for (int c = 0; c < 10; ++c) S[c] += zz[c];
  } else {  // 00 01 02 03 11 12 13 22 23 33, z3 = T gc
    const double zz[] = {s_w,    s_wt,   s_wg,  s_wtg, s_wt, s_wtg, s_wtg, s_wgg, s_wtgg,
                         s_wtgg, s_wy,   s_wty, s_wgy, s_wtgy, s_w};
    for (int c = 0; c < 15; ++c) S[c] += zz[c];
  }
  wls.extra(0) += s_log, wls.extra(1) += s_w, wls.extra(2) += s_wyy;
}

// The sandwich SEs of the T coefficient (spec A.6, extended): the M-estimation variance A^-1 B A^-1 over every
// estimated parameter, theta = (beta / sigma, sigma2 / sigma2-hat, nu / nu-hat) (linear rescalings, so the SE is
// unchanged and A is O(1) in every entry), A = -sum d2 l_i / d theta2 (the observed information), B = sum s_i s_i'
// with s_i = d l_i / d theta. With e = r / sigma, q = e^2, D = nu + q, w = (nu + 1) / D, L = log1p(q / nu):
//   s_beta  = w e z                          -H_beta,beta   = (nu + 1)(nu - q) / D^2 z z'
//   s_sigma = (w q - 1) / 2                  -H_beta,sigma  = (nu + 1) nu e / D^2 z
//   s_nu    = nu c' - nu L / 2 + (nu + 1) q / (2 D)          -H_beta,nu = -nu e (q - 1) / D^2 z
//   -H_sigma,sigma = ((nu + 1) q (2 nu + q) / D^2 - 1) / 2     -H_sigma,nu = -nu q (q - 1) / (2 D^2)
//   -H_nu,nu = -nu^2 c'' - nu q / (2 D) + q (nu^2 + 2 nu + q) / (2 D^2)
// where c(nu) = ln Gamma((nu + 1)/2) - ln Gamma(nu/2) - ln(nu) / 2. Under a symmetric residual law the beta block
// decouples (the odd cross terms have mean 0) and se_full ~ se_beta; under a skewed one the estimation of sigma2
// and nu moves delta-hat a little, and only se_full carries it. nu held fixed (given, or at a bound) leaves the nu
// row out.
// A ratio metric adds the linearisation's own estimates eta = (R_g, Dbar_g) per arm (stacked estimating equations
// m_i = (Y_i - R_g D_i, D_i - Dbar_g) on arm g's units): W_i moves with them, by dW/dR_g = 1 - D_i / Dbar_g and
// dW/dDbar_g = -(W_i - R_g) / Dbar_g, and STATE's weights are not flat in D, so delta-hat moves too (for DIM on W
// this term is 0: the mean of W in arm g is R_g exactly). The influence of unit i becomes s_i + J a_i, with
// J = sum_j d s_j / d eta = sum_j (d s_j / d e) (d e_j / d eta) (d s / d e = (-H_beta,beta / z', -H_beta,sigma / z',
// -H_beta,nu / z')) and a_i = (-sum d m / d eta)^-1 m_i = ((W_i - R_g) / n_g, (D_i - Dbar_g) / n_g) on arm g; so
// B = sum (s + J a)(s + J a)' = S_ss + J S_as + S_as' J' + J S_aa J', every part a sum over units (one pass, one
// all-reduce). On the ratio simulation this takes STATE's SE/SD from 0.80 to ~1 (docs/abtest.md).
// se_beta is the beta block alone with sigma2, nu and eta held fixed (the spec's option 2). NaN where A is not
// positive definite. Collective.
struct Sandwich {
  double se_full = NAN, se_beta = NAN;
};
Sandwich sandwich(const Analysis& an, const Design& d, const std::vector<double>& g, const std::vector<double>& beta,
                  double sigma2, double nu, bool nu_free) {
  const Units& units = an.units();
  const std::vector<double>& y = an.outcome();
  const int64_t n = units.size();
  const bool ratio = an.ratio();
  const int k = d.k, p = k + 1 + (nu_free ? 1 : 0), h = ratio ? 4 : 0;  // eta = (R_0, Dbar_0, R_1, Dbar_1)
  const size_t tri = size_t(p) * size_t(p + 1) / 2;
  // A (upper triangle), S_ss (upper triangle), J (p x h), S_as (h x p), S_aa (h x h).
  const size_t oA = 0, oB = tri, oJ = 2 * tri, oC = oJ + size_t(p) * h, oM = oC + size_t(h) * p;
  std::vector<double> sums(oM + size_t(h) * h, 0.0);
  const double sigma = std::sqrt(sigma2), nu1 = nu + 1;
  const double c1 = 0.5 * (digamma(nu1 / 2) - digamma(nu / 2) - 1 / nu);              // c'(nu)
  const double c2 = 0.25 * (trigamma(nu1 / 2) - trigamma(nu / 2)) + 0.5 / (nu * nu);  // c''(nu)
  const Linearisation& lin = an.linearisation();
  double z[4], s[6], ds[6], hm[6][6];
  for (int64_t i = 0; i < n; ++i) {
    d.row(units.t[i], g[i], z);
    double r = y[i] - d.ybar;
    for (int j = 0; j < k; ++j) r -= z[j] * beta[size_t(j)];
    const double e = r / sigma, q = e * e, D = nu + q, D2 = D * D, w = nu1 / D;
    // s, d s / d e and hm = -H (upper triangle used), in the order beta, sigma, nu.
    const double hbb = nu1 * (nu - q) / D2, hbs = nu1 * nu * e / D2, hbn = -nu * e * (q - 1) / D2;
    for (int a = 0; a < k; ++a) {
      s[a] = w * e * z[a], ds[a] = hbb * z[a];
      for (int b = a; b < k; ++b) hm[a][b] = hbb * z[a] * z[b];
      hm[a][k] = hbs * z[a];
      if (nu_free) hm[a][k + 1] = hbn * z[a];
    }
    s[k] = (w * q - 1) / 2, ds[k] = hbs;
    hm[k][k] = (nu1 * q * (2 * nu + q) / D2 - 1) / 2;
    if (nu_free) {
      s[k + 1] = nu * c1 - nu * std::log1p(q / nu) / 2 + nu1 * q / (2 * D), ds[k + 1] = hbn;
      hm[k][k + 1] = -nu * q * (q - 1) / (2 * D2);
      hm[k + 1][k + 1] = -nu * nu * c2 - nu * q / (2 * D) + q * (nu * nu + 2 * nu + q) / (2 * D2);
    }
    double* A = sums.data() + oA;
    double* B = sums.data() + oB;
    for (int a = 0; a < p; ++a)
      for (int b = a; b < p; ++b) *A++ += hm[a][b], *B++ += s[a] * s[b];
    if (ratio) {
      const int arm = units.t[i] ? 1 : 0, c0 = 2 * arm;  // this unit's columns of eta
      const double dev = y[i] - lin.r[arm], nk = double(an.global_n(arm));
      const double de[2] = {(1 - units.d[i] / lin.dbar[arm]) / sigma, -dev / (lin.dbar[arm] * sigma)};
      const double ai[2] = {dev / nk, (units.d[i] - lin.dbar[arm]) / nk};
      double* J = sums.data() + oJ;
      double* C = sums.data() + oC;
      double* M = sums.data() + oM;
      for (int a = 0; a < p; ++a)
        for (int c = 0; c < 2; ++c) J[size_t(a) * h + c0 + c] += ds[a] * de[c], C[size_t(c0 + c) * p + a] += ai[c] * s[a];
      for (int c = 0; c < 2; ++c)
        for (int b = 0; b < 2; ++b) M[size_t(c0 + c) * h + c0 + b] += ai[c] * ai[b];
    }
  }
  an.comm().allreduce_values(sums);
  auto block = [&](size_t off, int m) {  // the leading m x m block of a p x p upper triangle, both halves
    std::vector<double> f(size_t(m) * m);
    for (int a = 0, idx = 0; a < p; ++a)
      for (int b = a; b < p; ++b, ++idx)
        if (a < m && b < m) f[size_t(a) * m + b] = f[size_t(b) * m + a] = sums[off + size_t(idx)];
    return f;
  };
  std::vector<double> bfull = block(oB, p);
  if (ratio) {  // + J S_as + S_as' J' + J S_aa J'
    const double* J = sums.data() + oJ;
    const double* C = sums.data() + oC;
    const double* M = sums.data() + oM;
    for (int a = 0; a < p; ++a)
      for (int b = 0; b < p; ++b) {
        double v = 0;
        for (int c = 0; c < h; ++c) {
          v += J[size_t(a) * h + c] * C[size_t(c) * p + b] + C[size_t(c) * p + a] * J[size_t(b) * h + c];
          for (int c2 = 0; c2 < h; ++c2) v += J[size_t(a) * h + c] * M[size_t(c) * h + c2] * J[size_t(b) * h + c2];
        }
        bfull[size_t(a) * p + b] += v;
      }
  }
  auto se_of = [&](int m, const std::vector<double>& bm) {  // sigma sqrt((A^-1 B A^-1)_TT) over m parameters
    std::vector<double> la = block(oA, m);
    if (cholesky(la, m) >= 0) return double(NAN);
    const std::vector<double> ainv = cholesky_inverse(la, m);
    return sigma * std::sqrt(mat_mul(mat_mul(ainv, bm, m), ainv, m)[size_t(m) + 1]);
  };
  return Sandwich{se_of(p, bfull), se_of(k, block(oB, k))};
}

class State : public Estimator {
 public:
  std::string name() const override { return "state"; }
  bool applicable(const Analysis& a) const override { return a.num_features() > 0; }
  Estimate estimate(Analysis& a) const override {
    const Options& o = a.options();
    const std::vector<double>& g = a.prediction();
    const std::vector<double>& y = a.outcome();
    const Units& units = a.units();
    const std::string where = where_prefix(units);
    dist::Communicator& comm = a.comm();
    const int64_t n = units.size();
    const std::string covariate = "g (cross-fitted " + a.options().predictor + ")";
    const double balance_z =
        check_balance(arm_moments(y.data(), g.data(), units.t.data(), n, a.comm()), a, "state", covariate, true);
    const Design d = make_design(a, g, o.state_interaction);
    const int k = d.k;
    double z[4];

    // Start: OLS (Z'Z is also the model-based SE's matrix) and sigma^2 = mean(r^2).
    NormalEquations ols(k, 1);  // extra: sum (y - ybar)^2
    for (int64_t i = 0; i < n; ++i) {
      d.row(units.t[i], g[i], z);
      ols.add(z, 1.0, y[i] - d.ybar);
      ols.extra(0) += (y[i] - d.ybar) * (y[i] - d.ybar);
    }
    ols.reduce(comm);
    const double N = ols.sum_w();
    const std::vector<double> ztz = ols.zwz();
    std::vector<double> l = ztz;
    const int bad = cholesky(l, k);
    if (bad >= 0)
      throw DataError(
          fmt::format("{}state: the regression design is singular (column {} is a linear combination of "
                      "the others): the prediction g does not vary; check the features, or use dim/cuped",
                      where, Design::column(bad)));
    const std::vector<double> ztz_inv = cholesky_inverse(l, k);
    std::vector<double> beta = cholesky_solve(l, k, ols.zwy());
    std::vector<double> rms(static_cast<size_t>(k));
    for (int j = 0; j < k; ++j) rms[j] = std::sqrt(ztz[size_t(j) * k + j] / N);
    auto residual = [&](int64_t i, const std::vector<double>& b) {
      d.row(units.t[i], g[i], z);
      double r = y[i] - d.ybar;
      for (int j = 0; j < k; ++j) r -= z[j] * b[j];
      return r;
    };
    auto weighted_ss = [&](const std::vector<double>* w, const std::vector<double>& b) {  // mean(w r^2)
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double r = residual(i, b);
        s += (w ? (*w)[i] : 1.0) * r * r;
      }
      return comm.allreduce_value(s) / N;
    };
    double sigma2 = weighted_ss(nullptr, beta);
    const double sigma2_ols = sigma2;
    if (!(sigma2 > 1e-20 * ols.extra(0) / N) || !std::isfinite(sigma2))
      throw DataError(
          fmt::format("{}state: the OLS residual variance is {} (the outcome is an exact linear function of "
                      "[1, T, g]); STATE has nothing to model: use dim or mlrate",
                      where, sigma2));
    double nu = o.state_nu;

    // EM.
    std::vector<double> trace;
    double loglik = 0, rel_change = 0, dbeta = 0, dlognu = 0;
    int iterations = 0;
    bool converged = false, decreased = false, collapsed = false, singular = false;
    double sigma2_collapsed = 0, collapse_ms = 0;
    std::string decrease_text;
    NormalEquations wls(k, 3);  // sum w z z', sum w z y; extras: sum log1p(q/nu), sum w, sum w y^2
    // SQUAREM (Varadhan and Roland 2008): after every two EM steps u0 -> u1 -> u2 (u = beta, ln sigma2, ln nu), jump
    // to u0 - 2a r + a^2 v (r = u1 - u0, v = u2 - 2 u1 + u0, a = min(-|r|/|v|, -1)); the jump is kept only when the
    // observed log-likelihood there is not below the last one, else the EM goes on from u2. Same fixed point, far
    // fewer passes (the plain EM converges linearly and slowly in nu); the trace stays monotone.
    std::vector<std::vector<double>> hist;
    std::vector<double> saved;  // u2 while a jump is on trial
    bool trial = false;
    auto pack = [&] {
      std::vector<double> u(beta);
      u.push_back(std::log(sigma2));
      u.push_back(std::log(nu));
      return u;
    };
    auto unpack = [&](const std::vector<double>& u) {
      for (int j = 0; j < k; ++j) beta[j] = u[size_t(j)];
      sigma2 = std::exp(u[size_t(k)]);
      if (o.state_estimate_nu) nu = std::exp(u[size_t(k) + 1]);  // a fixed nu stays exactly as given
    };
    while (true) {
      // E-step at (beta, sigma2, nu), with the observed log-likelihood there.
      // One pass per iteration: these sums also give the M-step's sigma2 at the new beta (below).
      // The pass centres y at the current intercept, ybar + beta0 (its beta0 is then 0): its sums are of the size
      // of the residuals rather than of (ybar - intercept)^2, so the one-pass sigma2 of the M-step keeps its digits
      // when outliers drag ybar far from the bulk (test ExtremeOutliersAreNotMistakenForAPointMass). The M-step
      // solves in that frame and shifts beta0 back.
      const double shift = beta[0];
      std::vector<double> beta_c(beta);
      beta_c[0] = 0;
      wls = NormalEquations(k, 3);
      if (d.interaction)
        estep_sums<true>(d, d.ybar + shift, units.t.data(), g.data(), y.data(), n, beta_c.data(), sigma2, nu, wls);
      else
        estep_sums<false>(d, d.ybar + shift, units.t.data(), g.data(), y.data(), n, beta_c.data(), sigma2, nu, wls);
      wls.reduce(comm);
      const double sum_log1p = wls.extra(0);
      const double prev = loglik;
      loglik = N * (std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) - 0.5 * std::log(M_PI * nu * sigma2)) -
               (nu + 1) / 2 * sum_log1p;
      if (trial) {
        trial = false;
        if (!std::isfinite(loglik) || loglik < prev) {  // the jump lost likelihood: go on from u2
          unpack(saved);
          loglik = prev;
          hist.assign(1, saved);
          continue;
        }
        hist.assign(1, pack());
      }
      trace.push_back(loglik);
      if (iterations > 0) {
        rel_change = std::fabs(loglik - prev) / std::max(std::fabs(prev), 1e-300);
        if (loglik < prev - 1e-11 * std::fabs(prev) && !decreased) {
          decreased = true;
          decrease_text = fmt::format(
              "the observed log-likelihood decreased at iteration {} (from {:.12g} to {:.12g}); "
              "the EM lost monotonicity (numerical trouble), so the fit is not trustworthy",
              iterations, prev, loglik);
        }
        if (rel_change < o.state_tol && dbeta < o.state_tol && dlognu < o.state_tol) {
          converged = true;
          break;
        }
      }
      if (iterations >= o.state_max_iter) break;

      // M-step.
      const std::vector<double> zwz = wls.zwz(), zwy = wls.zwy();
      std::vector<double> lw = zwz;
      if (cholesky(lw, k) >= 0) {  // the weights collapsed onto too few units to identify beta
        singular = true;
        break;
      }
      std::vector<double> beta_new = cholesky_solve(lw, k, zwy);  // in the pass's frame until the sigma2 below
      double nu_new = nu;
      if (o.state_estimate_nu) {
        const double c = 1 + digamma((nu + 1) / 2) - std::log(nu / 2) - sum_log1p / N - wls.extra(1) / N;
        nu_new = solve_nu(c, o.state_nu_min, o.state_nu_max, nu);
      }
      // mean(w (y - z beta_new)^2) = (sum w y^2 - 2 beta' Z'Wy + beta' Z'WZ beta) / N, from the E-step's sums.
      double quad = 0, lin = 0;
      for (int r = 0; r < k; ++r) {
        lin += beta_new[r] * zwy[r];
        for (int c = 0; c < k; ++c) quad += beta_new[r] * zwz[size_t(r) * k + c] * beta_new[c];
      }
      // Parameter-expanded M-step (PX-EM: Kent, Tyler and Vardi 1994; Liu, Rubin and Wu 1998): divide by sum w
      // rather than N. At the maximum likelihood sum w = N (the sigma2 score), so the fixed point is the same; the
      // iterations fall several-fold (docs/abtest.md).
      const double sigma2_new = (wls.extra(2) - 2 * lin + quad) / (o.state_px ? wls.extra(1) : N);
      beta_new[0] += shift;
      // sum w (y - ybar)^2 / sum w, from the sums about ybar + shift (zwy[0] = sum w (y - ybar - shift)).
      const double weighted_ms = (wls.extra(2) + shift * (2 * zwy[0] + shift * wls.extra(1))) / wls.extra(1);
      if (!(sigma2_new > kCollapse * weighted_ms) || !std::isfinite(sigma2_new)) {  // stop at the last iterate
        collapsed = true, sigma2_collapsed = sigma2_new, collapse_ms = weighted_ms;
        break;
      }
      dbeta = 0;
      for (int j = 0; j < k; ++j)
        dbeta = std::max(dbeta, std::fabs(beta_new[j] - beta[j]) * rms[j] / std::sqrt(sigma2_new));
      dlognu = std::fabs(std::log(nu_new) - std::log(nu));
      if (hist.empty()) hist.push_back(pack());
      beta = beta_new, sigma2 = sigma2_new, nu = nu_new;
      ++iterations;
      hist.push_back(pack());
      if (o.state_squarem && hist.size() == 3) {
        const size_t m = hist[0].size();
        double rr = 0, vv = 0;
        std::vector<double> r(m), v(m);
        for (size_t j = 0; j < m; ++j) {
          r[j] = hist[1][j] - hist[0][j], v[j] = hist[2][j] - 2 * hist[1][j] + hist[0][j];
          rr += r[j] * r[j], vv += v[j] * v[j];
        }
        if (vv > 0 && rr > 0) {
          const double a = std::min(-std::sqrt(rr / vv), -1.0);
          std::vector<double> u(m);
          for (size_t j = 0; j < m; ++j) u[j] = hist[0][j] - 2 * a * r[j] + a * a * v[j];
          if (o.state_estimate_nu)
            u[m - 1] = std::min(std::max(u[m - 1], std::log(o.state_nu_min)), std::log(o.state_nu_max));
          saved = hist[2];
          unpack(u);
          trial = true;
        }
        hist.clear();
      }
    }

    // SEs at the final parameters.
    const double se_model = std::sqrt(sigma2 * (nu + 3) / (nu + 1) * ztz_inv[size_t(k) + 1]);
    const bool nu_free = o.state_estimate_nu && nu > o.state_nu_min && nu < o.state_nu_max;
    const Sandwich sw = sandwich(a, d, g, beta, sigma2, nu, nu_free);
    Estimate e;
    std::string sandwich_warning;
    if (o.state_se == "sandwich" && !std::isfinite(sw.se_full))
      sandwich_warning = (std::isfinite(sw.se_beta)
                               ? "the sandwich's A (the observed information of beta, sigma2 and nu) is not positive "
                                 "definite: the SE is the sandwich with sigma2 and nu held fixed, which misses their "
                                 "estimation (too small under skewed residuals)"
                               : "the sandwich's A = sum psi'(r) z z' is not positive definite (many residuals beyond "
                                 "sqrt(nu) sigma, where psi' < 0): the SE is the model-based one");
    const double se_sandwich = std::isfinite(sw.se_full) ? sw.se_full : sw.se_beta;

    e.method = "state";
    e.estimand = "t-model location shift";
    e.effect = beta[1];
    const bool use_sandwich = o.state_se == "sandwich" && std::isfinite(se_sandwich);
    e.se = use_sandwich ? se_sandwich : se_model;
    if (collapsed || singular) e.effect = e.se = NAN;  // no estimate: the warning below says why
    fill_inference(e, o.alpha);
    if (decreased) e.warnings.push_back(decrease_text);
    if (collapsed)
      e.warnings.push_back(fmt::format(
          "the residual scale collapsed (sigma2 = {:.3g} at iteration {}, against {:.3g} from OLS and a weighted "
          "mean square of the centred outcome of {:.3g}): most units share one outcome value (a point mass, e.g. "
          "zero-inflated spend or a 0/1 metric), where the t-likelihood grows without bound as sigma -> 0; STATE is "
          "degenerate on this metric and gives no estimate: report DIM, CUPED, CUPAC or MLRATE",
          sigma2_collapsed, iterations + 1, sigma2_ols, collapse_ms));
    else if (singular)
      e.warnings.push_back(fmt::format(
          "the weighted normal equations became singular at iteration {} (the EM weights concentrated on too few "
          "units to identify the coefficients), so STATE gives no estimate: report DIM, CUPED, CUPAC or MLRATE",
          iterations));
    else if (!converged)
      e.warnings.push_back(
          fmt::format("did not converge in {} iterations (last relative change {:.3g}); raise "
                      "abtest.state.max_iter or loosen abtest.state.tol",
                      iterations, std::max({rel_change, dbeta, dlognu})));
    if (!collapsed && !singular && !sandwich_warning.empty()) e.warnings.push_back(sandwich_warning);
    auto& dt = e.details;
    dt["nu"] = nu;
    dt["nu_estimated"] = o.state_estimate_nu;
    dt["nu_at_bound"] = o.state_estimate_nu && (nu <= o.state_nu_min || nu >= o.state_nu_max);
    dt["sigma2"] = sigma2;
    dt["alpha"] = d.intercept(beta);
    dt["gamma"] = beta[2];
    if (d.interaction) dt["interaction"] = beta[3];
    dt["gbar"] = d.gbar;
    dt["iterations"] = iterations;
    dt["converged"] = converged && !decreased;
    dt["degenerate"] = collapsed || singular;
    dt["se_model"] = se_model;
    auto number_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    dt["se_sandwich"] = number_or_null(se_sandwich);
    dt["se_sandwich_fixed_scale"] = number_or_null(sw.se_beta);  // sigma2 and nu held fixed (the older form)
    dt["sandwich_includes_nu"] = nu_free;
    dt["se_used"] = use_sandwich ? "sandwich" : "model";
    dt["loglik"] = loglik;
    dt["loglik_trace"] = trace;
    dt["loglik_trace_length"] = trace.size();
    dt["mean_weight"] = wls.extra(1) / N;
    warn_if_unbalanced(e, balance_z, covariate);
    return e;
  }
};

}  // namespace
}  // namespace dfcl::abtest

DFCL_REGISTER_ESTIMATOR(State, "state")
