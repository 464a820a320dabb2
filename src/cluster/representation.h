// \brief The representation users are clustered in: the activations of the first two hidden layers of a trained
// UpliftNet's shared trunk (concatenated, or the second only), standardised with moments reduced across ranks.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::data {
struct Table;
}
namespace dfcl::dist {
class Communicator;
}
namespace dfcl::model {
class UpliftNet;
class InputScaler;
}  // namespace dfcl::model

namespace dfcl::cluster {

enum class RepLayers {
  kConcat,  // [h1; h2]
  kSecond,  // h2
};
RepLayers parse_rep_layers(const std::string& name, const std::string& key);
std::string to_string(RepLayers r);

/// Throws ConfigError unless `net` has a shared trunk of at least two hidden layers (what the representation reads);
/// `where` names the checkpoint.
void check_representation_net(const model::UpliftNet& net, const std::string& where);

/// The representation of rows [0, rows.rows): features standardised by `scaler`, then the trunk's first two hidden
/// layers (after their activation), N x d float32, in blocks. No autograd.
at::Tensor hidden_representation(const model::UpliftNet& net, const model::InputScaler& scaler, const data::Table& rows,
                                 RepLayers which, int64_t block = 65536);

/// Per-dimension standardisation of representations: (h - mean) / sd; a dimension with sd < 1e-12 (a dead unit) keeps
/// sd 1, so it is only centred.
struct RepScaler {
  std::vector<double> mean, sd;
  /// Moments over every rank's rows of `h` (n_local x d).
  static RepScaler fit(const at::Tensor& h, dist::Communicator& comm);
  /// h standardised (computed in float64, returned in h's dtype).
  at::Tensor apply(const at::Tensor& h) const;
};

}  // namespace dfcl::cluster
