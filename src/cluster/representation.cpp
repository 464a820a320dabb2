// \brief Hidden representations of a trained UpliftNet and their standardisation (representation.h).
#include "cluster/representation.h"

#include <fmt/format.h>  // for fmt::format
#include <torch/torch.h>

#include <algorithm>  // for std::min
#include <cmath>      // for std::sqrt

#include "core/error.h"          // for ConfigError
#include "data/schema.h"         // for Table
#include "dist/communicator.h"   // for Communicator
#include "model/activation.h"    // for parse_activation, apply
#include "model/batch.h"         // for to_batch
#include "model/input_scaler.h"  // for InputScaler
#include "model/uplift_net.h"    // for UpliftNet

namespace dfcl::cluster {

RepLayers parse_rep_layers(const std::string& name, const std::string& key) {
  if (name == "concat") return RepLayers::kConcat;
  if (name == "second") return RepLayers::kSecond;
  throw ConfigError(fmt::format("{}: is '{}'; use concat (the first two hidden layers side by side) or second (the "
                                "second hidden layer only)",
                                key, name));
}

std::string to_string(RepLayers r) { return r == RepLayers::kConcat ? "concat" : "second"; }

void check_representation_net(const model::UpliftNet& net, const std::string& where) {
  const auto& c = net.config();
  if (!c.shared_trunk || c.trunk.size() < 2)
    throw ConfigError(fmt::format(
        "{}: the cluster representation is the first two hidden layers of a shared trunk, but this net has {}; train "
        "the representation with model.shared_trunk=true and model.trunk of at least two widths (e.g. [64,32,32])",
        where, c.shared_trunk ? fmt::format("a trunk of {} layer(s)", c.trunk.size()) : std::string("separate MLPs")));
}

at::Tensor hidden_representation(const model::UpliftNet& net, const model::InputScaler& scaler, const data::Table& rows,
                                 RepLayers which, int64_t block) {
  torch::NoGradGuard no_grad;
  check_representation_net(net, "representation");
  const auto& c = net.config();
  const model::Activation act = model::parse_activation(c.activation, "model.activation");
  const at::Tensor& flat = net.flat();
  const at::Tensor w0 = net.parameter(flat, "trunk.0.weight"), b0 = net.parameter(flat, "trunk.0.bias");
  const at::Tensor w1 = net.parameter(flat, "trunk.1.weight"), b1 = net.parameter(flat, "trunk.1.bias");
  const int64_t n = rows.rows, d1 = c.trunk[0], d2 = c.trunk[1];
  const int64_t d = which == RepLayers::kConcat ? d1 + d2 : d2;
  at::Tensor out = torch::empty({n, d}, torch::kFloat);
  model::Batch batch = model::to_batch(rows, flat.scalar_type(), flat.device());
  scaler.apply_(batch.x);
  for (int64_t b = 0; b < n; b += block) {
    const int64_t e = std::min(n, b + block);
    const at::Tensor h1 = model::apply(act, at::addmm(b0, batch.x.narrow(0, b, e - b), w0.t()));
    const at::Tensor h2 = model::apply(act, at::addmm(b1, h1, w1.t()));
    const at::Tensor h = which == RepLayers::kConcat ? at::cat({h1, h2}, 1) : h2;
    out.narrow(0, b, e - b).copy_(h.to(at::kCPU, at::kFloat));
  }
  return out;
}

RepScaler RepScaler::fit(const at::Tensor& h, dist::Communicator& comm) {
  const int64_t d = h.size(1);
  at::Tensor packed = torch::zeros({2 * d + 1}, torch::kDouble);
  if (h.size(0) > 0) {
    const at::Tensor x = h.to(at::kDouble);
    packed.narrow(0, 0, d).copy_(x.sum(0));
    packed.narrow(0, d, d).copy_((x * x).sum(0));
  }
  packed[2 * d] = double(h.size(0));
  comm.allreduce(packed);
  const double* p = packed.data_ptr<double>();
  const double n = p[2 * d];
  RepScaler s;
  s.mean.resize(size_t(d)), s.sd.resize(size_t(d));
  for (int64_t j = 0; j < d; ++j) {
    const double m = p[j] / n, v = std::max(0.0, p[d + j] / n - m * m);
    s.mean[size_t(j)] = m;
    s.sd[size_t(j)] = std::sqrt(v) < 1e-12 ? 1.0 : std::sqrt(v);
  }
  return s;
}

at::Tensor RepScaler::apply(const at::Tensor& h) const {
  const int64_t d = int64_t(mean.size());
  const at::Tensor m = torch::from_blob(const_cast<double*>(mean.data()), {d}, torch::kDouble);
  const at::Tensor s = torch::from_blob(const_cast<double*>(sd.data()), {d}, torch::kDouble);
  // In double, returned in h's dtype: a float32 representation of tens of millions of rows stays float32.
  return ((h.to(at::kDouble) - m) / s).to(h.scalar_type());
}

}  // namespace dfcl::cluster
