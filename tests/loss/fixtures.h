// \brief Helpers the loss tests share: a loss from a YAML body, float64 options, and row slices of a batch and of
// scores (for "the loss over a split equals the loss over the whole" checks).
#pragma once
#include <ATen/ATen.h>  // for at::TensorOptions

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string

#include "core/config.h"   // for Config
#include "loss/loss.h"     // for Loss, make_loss
#include "model/batch.h"   // for Batch
#include "model/scores.h"  // for Scores

namespace dfcl::loss_test {

/// The loss a `loss:` section with this body builds ("name: pll\nalpha: 0.5\n"). The decision losses' formulas are
/// checked in the papers' form, where the decision term moves both heads (cost_head: decision), unless the body says
/// otherwise; dfcl's default (calibrated) has tests of its own (test_decision_softmax.cpp, CostHead.*).
inline std::unique_ptr<loss::Loss> make(const std::string& body) {
  std::string b = body;
  for (const char* n : {"pll", "merl", "ppl", "ifd", "ifd_softmax", "pifd"})
    if (b.find("name: " + std::string(n) + "\n") != std::string::npos && b.find("cost_head") == std::string::npos)
      b += "  cost_head: decision\n";
  return loss::make_loss(Config::from_string("loss:\n" + b).sub("loss"));
}

inline at::TensorOptions f64() { return at::TensorOptions().dtype(at::kDouble); }

/// Rows [begin, begin + n) of a batch and of scores (views).
inline model::Batch rows(const model::Batch& b, int64_t begin, int64_t n) {
  return model::Batch{b.x.narrow(0, begin, n), b.t.narrow(0, begin, n), b.y_r.narrow(0, begin, n),
                      b.y_c.narrow(0, begin, n), b.weight.narrow(0, begin, n)};
}
inline model::Scores rows(const model::Scores& s, int64_t begin, int64_t n) {
  return model::Scores{s.r_hat.narrow(0, begin, n), s.c_hat.narrow(0, begin, n)};
}

}  // namespace dfcl::loss_test
