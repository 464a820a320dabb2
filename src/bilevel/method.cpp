// \brief The bi-level step (spec methods-bidfcl.md §6.1, §8.3): on every k-th batch of the log (after the warm-start
// epochs) an upper step tunes the bridge φ through the implicit hypergradient; on every batch the target θ takes one
// lower-level step on factual labels and bridge-gated pseudo-labels.
//
// Across ranks (docs/distributed.md): the log batch is data parallel (each rank its logical shards' rows); the lower
// step's gradient goes through the trainer's bucketed Reducer while backward runs; every other sum over the log — each
// assumed step's gradient, each Hessian-vector product of CG (one all-reduce of |θ| values per iteration),
// the mixed term — is reduced through the Communicator, so θ, θ', v and φ stay replicated, and the bridge's Adam runs
// identically on every rank. The trial batch of an upper step is split over the ranks; λ* reduces its IPW sums
// (LossContext::reduce_sum) and the upper gradient is all-reduced. Under dist.deterministic every log sum is formed
// per logical-shard block and the blocks are added in block order, and every rank evaluates the whole trial batch:
// the same bits for any number of ranks.
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::NoGradGuard, at::cat

#include <chrono>      // for std::chrono
#include <cmath>       // for std::isfinite, std::sqrt
#include <cstring>     // for std::memcpy
#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "bilevel/bilevel.h"
#include "bilevel/second_order.h"  // for LowerCurvature, mixed_term
#include "core/config.h"           // for Config
#include "core/error.h"            // for DataError, ConfigError
#include "core/log.h"              // for log::info, log::warn
#include "core/rng.h"              // for Rng, mix64
#include "core/threads.h"          // for set_blas_threads
#include "data/loader.h"           // for Split
#include "data/source.h"           // for RowSource, read_rct_rows
#include "dist/communicator.h"     // for Communicator
#include "dist/reducer.h"          // for Reducer
#include "loss/decision.h"         // for primal_lambda, row_weights
#include "loss/loss.h"             // for Loss, LossContext
#include "model/input_scaler.h"    // for InputScaler
#include "model/uplift_net.h"      // for UpliftNet, ForwardCache
#include "train/checkpoint.h"      // for Checkpoint
#include "train/optimizer.h"       // for Optimizer, make_optimizer
#include "train/trained_model.h"   // for load_trained_model
#include "train/train_config.h"    // for TrainConfig
#include "train/trainer.h"         // for Trainer

namespace dfcl::bilevel {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// FNV-1a over a tensor's float64 values: the teacher's identity in checkpoints.
std::string param_hash(const at::Tensor& flat) {
  const at::Tensor d = flat.detach().to(at::kCPU, at::kDouble).contiguous();
  const auto* p = reinterpret_cast<const unsigned char*>(d.data_ptr<double>());
  uint64_t h = 1469598103934665603ull;
  for (int64_t i = 0; i < d.numel() * int64_t(sizeof(double)); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

std::string describe(const model::UpliftNetConfig& c, int64_t params) {
  return fmt::format("trunk [{}], head [{}], {} trunk, {} features, {} arms, {} parameters", fmt::join(c.trunk, ", "),
                     fmt::join(c.head, ", "), c.shared_trunk ? "shared" : "separate", c.features, c.arms, params);
}

// One block of this rank's log rows: everything the lower level reads for it.
struct Part {
  model::Batch batch;
  LowerInputs in;
  LowerTargets targets;
  // the upper step's copies in bilevel.upper_dtype, and the lower level's curvature at θ' built from them
  at::Tensor x_upper;
  LowerInputs in_upper;
  std::unique_ptr<LowerCurvature> curvature;
  model::ForwardCache cache;  // the target's forward at θ (the snapshot), reused by the lower step's backward
};

class BilevelMethod : public train::StepMethod {
 public:
  explicit BilevelMethod(const train::StepEnv& env)
      : env_(env),
        cfg_(BilevelConfig::from(env.cfg.sub("bilevel"), env.cfg.get<double>("optimizer.lr", 1e-3))),
        comm_(env.comm),
        dtype_(env.net.flat().scalar_type()),
        device_(env.net.flat().device()),
        deterministic_(env.tc.deterministic) {
    check_inputs(env.src, env.tc);
    read_trial();
    load_teacher();
    // The upper step's small matmuls go to LibTorch's BLAS between dfcl's OpenMP kernels; two pools spinning on the
    // same cores cost 2.6x in CG on 2 cores (docs/benchmarks.md), so the BLAS pool gets bilevel.blas_threads.
    if (cfg_.blas_threads > 0) {
      const std::string lib = set_blas_threads(cfg_.blas_threads);
      if (!lib.empty()) log::info("bilevel: {} uses {} thread(s) (bilevel.blas_threads)", lib, cfg_.blas_threads);
    }
    // The bridge: the target's architecture with sigmoid gates on every head (w ∈ (0, 1) per arm and outcome).
    model::UpliftNetConfig bc = env.net.config();
    bc.revenue_output = bc.cost_output = "sigmoid";
    bridge_ = std::make_unique<model::UpliftNet>(bc, mix64(env.tc.seed ^ 0xB81D6Eull), dtype_, device_);
    bridge_opt_ = train::make_optimizer(cfg_.bridge, bridge_->flat());
    log::info("bilevel: {} labels, {} hypergradient, k = {}, CG {} x {} HVP (tol {}, damping {} {}), mixed term {}, "
              "warm start {} epoch(s), {} trial rows per upper step of {} held, bridge {} lr {}",
              to_string(cfg_.labels), cfg_.hypergradient == Hypergradient::kImplicit ? "implicit" : "explicit",
              cfg_.k, cfg_.cg.max_iter, cfg_.hvp == Hvp::kExact ? "exact" : "Gauss-Newton", cfg_.cg.tol,
              cfg_.cg.damping, cfg_.relative_damping ? "relative" : "absolute",
              cfg_.mixed == MixedTerm::kClosedForm ? "closed form" : "double backward", cfg_.warm_start_epochs,
              rct_batch_rows(), trial_.rows, cfg_.bridge.name, cfg_.bridge.lr);
  }

  std::string name() const override { return "bilevel"; }

  double step(const data::Table& rows, int64_t step, int64_t epoch, double lr) override {
    torch::NoGradGuard no_grad;
    build_parts(rows);
    const bool upper = epoch >= cfg_.warm_start_epochs &&
                       (cfg_.hypergradient == Hypergradient::kExplicit || step % cfg_.k == 0);
    if (upper) upper_step(step);
    // The lower step on the latest φ: factual labels and pseudo-labels from the snapshot θ, one optimiser step.
    const auto t0 = Clock::now();
    for (Part& p : parts_) {
      p.in.gates = gates(p.batch.x);
      p.targets = lower_targets(cfg_.labels, p.batch, p.in);
    }
    double value = 0;
    at::Tensor g;
    if (!deterministic_) {
      // plain data parallel: one part, its backward feeding the trainer's bucketed all-reduce as it goes
      Part& p = parts_.front();
      at::Tensor d_r, d_c;
      value = lower_value_and_grad(p.in.snapshot, p.targets, kappa_, d_r, d_c);
      if (!lower_grad_.defined()) lower_grad_ = at::zeros_like(env_.net.flat()).detach();
      env_.reducer.prepare(lower_grad_);
      env_.net.backward(env_.net.flat().detach(), p.cache, d_r, d_c, lower_grad_,
                        [this](size_t e) { env_.reducer.mark_ready(int(e)); });
      env_.reducer.finish();
      g = lower_grad_;
    } else {
      g = reduce([&](Part& p) {  // θ has not moved since build_parts: its forward is the snapshot's
        at::Tensor d_r, d_c, grad;
        value += lower_value_and_grad(p.in.snapshot, p.targets, kappa_, d_r, d_c);
        env_.net.backward(env_.net.flat().detach(), p.cache, d_r, d_c, grad);
        return grad;
      });
    }
    check_finite(g, step, "the lower-level gradient", /*upper=*/false);
    env_.opt.step(env_.net.flat(), g, lr);
    time_.lower += since(t0);
    return value;
  }

  void save(train::Checkpoint& ck) const override {
    train::add_parameters(ck, "bilevel.bridge.", *bridge_);
    train::add_optimizer_state(ck, "bilevel.optim.", *bridge_opt_);
    if (v_.defined()) ck.tensors.emplace_back("bilevel.cg_v", v_.detach().to(at::kCPU).clone());
    ck.state["bilevel"] = {{"teacher", teacher_path_},
                           {"teacher_hash", teacher_hash_},
                           {"upper_steps", upper_steps_},
                           {"negative_curvature_steps", neg_total_},
                           {"diverged_steps", div_total_}};
  }

  void restore(const train::Checkpoint& ck, const std::string& path) override {
    const json st = ck.state.value("bilevel", json::object());
    if (st.empty())
      throw DataError(fmt::format("{}: the checkpoint holds no bi-level state (it was written by a single-level run); "
                                  "resume it without the bilevel section, or start this run afresh",
                                  path));
    const std::string hash = st.value("teacher_hash", std::string());
    if (hash != teacher_hash_)
      throw DataError(fmt::format("{}: the run was trained against teacher {} (parameters {}), but this run's teacher "
                                  "{} has parameters {}; resume with the same bilevel.teacher",
                                  path, st.value("teacher", std::string("?")), hash, teacher_path_, teacher_hash_));
    train::restore_parameters(ck, "bilevel.bridge.", *bridge_, path, "bridge parameter");
    train::restore_optimizer_state(ck, "bilevel.optim.", *bridge_opt_, device_);
    if (const at::Tensor* v = find(ck, "bilevel.cg_v")) v_ = v->to(device_).clone();  // kept in upper_dtype
    upper_steps_ = st.value("upper_steps", int64_t(0));
    neg_total_ = st.value("negative_curvature_steps", int64_t(0));
    div_total_ = st.value("diverged_steps", int64_t(0));
  }

  json take_epoch_stats() override {
    json out = {{"upper_steps", records_.size()},
                {"negative_curvature_steps", neg_epoch_},
                {"diverged_steps", div_epoch_},
                {"negative_curvature_total", neg_total_},
                {"seconds", {{"lower", time_.lower},
                             {"assumed_steps", time_.assumed},
                             {"lambda", time_.lambda},
                             {"upper_gradient", time_.upper},
                             {"cg", time_.cg},
                             {"mixed_term", time_.mixed}}},
                {"hvp_products", hvps_epoch_},
                {"steps", records_}};
    double it = 0;
    for (const auto& r : records_) it += r["cg_iterations"].get<double>();
    out["mean_cg_iterations"] = records_.empty() ? 0.0 : it / double(records_.size());
    records_ = json::array();
    neg_epoch_ = div_epoch_ = hvps_epoch_ = 0;
    time_ = {};
    return out;
  }

  std::string epoch_summary(const json& st) const override {
    if (st["upper_steps"].get<int64_t>() == 0) return "bi-level: warm start (lower level only)";
    return fmt::format("bi-level: {} upper steps, CG {:.1f} iterations on average, {} on negative curvature",
                       st["upper_steps"].get<int64_t>(), st["mean_cg_iterations"].get<double>(),
                       st["negative_curvature_steps"].get<int64_t>());
  }

 private:
  struct Times {
    double lower = 0, assumed = 0, lambda = 0, upper = 0, cg = 0, mixed = 0;
  };

  static const at::Tensor* find(const train::Checkpoint& ck, const std::string& name) {
    for (const auto& kv : ck.tensors)
      if (kv.first == name) return &kv.second;
    return nullptr;
  }

  // The trial's training rows, held in memory; p_t = N_t / N over them (the paper's empirical arm shares).
  void read_trial() {
    trial_ = data::read_rct_rows(env_.src, env_.tc.split, data::Split::kTrain, cfg_.rct_max_rows,
                                 "Bi-DFCL's upper level (the trial's training rows)");
    const int M = env_.meta.num_arms;
    std::vector<double> n(size_t(M), 0.0);
    for (int64_t i = 0; i < trial_.rows; ++i) n[size_t(trial_.treatment[size_t(i)])] += 1;
    for (int j = 0; j < M; ++j)
      if (n[size_t(j)] == 0)
        throw DataError(fmt::format("{}: the trial's training rows have no row in arm {} ('{}'), so its propensity is "
                                    "0 and the upper level's IPW decision loss is undefined; add trial rows of every "
                                    "arm, or drop the arm from the dataset",
                                    env_.src.name(), j, env_.meta.arm_names.empty() ? "" : env_.meta.arm_names[size_t(j)]));
    for (int j = 0; j < M; ++j) propensity_.push_back(n[size_t(j)] / double(trial_.rows));
  }

  void load_teacher() {
    std::string path = cfg_.teacher;
    if (path.empty()) path = train_teacher();
    teacher_ = std::make_unique<train::TrainedModel>(train::load_trained_model(path, env_.tc.device));
    const model::UpliftNetConfig& a = teacher_->net->config();
    const model::UpliftNetConfig& b = env_.net.config();
    if (a.features != env_.meta.num_features || a.arms != env_.meta.num_arms)
      throw DataError(fmt::format("bilevel.teacher {}: the teacher was trained on {} features and {} arms, the data "
                                  "{} has {} features and {} arms; give a teacher trained on this dataset's trial, or "
                                  "drop bilevel.teacher to train one first",
                                  path, a.features, a.arms, env_.src.name(), env_.meta.num_features,
                                  env_.meta.num_arms));
    try {
      teacher_->check_compatible(env_.meta, env_.src.name());
    } catch (const DataError& e) {
      throw DataError(fmt::format("bilevel.teacher {}: {}", path, e.what()));
    }
    if (a.trunk != b.trunk || a.head != b.head || a.shared_trunk != b.shared_trunk || a.activation != b.activation ||
        a.arm_column != b.arm_column || a.features != b.features || a.arms != b.arms)
      throw DataError(fmt::format("bilevel.teacher {}: its architecture ({}) differs from the target's model section "
                                  "({}); Bi-DFCL's teacher, target and bridge share one architecture: train the "
                                  "teacher with this run's model section, or drop bilevel.teacher to train one first",
                                  path, describe(a, teacher_->net->num_parameters()),
                                  describe(b, env_.net.num_parameters())));
    teacher_path_ = path;
    teacher_hash_ = param_hash(teacher_->net->flat());
    log::info("bilevel: teacher {} ({} parameters, hash {})", path, teacher_->net->num_parameters(), teacher_hash_);
  }

  // TSM-SL on the trial with this run's model, optimiser and data, into <output>/teacher (reused when a finished one
  // is there: a resumed run keeps its teacher).
  std::string train_teacher() {
    const std::string dir = env_.tc.output + "/teacher";
    const std::string best = dir + "/best.ckpt";
    if (FILE* f = std::fopen(best.c_str(), "rb")) {
      std::fclose(f);
      log::info("bilevel: reusing the teacher in {}", best);
      return best;
    }
    Config t = Config::from_string(env_.cfg.dump(), "bilevel teacher");
    t.set("loss={name: tsm_sl}");
    t.set("train.source=rct");
    t.set("train.output=" + dir);
    // The teacher trains on the (small) trial, not the log the target sees: its batch size and epochs are derived from
    // the trial's rows (train.batch_size = auto), unless bilevel.teacher_epochs fixes the epochs.
    t.set("train.batch_size=auto");
    t.set(cfg_.teacher_epochs > 0 ? fmt::format("train.epochs={}", cfg_.teacher_epochs) : "train.epochs=auto");
    t.set("train.resume=");
    t.set("train.init_from=");
    t.set("train.max_steps=0");
    t.set("validation.metric=loss");
    t.set("model.revenue_output=auto");
    t.set("model.cost_output=auto");
    log::info("bilevel: training the teacher (TSM-SL on the trial, {} epochs) into {}",
              cfg_.teacher_epochs > 0 ? std::to_string(cfg_.teacher_epochs) : "auto", dir);
    train::Trainer trainer(t, env_.src, comm_, env_.threads);
    const train::TrainResult r = trainer.run();
    return r.best_checkpoint.empty() ? r.last_checkpoint : r.best_checkpoint;
  }

  int64_t rct_batch_rows() const {
    return cfg_.rct_batch == 0 || cfg_.rct_batch > trial_.rows ? trial_.rows : cfg_.rct_batch;
  }

  // This rank's rows as blocks (one per logical shard under dist.deterministic, else one), with the teacher's and
  // the snapshot's outputs.
  void build_parts(const data::Table& rows) {
    const int64_t R = deterministic_ ? env_.block_rows : rows.rows;
    const int64_t nb = R > 0 ? rows.rows / R : 0;
    parts_.resize(size_t(nb));
    data::Table block;
    for (int64_t k = 0; k < nb; ++k) {
      const data::Table* src = &rows;
      if (nb > 1) {
        block.with_weight = true;
        block.reset(env_.meta, R);
        for (int64_t i = 0; i < R; ++i) block.copy_row(i, rows, k * R + i);
        src = &block;
      }
      Part& p = parts_[size_t(k)];
      p.curvature.reset();
      p.batch = model::to_batch(*src, dtype_, device_);
      model::Batch tb = model::to_batch(*src, teacher_->net->flat().scalar_type(), device_);
      teacher_->scaler.apply_(tb.x);
      const model::Scores ts = teacher_->net->forward_train(teacher_->net->flat().detach(), tb.x, teacher_cache_);
      p.in.teacher = cells(ts.r_hat, ts.c_hat).to(dtype_);
      env_.scaler.apply_(p.batch.x);
      const model::Scores s = env_.net.forward_train(env_.net.flat().detach(), p.batch.x, p.cache);
      p.in.snapshot = cells(s.r_hat, s.c_hat);  // a copy: the cache's buffers are reused
    }
    // κ = 1 / (N M): N the global batch's weight (exact in any order: row weights are 0 or 1)
    double w = 0;
    for (const Part& p : parts_) w += p.batch.weight.sum().item<double>();
    w = comm_.allreduce_value(w);
    kappa_ = w > 0 ? 1.0 / (w * double(env_.meta.num_arms)) : 0.0;
  }

  // Σ over this rank's parts and over the ranks of fn(part) (a vector like θ or φ): one all-reduce, or under
  // dist.deterministic every part's vector gathered and added in block order (the same bits for any world size).
  at::Tensor reduce(const std::function<at::Tensor(Part&)>& fn) {
    if (!deterministic_) {
      at::Tensor sum;
      for (Part& p : parts_) {
        at::Tensor g = fn(p);
        sum = sum.defined() ? sum.add_(g) : g.clone();
      }
      sum = sum.contiguous();
      comm_.allreduce(sum);
      return sum;
    }
    std::vector<double> mine;
    int64_t n = 0;
    at::Tensor like;
    for (Part& p : parts_) {
      const at::Tensor g = fn(p);
      like = g;
      const at::Tensor d = g.detach().to(at::kCPU, at::kDouble).contiguous();
      n = d.numel();
      mine.insert(mine.end(), d.data_ptr<double>(), d.data_ptr<double>() + n);
    }
    const std::vector<std::vector<double>> all = comm_.allgather(mine);
    std::vector<double> sum(size_t(n), 0.0);
    for (const auto& part : all)  // rank order = logical shard order
      for (size_t k = 0; k * size_t(n) < part.size(); ++k)
        for (size_t j = 0; j < size_t(n); ++j) sum[j] += part[k * size_t(n) + j];
    return at::from_blob(sum.data(), {n}, at::TensorOptions().dtype(at::kDouble)).to(like.options()).clone();
  }

  // The bridge's gates at the current φ (B x 2M), through its hand-written forward.
  at::Tensor gates(const at::Tensor& x) {
    const model::Scores w = bridge_->forward_train(bridge_->flat().detach(), x, bridge_cache_);
    return cells(w.r_hat, w.c_hat);
  }

  // ∇_θ L of one part at `theta` (the fused path: forward_train, the closed-form score gradient, backward).
  at::Tensor lower_gradient(const at::Tensor& theta, Part& p, double* value) {
    const model::Scores s = env_.net.forward_train(theta, p.batch.x, cache_);
    at::Tensor d_r, d_c, g;
    const double v = lower_value_and_grad(cells(s.r_hat, s.c_hat), p.targets, kappa_, d_r, d_c);
    if (value) *value += v;
    env_.net.backward(theta, cache_, d_r, d_c, g);
    return g;
  }

  // `upper`: the term belongs to the upper step in progress (named by its number), else to the lower step.
  void check_finite(const at::Tensor& t, int64_t step, const std::string& term, bool upper = true) const {
    if (!at::isfinite(t).all().item<bool>())
      throw DataError(fmt::format("bilevel: {} is not finite at {} (optimiser step {}); lower "
                                  "bilevel.bridge_optimizer.lr or bilevel.inner_lr, raise bilevel.cg.damping, or "
                                  "check the data for extreme values (dfcl info)",
                                  term,
                                  upper ? fmt::format("upper step {}", upper_steps_ + 1)
                                        : fmt::format("the lower step after {} upper steps", upper_steps_),
                                  step + 1));
  }

  // The trial batch of upper step `u`: rct_batch rows drawn with replacement (counter-based: the same on every rank
  // and after a resume), this rank's contiguous share (all of it under dist.deterministic).
  model::Batch trial_batch(int64_t u, int64_t* global_rows) {
    const int64_t B = rct_batch_rows();
    const bool all = B == trial_.rows;
    const int R = deterministic_ ? 1 : comm_.size(), r = deterministic_ ? 0 : comm_.rank();
    const int64_t a = B * r / R, e = B * (r + 1) / R;
    data::Table t;
    t.with_weight = true;
    t.reset(env_.meta, e - a);
    Rng rng(env_.tc.seed, 0xB1u, uint64_t(u));
    for (int64_t i = 0; i < B; ++i) {
      const int64_t row = all ? i : int64_t(rng.next() % uint64_t(trial_.rows));
      if (i >= a && i < e) t.copy_row(i - a, trial_, row);
    }
    *global_rows = B;
    model::Batch b = model::to_batch(t, dtype_, device_);
    env_.scaler.apply_(b.x);
    return b;
  }

  void upper_step(int64_t step) {
    const bool implicit = cfg_.hypergradient == Hypergradient::kImplicit;
    json rec = {{"step", step + 1}};
    // Step 1: k assumed SGD steps on a copy of θ, on this batch's labels with the current gates (detached).
    auto t0 = Clock::now();
    for (Part& p : parts_) {
      p.in.gates = gates(p.batch.x);
      p.targets = lower_targets(cfg_.labels, p.batch, p.in);
    }
    at::Tensor theta = env_.net.flat().detach().clone();
    const int steps = implicit ? cfg_.k : 1;
    for (int s = 0; s < steps; ++s) theta.sub_(reduce([&](Part& p) { return lower_gradient(theta, p, nullptr); }), cfg_.inner_lr);
    time_.assumed += since(t0);
    // Step 2: λ* on the trial batch under θ', then the upper gradient g = ∇_θ' L_up.
    t0 = Clock::now();
    int64_t n_rct = 0;
    const model::Batch rb = trial_batch(upper_steps_, &n_rct);
    loss::LossContext ctx = env_.context();
    ctx.arm_propensity = propensity_;
    ctx.arm_rows.clear();
    ctx.total_weight = double(n_rct);
    if (deterministic_ || comm_.size() == 1) ctx.reduce_sum = ctx.reduce_max = nullptr;
    const model::Scores rs = env_.net.forward_train(theta, rb.x, cache_);
    ctx.sample_lambda.clear();
    std::vector<double> lambdas;
    if (!env_.loss.lambda_budgets().empty()) {
      const at::Tensor ipw = loss::row_weights(rb, rs, ctx, true);
      for (double b : env_.loss.lambda_budgets())
        lambdas.push_back(loss::primal_lambda(rs.r_hat, rs.c_hat, rb, ipw, ctx, b).lambda);
      ctx.sample_lambda = lambdas;
    }
    time_.lambda += since(t0);
    t0 = Clock::now();
    at::Tensor value, d_r, d_c, g;
    if (env_.loss.value_and_grad(rb, rs, ctx, value, d_r, d_c)) {
      env_.net.backward(theta, cache_, d_r, d_c, g);
    } else {
      torch::AutoGradMode on(true);
      const at::Tensor th = theta.clone().requires_grad_(true);
      value = env_.loss.compute(rb, env_.net.forward(th, rb.x), ctx);
      g = torch::autograd::grad({value}, {th})[0].detach();
      value = value.detach();
    }
    double up = value.to(at::kDouble).item<double>();
    if (!deterministic_ && comm_.size() > 1) {
      g = g.contiguous();
      comm_.allreduce(g);
      up = comm_.allreduce_value(up);
    }
    check_finite(g, step, "the upper (decision) gradient ∇_θ L_up");
    time_.upper += since(t0);
    // Step 3: v = (H + δI)⁻¹ g by CG on the log batch at θ' (implicit), or v = η g at θ (explicit, one unrolled step).
    // The second-order products run in bilevel.upper_dtype (float64 by default, whatever the run's dtype: CG on an
    // ill-conditioned Hessian in float32 turns rounding into visible noise in φ).
    t0 = Clock::now();
    const at::ScalarType ud = cfg_.upper_float64 ? at::kDouble : dtype_;
    const at::Tensor at_theta = (implicit ? theta : env_.net.flat().detach()).to(ud);
    const at::Tensor phi = bridge_->flat().detach().to(ud);
    g = g.to(ud);
    for (Part& p : parts_) {
      p.x_upper = p.batch.x.to(ud);
      p.in_upper = LowerInputs{p.in.teacher.to(ud), p.in.snapshot.to(ud), p.in.gates.to(ud)};
      const LowerTargets t{p.targets.y.to(ud), p.targets.omega.to(ud), p.targets.factual.to(ud), p.targets.weight.to(ud)};
      p.curvature = std::make_unique<LowerCurvature>(env_.net, at_theta, p.x_upper, t, kappa_);
    }
    CgStats cs;
    at::Tensor v;
    if (implicit) {
      int64_t products = 0;
      const MatVec A = [&](const at::Tensor& x) {
        ++products;
        return reduce([&](Part& p) { return cfg_.hvp == Hvp::kExact ? p.curvature->hvp(x) : p.curvature->gauss_newton(x); });
      };
      CgOptions o = cfg_.cg;
      if (cfg_.relative_damping && o.damping > 0)
        o.damping *= curvature_scale(A, g);
      v = cfg_.cg_warm_start && v_.defined() ? v_.clone() : at::Tensor();
      cs = conjugate_gradient(A, g, v, o);
      hvps_epoch_ += products;
      if (cs.negative_curvature) ++neg_epoch_, ++neg_total_;
      if (cs.diverged) ++div_epoch_, ++div_total_;
      if (cs.negative_curvature || cs.diverged)
        log::warn("bilevel: upper step {}: CG stopped on {} after {} iterations (residual {:.3g}, damping {:.3g}); "
                  "{} such step(s) so far. Raise bilevel.cg.damping or use bilevel.cg.hvp=gauss_newton if it recurs",
                  upper_steps_ + 1, cs.negative_curvature ? "negative curvature" : "a diverging residual",
                  cs.iterations, cs.residual, cs.damping, neg_total_ + div_total_);
      check_finite(v, step, "the CG solution v = H⁻¹ ∇_θ L_up");
      v_ = v.clone();
    } else {
      v = g * cfg_.inner_lr;
    }
    time_.cg += since(t0);
    // Step 4: the hypergradient (the mixed term) and the bridge's Adam step.
    t0 = Clock::now();
    const at::Tensor hg = reduce([&](Part& p) {
      if (cfg_.mixed == MixedTerm::kAutograd) {
        model::Batch b = p.batch;
        b.x = p.x_upper;
        return mixed_term_autograd(env_.net, at_theta, *bridge_, phi, b, cfg_.labels, p.in_upper.teacher,
                                   p.in_upper.snapshot, v, kappa_);
      }
      return mixed_term(*bridge_, phi, p.x_upper, cfg_.labels, *p.curvature, p.in_upper, v, kappa_, &bridge_cache_);
    }).to(dtype_);
    check_finite(hg, step, fmt::format("the hypergradient's mixed term −(∇²_θφ L)ᵀ v ({})",
                                       cfg_.mixed == MixedTerm::kAutograd ? "double backward" : "closed form"));
    bridge_opt_->step(bridge_->flat(), hg, cfg_.bridge.lr);
    time_.mixed += since(t0);
    for (Part& p : parts_) p.curvature.reset();
    ++upper_steps_;
    rec["cg_iterations"] = cs.iterations;
    rec["cg_residual"] = cs.residual;
    rec["damping"] = cs.damping;
    rec["negative_curvature"] = cs.negative_curvature;
    rec["diverged"] = cs.diverged;
    rec["lambda"] = lambdas;
    rec["upper_loss"] = up;
    rec["hypergradient_norm"] = hg.norm().item<double>();
    records_.push_back(rec);
  }

  const train::StepEnv env_;
  BilevelConfig cfg_;
  dist::Communicator& comm_;
  at::ScalarType dtype_;
  at::Device device_;
  bool deterministic_;
  data::Table trial_;
  std::vector<double> propensity_;
  std::unique_ptr<train::TrainedModel> teacher_;
  std::string teacher_path_, teacher_hash_;
  std::unique_ptr<model::UpliftNet> bridge_;
  std::unique_ptr<train::Optimizer> bridge_opt_;
  std::vector<Part> parts_;
  double kappa_ = 0;
  model::ForwardCache cache_, bridge_cache_, teacher_cache_;
  at::Tensor v_;  // CG's warm start: the last upper step's solution
  at::Tensor lower_grad_;  // the lower step's gradient buffer (the reducer reduces it in place)
  int64_t upper_steps_ = 0, neg_total_ = 0, div_total_ = 0, neg_epoch_ = 0, div_epoch_ = 0, hvps_epoch_ = 0;
  json records_ = json::array();
  Times time_;
};

}  // namespace

void check_inputs(data::RowSource& src, const train::TrainConfig& tc) {
  if (tc.source != data::SourceFilter::kObservational)
    throw ConfigError(fmt::format("train.source is '{}', but Bi-DFCL's lower level trains on the observational log "
                                  "(the trial is its upper level): set train.source=observational",
                                  tc.source_name));
  const int64_t N = src.meta().num_rows, chunk = std::max<int64_t>(1, src.chunk_rows());
  bool log = false;
  std::vector<uint8_t> s;
  for (int64_t a = 0; a < N && !log; a += chunk) {
    src.read_source(a, std::min(chunk, N - a), s);
    for (uint8_t v : s) log = log || v == uint8_t(data::Source::kObservational);
  }
  if (!log)
    throw DataError(fmt::format("{}: no observational (log) rows: Bi-DFCL's lower level needs the log. Generate or "
                                "import a dataset with both a trial and a log (generate.observational_rows > 0), or "
                                "train DFCL on the trial alone (configs/train.yaml with loss ppl)",
                                src.name()));
  if (!data::has_rct_rows(src))
    throw DataError(fmt::format("{}: no trial (RCT) rows: Bi-DFCL's upper level judges decisions on the randomised "
                                "trial. Add the trial (train.data: [trial.h5, log.h5]) or generate.rct_rows > 0",
                                src.name()));
}

train::StepMethodFactory bilevel_method() {
  return [](const train::StepEnv& env) -> std::unique_ptr<train::StepMethod> {
    return std::make_unique<BilevelMethod>(env);
  };
}

}  // namespace dfcl::bilevel
