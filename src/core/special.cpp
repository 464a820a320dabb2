// \brief Digamma, trigamma and the normal distribution functions (see special.h).
#include "core/special.h"

#include <cmath>   // for std::log, std::erfc, std::exp, std::sqrt, std::fabs, NAN
#include <limits>  // for std::numeric_limits

namespace dfcl {

namespace {
// sum_k B_2k / (2k x^2k) for x >= 10 (B_2..B_14 = 1/6, -1/30, 1/42, -1/30, 5/66, -691/2730, 7/6), so that
// psi(x) ~ ln x - 1/(2x) - tail(x); the first omitted term is below 1e-17 at x = 10.
double digamma_tail(double x) {
  const double x2 = 1 / (x * x);
  return x2 * (1.0 / 12 -
               x2 * (1.0 / 120 -
                     x2 * (1.0 / 252 - x2 * (1.0 / 240 - x2 * (1.0 / 132 - x2 * (691.0 / 32760 - x2 * (1.0 / 12)))))));
}
}  // namespace

double digamma(double x) {
  if (!(x > 0) || std::isinf(x)) return std::isinf(x) && x > 0 ? std::numeric_limits<double>::infinity() : NAN;
  double shift = 0;  // psi(x) = psi(x + m) - sum_{k<m} 1/(x + k)
  while (x < 10) {
    shift -= 1 / x;
    x += 1;
  }
  return shift + std::log(x) - 0.5 / x - digamma_tail(x);
}

double log_minus_digamma(double x) {
  if (!(x > 0)) return NAN;
  if (std::isinf(x)) return 0;
  return x >= 10 ? 0.5 / x + digamma_tail(x) : std::log(x) - digamma(x);
}

double trigamma(double x) {
  if (!(x > 0) || std::isinf(x)) return std::isinf(x) && x > 0 ? 0.0 : NAN;
  double shift = 0;  // psi_1(x) = psi_1(x + m) + sum_{k<m} 1/(x + k)^2
  while (x < 10) {
    shift += 1 / (x * x);
    x += 1;
  }
  // psi_1(x) ~ 1/x + 1/(2x^2) + sum_k B_2k / x^(2k+1).
  const double x2 = 1 / (x * x);
  const double series =
      x2 *
      (1.0 / 6 -
       x2 * (1.0 / 30 - x2 * (1.0 / 42 - x2 * (1.0 / 30 - x2 * (5.0 / 66 - x2 * (691.0 / 2730 - x2 * (7.0 / 6)))))));
  return shift + (1 + 0.5 / x + series) / x;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double two_sided_p(double z) { return std::isnan(z) ? NAN : std::erfc(std::fabs(z) / std::sqrt(2.0)); }

double normal_quantile(double p) {
  if (!(p > 0 && p < 1)) return NAN;
  // Acklam's coefficients (central region and tails), relative error 1.15e-9 before refinement.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step on Phi(x) - p (the error of the upper tail computed from the upper tail, without cancellation).
  const double e = p < 0.5 ? normal_cdf(x) - p : (1 - p) - normal_cdf(-x);
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

}  // namespace dfcl
