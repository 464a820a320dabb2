// \brief The `bilevel` section (bilevel.h).
#include <fmt/format.h>  // for fmt::format

#include <string>  // for std::string

#include "bilevel/bilevel.h"
#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError

namespace dfcl::bilevel {

namespace {
// `key` is relative to `s`, which is the section `prefix` ("bilevel" or "bilevel.cg").
template <class E>
E choice(const Config& s, const std::string& prefix, const std::string& key, const std::string& fallback,
         std::initializer_list<std::pair<const char*, E>> options, const std::string& help) {
  const std::string v = s.get<std::string>(key, fallback);
  for (const auto& [name, e] : options)
    if (v == name) return e;
  throw ConfigError(fmt::format("{}.{} is '{}' ({}); use {}", prefix, key, v, s.origin(key), help));
}
}  // namespace

BilevelConfig BilevelConfig::from(const Config& s, double theta_lr) {
  BilevelConfig c;
  c.teacher = s.get<std::string>("teacher", "");
  if (s.get<std::string>("teacher_epochs", "auto") == "auto") c.teacher_epochs = 0;
  else c.teacher_epochs = s.get<int>("teacher_epochs", 10);
  if (c.teacher_epochs < 0 || (c.teacher_epochs == 0 && s.get<std::string>("teacher_epochs", "auto") != "auto"))
    throw ConfigError(fmt::format("bilevel.teacher_epochs is {}; the teacher trained first needs at least 1 epoch (or auto: derived from the trial rows)",
                                  c.teacher_epochs));
  c.labels = lower_mode_from(s.get<std::string>("labels", "counterfactual"));
  c.hypergradient = choice<Hypergradient>(
      s, "bilevel", "hypergradient", "implicit", {{"implicit", Hypergradient::kImplicit}, {"explicit", Hypergradient::kExplicit}},
      "implicit (CG on the lower level's Hessian, the paper's Bi-DFCL) or explicit (one unrolled step every batch, "
      "the \"w/o ID\" ablation)");
  c.k = s.get<int>("k", c.k);
  if (c.k < 1) throw ConfigError(fmt::format("bilevel.k is {}; the number of assumed steps must be >= 1 (paper: 5)", c.k));
  c.inner_lr = s.get<double>("inner_lr", 10 * theta_lr);
  if (!(c.inner_lr > 0) || !std::isfinite(c.inner_lr))
    throw ConfigError(fmt::format("bilevel.inner_lr is {}; the assumed steps' SGD rate must be finite and > 0",
                                  c.inner_lr));
  c.warm_start_epochs = s.get<int>("warm_start_epochs", c.warm_start_epochs);
  if (c.warm_start_epochs < 0)
    throw ConfigError(fmt::format("bilevel.warm_start_epochs is {}; use 0 or more", c.warm_start_epochs));
  const Config cg = s.sub("cg");
  c.cg.max_iter = cg.get<int>("iterations", c.cg.max_iter);
  if (c.cg.max_iter < 1)
    throw ConfigError(fmt::format("bilevel.cg.iterations is {}; CG needs at least 1 (paper: 50)", c.cg.max_iter));
  c.cg.tol = cg.get<double>("tol", c.cg.tol);
  if (!(c.cg.tol >= 0)) throw ConfigError(fmt::format("bilevel.cg.tol is {}; use a relative residual >= 0", c.cg.tol));
  c.cg.damping = cg.get<double>("damping", 0.3);
  if (!(c.cg.damping >= 0) || !std::isfinite(c.cg.damping))
    throw ConfigError(fmt::format("bilevel.cg.damping is {}; use a finite value >= 0", c.cg.damping));
  c.relative_damping = choice<bool>(cg, "bilevel.cg", "damping_mode", "relative", {{"relative", true}, {"absolute", false}},
                                    "relative (δ = damping x the Hessian's mean diagonal) or absolute (δ = damping)");
  c.cg_warm_start = cg.get<bool>("warm_start", c.cg_warm_start);
  c.hvp = choice<Hvp>(cg, "bilevel.cg", "hvp", "exact", {{"exact", Hvp::kExact}, {"gauss_newton", Hvp::kGaussNewton}},
                      "exact (double backward, the paper) or gauss_newton (PSD, one JVP + one VJP)");
  c.mixed = choice<MixedTerm>(s, "bilevel", "mixed_term", "closed_form",
                              {{"closed_form", MixedTerm::kClosedForm}, {"autograd", MixedTerm::kAutograd}},
                              "closed_form (one JVP of the target, one backward pass of the bridge) or autograd "
                              "(double backward through the lower level)");
  c.upper_float64 = choice<bool>(s, "bilevel", "upper_dtype", "float64", {{"float64", true}, {"same", false}},
                                 "float64 (the second-order products and CG in float64) or same (train.dtype)");
  c.blas_threads = s.get<int>("blas_threads", c.blas_threads);
  if (c.blas_threads < 0)
    throw ConfigError(fmt::format("bilevel.blas_threads is {}; use 0 (leave the BLAS library's setting) or more",
                                  c.blas_threads));
  c.rct_batch = s.get<int64_t>("rct_batch", c.rct_batch);
  c.rct_max_rows = s.get<int64_t>("rct_max_rows", c.rct_max_rows);
  if (c.rct_batch < 0 || c.rct_max_rows < 1)
    throw ConfigError(fmt::format("bilevel.rct_batch = {}, bilevel.rct_max_rows = {}; use rct_batch >= 0 (0 = every "
                                  "trial row held) and rct_max_rows >= 1",
                                  c.rct_batch, c.rct_max_rows));
  c.bridge.lr = 1e-3;
  if (s.has("bridge_optimizer")) c.bridge = train::OptimizerConfig::from(s.sub("bridge_optimizer"));
  return c;
}

}  // namespace dfcl::bilevel
