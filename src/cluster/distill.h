// \brief The distilled serving model: a small K-way MLP on the (standardised) features that predicts a user's cluster
// without the representation net or a centroid search. Trained on the teacher's assignment (hard cross-entropy) and
// its soft assignment at a temperature (KL), with gradients averaged across ranks.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "model/param_file.h"  // for NamedTensors

namespace dfcl {
class Config;
}
namespace dfcl::dist {
class Communicator;
}

namespace dfcl::cluster {

struct DistillOptions {
  std::vector<int> hidden{64, 64};  // hidden widths (ReLU)
  int epochs = 20;
  int64_t batch = 1024;    // rows per rank and step
  double lr = 3e-3;        // Adam
  double alpha = 0.5;      // weight of the hard cross-entropy; 1 - alpha on the soft KL
  double temperature = 1;  // tau of the soft targets softmax_k(-||h - mu_k||^2 / (tau d)) and of the student's KL
  double holdout = 0.1;    // share of rows (by global id) held out to measure agreement
  uint64_t seed = 7;
  /// Reads cluster.distill.<key>; ConfigError naming the key for a bad value.
  static DistillOptions from(const Config& section);
};

class Student {
 public:
  Student() = default;
  Student(int features, int k, const std::vector<int>& hidden, uint64_t seed);
  int features() const { return features_; }
  int k() const { return k_; }
  const std::vector<int>& hidden() const { return hidden_; }
  bool empty() const { return k_ == 0; }
  /// Logits (B x K) of standardised features x (B x F); differentiable in the parameters.
  at::Tensor logits(const at::Tensor& x) const;
  /// argmax of the logits (ties: the lower cluster), in blocks; no autograd.
  std::vector<int32_t> predict(const at::Tensor& x) const;
  std::vector<at::Tensor>& parameters() { return params_; }
  /// "student.<l>.weight" (out x in), "student.<l>.bias", and back (DataError naming `where` on a shape mismatch).
  model::NamedTensors to_tensors() const;
  static Student from_tensors(const model::NamedTensors& t, int features, int k, const std::vector<int>& hidden,
                              const std::string& where);

 private:
  int features_ = 0, k_ = 0;
  std::vector<int> hidden_;
  std::vector<at::Tensor> params_;  // w0, b0, w1, b1, ...
};

struct DistillResult {
  double agreement = 0;          // top-1 agreement with the teacher on the held-out rows (all ranks)
  double train_agreement = 0;    // ... on the training rows
  int64_t holdout_rows = 0;
  double seconds = 0;
};

/// Trains `student` on this rank's rows: x (n x F, standardised features), the teacher's labels, the standardised
/// representations h (n x d) and the centroids (K x d) the soft targets come from (per batch), global ids for the
/// hold-out split. Every rank takes the same number of steps.
DistillResult distill(Student& student, const at::Tensor& x, const std::vector<int32_t>& teacher, const at::Tensor& h,
                      const at::Tensor& centroids, const std::vector<int64_t>& gid, const DistillOptions& opt,
                      dist::Communicator& comm);

}  // namespace dfcl::cluster
