// \brief Special functions in float64 (the A/B estimators, confidence intervals): digamma, trigamma, the standard
// normal CDF and quantile.
#pragma once

namespace dfcl {

/// psi(x) = d/dx ln Gamma(x) for x > 0 (NaN otherwise): the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10,
/// then the asymptotic series to x^-14. Absolute error below 1e-14 for x >= 1e-3 (relative below 1e-13 away from the
/// root at 1.4616...).
double digamma(double x);
/// psi_1(x) = d/dx psi(x) for x > 0 (NaN otherwise): the recurrence psi_1(x) = psi_1(x + 1) + 1/x^2 up to x >= 10,
/// then the asymptotic series to x^-15. Relative error below 1e-13.
double trigamma(double x);
/// ln(x) - psi(x) for x > 0 without cancellation at large x (the asymptotic series directly for x >= 10); it decreases
/// from +inf to 0, like 1/(2x).
double log_minus_digamma(double x);
/// Phi(z) = P(N(0, 1) <= z), through erfc (accurate in both tails).
double normal_cdf(double z);
/// Phi^-1(p) for 0 < p < 1 (NaN otherwise): Acklam's rational approximation refined by one Halley step (relative
/// error about 1e-15).
double normal_quantile(double p);
/// Two-sided p-value of a z statistic: 2 (1 - Phi(|z|)).
double two_sided_p(double z);

}  // namespace dfcl
