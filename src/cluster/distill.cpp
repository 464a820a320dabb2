// \brief The distilled K-way classifier and its training (distill.h).
#include "cluster/distill.h"

#include <fmt/format.h>  // for fmt::format
#include <torch/torch.h>

#include <chrono>   // for std::chrono
#include <cmath>    // for std::sqrt, std::ceil

#include "core/config.h"        // for Config
#include "core/error.h"         // for ConfigError, DataError
#include "core/rng.h"           // for Rng
#include "dist/communicator.h"  // for Communicator

namespace dfcl::cluster {
namespace {
constexpr uint64_t kHoldoutStream = 0x64697374696cull;  // "distil"
constexpr uint64_t kInitStream = kHoldoutStream + 1;
constexpr uint64_t kOrderStream = kHoldoutStream + 2;
}  // namespace

DistillOptions DistillOptions::from(const Config& c) {
  DistillOptions o;
  const std::vector<int64_t> hidden = c.get<std::vector<int64_t>>("hidden", {o.hidden.begin(), o.hidden.end()});
  o.hidden.assign(hidden.begin(), hidden.end());
  o.epochs = c.get<int>("epochs", o.epochs);
  o.batch = c.get<int64_t>("batch", o.batch);
  o.lr = c.get<double>("lr", o.lr);
  o.alpha = c.get<double>("alpha", o.alpha);
  o.temperature = c.get<double>("temperature", o.temperature);
  o.holdout = c.get<double>("holdout", o.holdout);
  o.seed = static_cast<uint64_t>(c.get<int64_t>("seed", int64_t(o.seed)));
  for (int64_t w : hidden)
    if (w < 1 || w > 65536) throw ConfigError(fmt::format("cluster.distill.hidden: width {} must lie in [1, 65536]", w));
  if (o.epochs < 0) throw ConfigError(fmt::format("cluster.distill.epochs: is {}; need >= 0", o.epochs));
  if (o.batch < 1) throw ConfigError(fmt::format("cluster.distill.batch: is {}; need >= 1", o.batch));
  if (!(o.lr > 0)) throw ConfigError(fmt::format("cluster.distill.lr: is {}; need > 0", o.lr));
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw ConfigError(fmt::format("cluster.distill.alpha: is {}; need [0, 1]", o.alpha));
  if (!(o.temperature > 0))
    throw ConfigError(fmt::format("cluster.distill.temperature: is {}; need > 0", o.temperature));
  if (!(o.holdout >= 0 && o.holdout < 1))
    throw ConfigError(fmt::format("cluster.distill.holdout: is {}; need [0, 1)", o.holdout));
  return o;
}

Student::Student(int features, int k, const std::vector<int>& hidden, uint64_t seed)
    : features_(features), k_(k), hidden_(hidden) {
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from the counter-based RNG: the same start on every rank and torch version.
  Rng rng(seed, kInitStream);
  int in = features;
  std::vector<int> outs = hidden;
  outs.push_back(k);
  for (int out : outs) {
    const double a = 1.0 / std::sqrt(double(in));
    at::Tensor w = torch::empty({out, in}, torch::kFloat), b = torch::empty({out}, torch::kFloat);
    float* pw = w.data_ptr<float>();
    for (int64_t i = 0; i < int64_t(out) * in; ++i) pw[i] = float(a * (2 * rng.uniform() - 1));
    float* pb = b.data_ptr<float>();
    for (int i = 0; i < out; ++i) pb[i] = float(a * (2 * rng.uniform() - 1));
    params_.push_back(w.requires_grad_(true));
    params_.push_back(b.requires_grad_(true));
    in = out;
  }
}

at::Tensor Student::logits(const at::Tensor& x_in) const {
  at::Tensor a = x_in.to(at::kFloat);
  for (size_t l = 0; l < params_.size(); l += 2) {
    a = at::addmm(params_[l + 1], a, params_[l].t());
    if (l + 2 < params_.size()) a = at::relu(a);
  }
  return a;
}

std::vector<int32_t> Student::predict(const at::Tensor& x) const {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += 65536) {
    const int64_t e = std::min(n, b + 65536);
    const at::Tensor idx = logits(x.narrow(0, b, e - b)).argmax(1).to(at::kInt).contiguous();
    std::copy(idx.data_ptr<int32_t>(), idx.data_ptr<int32_t>() + (e - b), out.begin() + b);
  }
  return out;
}

model::NamedTensors Student::to_tensors() const {
  model::NamedTensors t;
  for (size_t l = 0; l < params_.size(); l += 2) {
    t.emplace_back(fmt::format("student.{}.weight", l / 2), params_[l].detach().clone());
    t.emplace_back(fmt::format("student.{}.bias", l / 2), params_[l + 1].detach().clone());
  }
  return t;
}

Student Student::from_tensors(const model::NamedTensors& t, int features, int k, const std::vector<int>& hidden,
                              const std::string& where) {
  Student s(features, k, hidden, 0);
  torch::NoGradGuard no_grad;
  for (size_t l = 0; l < s.params_.size(); ++l) {
    const std::string name = fmt::format("student.{}.{}", l / 2, l % 2 == 0 ? "weight" : "bias");
    const at::Tensor* src = nullptr;
    for (const auto& kv : t)
      if (kv.first == name) src = &kv.second;
    if (!src || src->sizes() != s.params_[l].sizes())
      throw DataError(fmt::format("{}: the distilled classifier's '{}' is {} (the file is damaged)", where, name,
                                  src ? "of another shape" : "missing"));
    s.params_[l].copy_(*src);
  }
  for (auto& p : s.params_) p.requires_grad_(false);
  return s;
}

DistillResult distill(Student& s, const at::Tensor& x, const std::vector<int32_t>& teacher, const at::Tensor& h,
                      const at::Tensor& centroids, const std::vector<int64_t>& gid, const DistillOptions& opt,
                      dist::Communicator& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  torch::AutoGradMode grad_on(true);  // callers may hold a NoGradGuard
  const int64_t n = x.size(0);
  std::vector<int64_t> fit_rows, hold_rows;
  for (int64_t i = 0; i < n; ++i)
    (Rng(opt.seed, kHoldoutStream, uint64_t(gid[size_t(i)])).uniform() < opt.holdout ? hold_rows : fit_rows).push_back(i);
  const at::Tensor labels = torch::from_blob(const_cast<int32_t*>(teacher.data()), {n}, torch::kInt).to(torch::kLong);
  // Soft targets: softmax_k(-d2 / (tau d)), d = the representation's dimension (distances grow with it).
  const double dim = double(std::max<int64_t>(1, h.size(1)));
  const at::Tensor c = centroids.to(at::kDouble), c2 = (c * c).sum(1);
  const int64_t steps_local = (int64_t(fit_rows.size()) + opt.batch - 1) / opt.batch;
  const int64_t steps = int64_t(comm.allreduce_value(double(steps_local), dist::ReduceOp::kMax));
  for (auto& p : s.parameters()) p.requires_grad_(true);
  torch::optim::Adam adam(s.parameters(), torch::optim::AdamOptions(opt.lr));
  const at::Tensor fit_idx = torch::tensor(fit_rows, torch::kLong);
  const int64_t nf = fit_idx.size(0);
  for (int e = 0; e < opt.epochs && steps > 0; ++e) {
    // this rank's rows in an order drawn from (seed, epoch): a permutation by sorted random keys
    at::Tensor keys = torch::empty({nf}, torch::kDouble);
    double* pk = keys.data_ptr<double>();
    for (int64_t i = 0; i < nf; ++i) pk[i] = Rng(opt.seed, kOrderStream + uint64_t(e), uint64_t(gid[size_t(fit_rows[size_t(i)])])).uniform();
    const at::Tensor order = fit_idx.index_select(0, keys.argsort());
    for (int64_t st = 0; st < steps; ++st) {
      at::Tensor loss_sum = torch::zeros({1}, torch::kDouble);
      at::Tensor rows;
      if (nf > 0) {
        const int64_t b = (st * opt.batch) % nf, len = std::min(opt.batch, nf - b);
        rows = order.narrow(0, b, len);
      } else {
        rows = torch::empty({0}, torch::kLong);
      }
      adam.zero_grad();
      const int64_t bn = rows.size(0);
      if (bn > 0) {
        const at::Tensor z = s.logits(x.index_select(0, rows));
        const at::Tensor y = labels.index_select(0, rows);
        const at::Tensor hard = torch::nn::functional::cross_entropy(z, y);
        const at::Tensor hb = h.index_select(0, rows).to(at::kDouble);
        const at::Tensor d2 = (at::addmm(c2.unsqueeze(0), hb, c.t(), 1.0, -2.0) + (hb * hb).sum(1, true)).clamp_min(0);
        const at::Tensor q = torch::softmax(-d2 / (opt.temperature * dim), 1).to(at::kFloat);
        const at::Tensor logp = torch::log_softmax(z / opt.temperature, 1);
        const at::Tensor kl = (q * (torch::log(q.clamp_min(1e-30)) - logp)).sum(1).mean();
        const at::Tensor loss = opt.alpha * hard + (1 - opt.alpha) * opt.temperature * opt.temperature * kl;
        loss.backward();
      }
      // Average the gradients over the ranks that had rows (every rank issues the same collectives).
      const double active = comm.allreduce_value(bn > 0 ? 1.0 : 0.0);
      for (auto& p : s.parameters()) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        at::Tensor g = p.grad().contiguous();
        comm.allreduce(g);
        p.mutable_grad() = g / std::max(1.0, active);
      }
      adam.step();
    }
  }
  for (auto& p : s.parameters()) p.requires_grad_(false);
  DistillResult r;
  auto agree = [&](const std::vector<int64_t>& idx, double* out_rows) {
    double hit = 0;
    if (!idx.empty()) {
      const std::vector<int32_t> pred = s.predict(x.index_select(0, torch::tensor(idx, torch::kLong)));
      for (size_t i = 0; i < idx.size(); ++i) hit += pred[i] == teacher[size_t(idx[i])];
    }
    std::vector<double> v{hit, double(idx.size())};
    comm.allreduce_values(v);
    if (out_rows) *out_rows = v[1];
    return v[1] > 0 ? v[0] / v[1] : std::nan("");
  };
  double hold = 0;
  r.agreement = agree(hold_rows, &hold);
  r.holdout_rows = int64_t(hold);
  r.train_agreement = agree(fit_rows, nullptr);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace dfcl::cluster
