// \brief CUPAC (DoorDash, Tang et al. 2020): CUPED whose covariate is the cross-fitted ML prediction g of the outcome
// from the features (predictor.cpp; the treatment is never a feature); spec Part C.3.
#include "abtest/internal.h"  // for control_variate, DFCL_REGISTER_ESTIMATOR

namespace dfcl::abtest {
namespace {
class Cupac : public Estimator {
 public:
  std::string name() const override { return "cupac"; }
  bool applicable(const Analysis& a) const override { return a.num_features() > 0; }
  Estimate estimate(Analysis& a) const override {
    Estimate e = control_variate(a.prediction(), a, "cupac", "g (cross-fitted " + a.options().predictor + ")");
    e.details["folds"] = a.options().folds;
    return e;
  }
};
}  // namespace
}  // namespace dfcl::abtest

DFCL_REGISTER_ESTIMATOR(Cupac, "cupac")
