// \brief Trainer: the step (fused or autograd), the epoch loop, validation, checkpoints, resume, early stopping.
#include "train/trainer.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::NoGradGuard, torch::cuda::is_available

#include <sys/stat.h>  // for mkdir

#include <algorithm>  // for std::min
#include <cerrno>     // for errno
#include <chrono>     // for std::chrono
#include <cmath>      // for std::isfinite
#include <cstring>    // for std::strerror
#include <fstream>    // for std::ofstream

#include "core/error.h"          // for ConfigError, DataError, IoError
#include "core/log.h"            // for log::info
#include "core/progress.h"       // for Progress
#include "data/loader.h"         // for Loader
#include "data/schema.h"         // for Table, kSchemaVersion
#include "data/source.h"         // for RowSource
#include "dist/communicator.h"   // for Communicator
#include "loss/decision.h"       // for primal_lambda, row_weights
#include "loss/loss.h"           // for Loss, make_loss
#include "metrics/svg_plot.h"    // for write_svg
#include "model/batch.h"         // for to_batch
#include "model/input_scaler.h"  // for InputScaler
#include "model/param_file.h"    // for write_param_file
#include "model/uplift_net.h"    // for UpliftNet, ForwardCache
#include "train/checkpoint.h"    // for Checkpoint, write_checkpoint, read_checkpoint
#include "train/lr_schedule.h"   // for LrSchedule
#include "train/optimizer.h"     // for Optimizer, make_optimizer
#include "train/trained_model.h"  // for predict, load_trained_model

namespace dfcl::train {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void make_dir(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      partial = dir.substr(0, i);
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        throw IoError(fmt::format("train.output: cannot create directory '{}': {}; choose a writable place", partial,
                                  std::strerror(errno)));
    }
  }
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

struct Trainer::Impl {
  Config cfg;
  TrainConfig tc;
  data::RowSource& src;
  dist::Communicator& comm;
  int threads;
  data::Meta meta;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  std::unique_ptr<model::UpliftNet> net;
  std::unique_ptr<loss::Loss> loss;
  OptimizerConfig opt_cfg;
  LrSchedule schedule;
  std::unique_ptr<Optimizer> opt;
  model::InputScaler scaler;
  std::unique_ptr<ValidationSet> val;
  std::unique_ptr<data::Loader> loader;
  int64_t local_batch = 0;

  // progress of the run (saved in checkpoints)
  int64_t epoch = 0, cursor = 0, step = 0;
  double epoch_loss = 0;  // sum over this epoch's steps of the global batch loss
  int64_t epoch_steps = 0;
  int64_t best_epoch = -1, bad_validations = 0;
  double best_value = 0;
  ValidationResult best;
  json history = json::array();

  // step buffers
  model::ForwardCache cache;
  at::Tensor grad, d_r, d_c, value, loss_acc;
  data::Table table;
  std::vector<double> counts;
  int fused = -1;  // -1: not decided yet
  data::Table lambda_rows;            // RCT sample for losses with lambda_source() == "sample" (read on first use)
  std::vector<double> sample_lambda;  // this epoch's λ* per training budget

  Impl(const Config& c, data::RowSource& s, dist::Communicator& cm, int th)
      : cfg(c), tc(TrainConfig::from(c)), src(s), comm(cm), threads(th), meta(s.meta()) {
    dtype = tc.dtype == "float64" ? at::kDouble : at::kFloat;
    if (tc.device != "cpu") {
      if (!torch::cuda::is_available())
        throw ConfigError(fmt::format(
            "train.device is '{}', but no CUDA device is usable here (this LibTorch {} CUDA); use train.device=cpu",
            tc.device, torch::cuda::is_available() ? "has" : "may lack"));
      device = at::Device(tc.device);
    }
    const model::UpliftNetConfig mc = model::UpliftNetConfig::from(cfg.sub("model"), meta.num_features, meta.num_arms);
    loss = loss::make_loss(cfg.sub("loss"));
    opt_cfg = OptimizerConfig::from(cfg.sub("optimizer"));
    schedule = LrSchedule::from(cfg.sub("schedule"));
    if (tc.batch_size % comm.size() != 0)
      throw ConfigError(fmt::format("train.batch_size = {} is the global batch; it must be a multiple of the {} ranks",
                                    tc.batch_size, comm.size()));
    local_batch = tc.batch_size / comm.size();
    if (tc.propensity == "design" && int(meta.rct_propensity.size()) != meta.num_arms)
      throw DataError(fmt::format("{}: train.propensity=design needs the dataset's rct_propensity attribute, which it "
                                  "lacks; use train.propensity=batch",
                                  src.name()));
    net = std::make_unique<model::UpliftNet>(mc, tc.seed, dtype, device);
    opt = make_optimizer(opt_cfg, net->flat());

    data::LoaderOptions lo;
    lo.batch_size = local_batch;
    lo.rank = comm.rank(), lo.world = comm.size();
    lo.seed = tc.seed;
    lo.shuffle_buffer = tc.shuffle_buffer;
    lo.split = data::Split::kTrain;
    lo.split_spec = tc.split;
    lo.source = tc.source;
    lo.remainder = tc.remainder;
    loader = std::make_unique<data::Loader>(src, lo);
    if (loader->batches_per_epoch() == 0)
      throw DataError(fmt::format(
          "{}: the training split holds fewer rows per rank ({}) than one batch ({}); lower train.batch_size or "
          "use more data (train.source = {})",
          src.name(), loader->shard_rows().empty() ? 0 : loader->shard_rows()[size_t(comm.rank())], local_batch,
          tc.source_name));
    const int64_t left = loader->rows_left_out_per_epoch();
    if (left > 0)
      log::info("train: {} rows per rank and epoch do not fill a batch and wait for a later epoch (drop_last; "
                "train.remainder=pad keeps them)",
                left);
    val = std::make_unique<ValidationSet>(src, tc.split, data::Split::kValidation, tc.validation, threads);
    if (!tc.resume.empty()) restore(tc.resume);
    else if (!tc.init_from.empty()) init_from(tc.init_from);
    else if (tc.standardize) fit_scaler();
  }

  // Moments of the training rows: each rank scans its slice of the file, the sums are reduced.
  void fit_scaler() {
    const int64_t N = meta.num_rows, R = comm.size(), r = comm.rank(), chunk = src.chunk_rows();
    const int64_t chunks = (N + chunk - 1) / chunk, c0 = chunks * r / R, c1 = chunks * (r + 1) / R;
    const int64_t budget = (tc.standardize_rows + R - 1) / R;
    std::vector<double> sum(size_t(meta.num_features), 0.0), sq = sum;
    double n = 0;
    data::Table t;
    for (int64_t c = c0; c < c1 && n < double(budget); ++c) {
      const int64_t a = c * chunk, k = std::min(chunk, N - a);
      src.read(a, k, t);
      for (int64_t i = 0; i < k && n < double(budget); ++i) {
        if (tc.split.of(t.row_id[i]) != data::Split::kTrain) continue;
        if (tc.source == data::SourceFilter::kRct && t.source[i] != uint8_t(data::Source::kRct)) continue;
        if (tc.source == data::SourceFilter::kObservational && t.source[i] != uint8_t(data::Source::kObservational))
          continue;
        model::InputScaler::accumulate(t.features.data() + i * meta.num_features, 1, meta.num_features, sum, sq);
        n += 1;
      }
    }
    std::vector<double> all = sum;
    all.insert(all.end(), sq.begin(), sq.end());
    all.push_back(n);
    comm.allreduce_values(all);
    const size_t F = size_t(meta.num_features);
    scaler = model::InputScaler::from_moments(all.back(), std::vector<double>(all.begin(), all.begin() + F),
                                              std::vector<double>(all.begin() + F, all.begin() + 2 * F));
  }

  // What every step's loss gets besides the batch: the dataset's RCT propensities, the global batch's per-arm weighted
  // rows and total weight (one small all-reduce), reductions through the Communicator, and this epoch's λ* (if any).
  loss::LossContext base_context() {
    loss::LossContext ctx;
    if (int(meta.rct_propensity.size()) == meta.num_arms) ctx.arm_propensity = meta.rct_propensity;
    ctx.reduce_sum = [this](std::vector<double>& v) { comm.allreduce_values(v, dist::ReduceOp::kSum); };
    ctx.reduce_max = [this](std::vector<double>& v) { comm.allreduce_values(v, dist::ReduceOp::kMax); };
    ctx.sample_lambda = sample_lambda;
    return ctx;
  }

  loss::LossContext step_context() {
    const int M = meta.num_arms;
    counts.assign(size_t(M) + 1, 0.0);
    for (int64_t i = 0; i < table.rows; ++i) {
      const double w = table.with_weight ? table.weight[size_t(i)] : 1.0;
      counts[size_t(table.treatment[size_t(i)])] += w;
      counts[size_t(M)] += w;
    }
    comm.allreduce_values(counts);
    loss::LossContext ctx = base_context();
    if (tc.propensity == "batch") ctx.arm_rows.assign(counts.begin(), counts.begin() + M);  // tsm_sl: N_j of the batch
    ctx.total_weight = counts[size_t(M)];
    return ctx;
  }

  // Losses that take λ* from an RCT sample: score the sample with the current model, bisect each training budget.
  void prepare_epoch_lambda() {
    const std::vector<double> budgets = loss->lambda_budgets();
    sample_lambda.clear();
    if (budgets.empty() || loss->lambda_source() != "sample") return;
    if (lambda_rows.rows == 0)
      lambda_rows = read_rct_rows(src, tc.split, data::Split::kTrain, tc.lambda_sample_rows, "loss.lambda_source=sample");
    torch::NoGradGuard no_grad;
    const ScoreMap map{loss.get(), val->step_costs()};
    const metrics::ScoreTable sc = predict(*net, scaler, lambda_rows, net->flat(), &map);
    model::Batch b = model::to_batch(lambda_rows, at::kDouble, at::kCPU);
    const auto o = at::TensorOptions().dtype(at::kFloat);
    model::Scores s{at::from_blob(const_cast<float*>(sc.r.data()), {sc.n, sc.m}, o).to(at::kDouble),
                    at::from_blob(const_cast<float*>(sc.c.data()), {sc.n, sc.m}, o).to(at::kDouble)};
    loss::LossContext ctx = base_context();
    ctx.reduce_sum = nullptr, ctx.reduce_max = nullptr;  // every rank holds the same sample
    const at::Tensor u = loss::row_weights(b, s, ctx, true);
    for (double bud : budgets) sample_lambda.push_back(loss::primal_lambda(s.r_hat, s.c_hat, b, u, ctx, bud).lambda);
  }

  // One optimiser step on the batch in `table`; adds this rank's share of the global batch loss to loss_acc.
  void train_step(int64_t total_steps) {
    const loss::LossContext ctx = step_context();
    model::Batch b = model::to_batch(table, dtype, device);
    scaler.apply_(b.x);
    if (fused != 0) {
      const model::Scores s = net->forward_train(net->flat(), b.x, cache);
      const bool ok = tc.fused != "off" && loss->value_and_grad(b, s, ctx, value, d_r, d_c);
      if (fused < 0) {
        fused = ok ? 1 : 0;
        log::info("train: {} gradient path ({})", ok ? "fused" : "autograd",
                  ok ? "the loss's closed-form score gradient + the net's backward" :
                       tc.fused == "off" ? "train.fused=off" : fmt::format("loss {} has no fused gradient", loss->name()));
      }
      if (ok) net->backward(net->flat(), cache, d_r, d_c, grad);
    }
    if (fused == 0) {
      at::Tensor& p = net->flat();
      if (p.grad().defined()) p.mutable_grad().zero_();
      const model::Scores s = net->forward(p, b.x);
      at::Tensor l = loss->compute(b, s, ctx);
      l.backward();
      value = l.detach();
      grad = p.grad();
    }
    comm.allreduce(grad, dist::ReduceOp::kSum);  // each rank's loss is its share of the global batch loss
    {
      torch::NoGradGuard no_grad;
      if (!loss_acc.defined()) loss_acc = at::zeros({}, value.options().dtype(at::kDouble));
      loss_acc.add_(value);
      opt->step(net->flat(), grad, opt_cfg.lr * schedule.factor(step, total_steps));
    }
    ++step;
  }

  // The global mean batch loss accumulated in loss_acc since the last call (one all-reduce), reset.
  double take_loss(int64_t steps) {
    double v = loss_acc.defined() ? loss_acc.item<double>() : 0.0;
    if (loss_acc.defined()) loss_acc.zero_();
    v = comm.allreduce_value(v);
    return steps > 0 ? v / double(steps) : 0.0;
  }

  void check_finite(double loss_value) const {
    if (!std::isfinite(loss_value))
      throw DataError(fmt::format(
          "train: the loss became {} at epoch {}, step {}; lower optimizer.lr, check the data for extreme values "
          "(dfcl info), or resume from the last good checkpoint {}/last.ckpt with a smaller rate",
          loss_value, epoch + 1, step, tc.output));
  }

  Checkpoint snapshot() const {
    Checkpoint ck;
    ck.schema_version = data::kSchemaVersion;
    ck.config = cfg.dump();
    ck.epoch = epoch, ck.batch = cursor, ck.step = step;
    ck.state = {{"features", meta.num_features},
                {"arms", meta.num_arms},
                {"feature_names", meta.feature_names},
                {"arm_names", meta.arm_names},
                {"dtype", tc.dtype},
                {"seed", tc.seed},
                {"world_size", comm.size()},
                {"rng", {{"kind", "counter"}, {"seed", tc.seed}, {"epoch", epoch}, {"cursor", cursor}}},
                {"epoch_loss", epoch_loss},
                {"epoch_steps", epoch_steps},
                {"best_epoch", best_epoch},
                {"best_value", best_value},
                {"bad_validations", bad_validations},
                {"history", history},
                {"step_costs", val->step_costs()},
                {"optimizer", opt->name()}};
    for (const auto& kv : net->named_parameters()) ck.tensors.emplace_back("model." + kv.first, kv.second.detach());
    for (const auto& kv : opt->state()) ck.tensors.emplace_back("optim." + kv.first, kv.second);
    for (const auto& kv : scaler.to_tensors()) ck.tensors.push_back(kv);
    return ck;
  }

  // Rank 0 writes; every rank waits at the barrier so none runs ahead into a collective while rank 0 does I/O.
  void save(const std::string& name) {
    if (comm.rank() == 0) {
      make_dir(tc.output);
      write_checkpoint(tc.output + "/" + name, snapshot());
    }
    comm.barrier();
  }

  // Fine-tuning: parameters and input scaler from another run (same architecture), fresh optimiser and counters.
  void init_from(const std::string& path) {
    const TrainedModel m = load_trained_model(path, tc.device);
    m.check_compatible(meta, src.name());
    if (m.net->num_parameters() != net->num_parameters() || m.net->config().trunk != net->config().trunk ||
        m.net->config().head != net->config().head || m.net->config().shared_trunk != net->config().shared_trunk)
      throw ConfigError(fmt::format("train.init_from: {} holds another architecture ({} parameters) than this run's "
                                    "model section ({}); use the same model settings",
                                    path, m.net->num_parameters(), net->num_parameters()));
    torch::NoGradGuard no_grad;
    net->flat().copy_(m.net->flat().to(net->flat().scalar_type()));
    scaler = m.scaler;
    log::info("train: starting from the parameters of {}", path);
  }

  void restore(const std::string& path) {
    Checkpoint ck = read_checkpoint(path);
    const json& st = ck.state;
    if (st.value("features", -1) != meta.num_features || st.value("arms", -1) != meta.num_arms)
      throw DataError(fmt::format("{}: the checkpoint was trained on {} features and {} arms, the data {} has {} and "
                                  "{}; resume on the same dataset",
                                  path, st.value("features", -1), st.value("arms", -1), src.name(), meta.num_features,
                                  meta.num_arms));
    if (ck.schema_version != data::kSchemaVersion)
      throw DataError(fmt::format("{}: written for dataset schema v{}, this build reads v{}", path, ck.schema_version,
                                  data::kSchemaVersion));
    torch::NoGradGuard no_grad;
    model::NamedTensors optim;
    for (const auto& e : net->layout().entries()) {
      const std::string key = "model." + e.name;
      const at::Tensor* t = nullptr;
      for (const auto& kv : ck.tensors)
        if (kv.first == key) t = &kv.second;
      if (!t || t->sizes() != at::IntArrayRef(e.shape))
        throw DataError(fmt::format("{}: parameter '{}' is {}; the checkpoint was written for another model "
                                    "architecture (compare its model section with this run's)",
                                    path, e.name, t ? "of another shape" : "missing"));
      net->parameter(net->flat(), e.name).copy_(*t);
    }
    for (const auto& kv : ck.tensors)
      if (kv.first.rfind("optim.", 0) == 0) optim.emplace_back(kv.first.substr(6), kv.second.to(device));
    opt->load_state(optim);
    scaler = model::InputScaler::from_tensors(ck.tensors, meta.num_features, path);
    epoch = ck.epoch, cursor = ck.batch, step = ck.step;
    epoch_loss = st.value("epoch_loss", 0.0);
    epoch_steps = st.value("epoch_steps", int64_t(0));
    best_epoch = st.value("best_epoch", int64_t(-1));
    best_value = st.value("best_value", 0.0);
    bad_validations = st.value("bad_validations", int64_t(0));
    history = st.value("history", json::array());
    if (cursor > loader->batches_per_epoch())
      throw DataError(fmt::format("{}: its sampler cursor ({} batches into epoch {}) lies beyond this run's {} batches "
                                  "per epoch; resume with the same data, split and batch size",
                                  path, cursor, epoch + 1, loader->batches_per_epoch()));
    log::info("train: resumed from {} at epoch {}, batch {} of {}, step {}", path, epoch + 1, cursor,
              loader->batches_per_epoch(), step);
  }

  void write_outputs(TrainResult& r) {
    r.output = tc.output;
    r.last_checkpoint = tc.output + "/last.ckpt";
    r.metrics_file = tc.output + "/metrics.jsonl";
    r.curve_plot = tc.output + "/training_curve.svg";
    if (best_epoch > 0) r.best_checkpoint = tc.output + "/best.ckpt", r.model_file = tc.output + "/model.pt";
    if (comm.rank() != 0) return;
    make_dir(tc.output);
    {
      const std::string tmp = r.metrics_file + ".partial";
      std::ofstream f(tmp);
      for (const auto& h : history) f << h.dump() << '\n';
      if (!f) throw IoError(fmt::format("cannot write {}: check that {} is writable", tmp, tc.output));
      f.close();
      if (std::rename(tmp.c_str(), r.metrics_file.c_str()) != 0)
        throw IoError(fmt::format("cannot rename {} to {}: {}", tmp, r.metrics_file, std::strerror(errno)));
    }
    metrics::Plot p;
    p.title = fmt::format("Training curve: loss {} per epoch", loss->name());
    p.xlabel = "epoch";
    p.ylabel = "loss (mean over batches / validation rows)";
    metrics::Series tr{"train loss", {}, {}, "#1f77b4", false, true, true};
    metrics::Series va{"validation loss", {}, {}, "#d62728", false, true, true};
    for (const auto& h : history) {
      const double e = h["epoch"].get<double>();
      if (h.contains("train_loss") && h["train_loss"].is_number()) tr.x.push_back(e), tr.y.push_back(h["train_loss"]);
      if (h.contains("validation") && h["validation"]["loss"].is_number())
        va.x.push_back(e), va.y.push_back(h["validation"]["loss"]);
    }
    p.series = {tr, va};
    metrics::write_svg(r.curve_plot, p);
  }

  TrainResult run() {
    TrainResult r;
    const auto t0 = Clock::now();
    double step_seconds = 0;
    const int64_t bpe = loader->batches_per_epoch(), total_steps = int64_t(tc.epochs) * bpe;
    const ValidationConfig& vc = tc.validation;
    log::info("train: {} | {} {} train rows/epoch on {} rank(s), {} batches of {} | loss {} | {} ({}) on {} | "
              "{} parameters",
              src.name(), bpe * tc.batch_size, tc.source_name, comm.size(), bpe, tc.batch_size, loss->name(),
              opt->name(), fmt::format("lr {}", opt_cfg.lr), tc.device, net->num_parameters());
    bool stop = false;
    while (epoch < tc.epochs && !stop) {
      loader->start_epoch(epoch);
      prepare_epoch_lambda();
      for (int64_t b = 0; b < cursor; ++b)  // replay the consumed part of the epoch (resume)
        if (!loader->next(table)) throw DataError("train: the data ended while replaying the sampler cursor");
      const bool last_epoch = epoch + 1 == tc.epochs;
      Progress bar(fmt::format("epoch {}/{}", epoch + 1, tc.epochs), (bpe - cursor) * tc.batch_size, "samples");
      int64_t since_report = 0;
      for (int64_t b = cursor; b < bpe; ++b) {
        if (!loader->next(table))
          throw DataError(fmt::format("train: the loader ended after {} of {} batches in epoch {}", b, bpe, epoch + 1));
        const auto ts = Clock::now();
        train_step(total_steps);
        step_seconds += seconds_since(ts);
        ++epoch_steps, ++since_report, cursor = b + 1;
        r.samples += tc.batch_size;
        bar.advance(tc.batch_size);
        if (since_report >= 50 || b + 1 == bpe) {
          const double l = take_loss(since_report);
          check_finite(l);
          epoch_loss += l * double(since_report);
          since_report = 0;
          bar.set_status(fmt::format("loss {:.5g}", l));
        }
        if (tc.checkpoint_steps > 0 && step % tc.checkpoint_steps == 0 && b + 1 < bpe) save("last.ckpt");
        if (tc.max_steps > 0 && step >= tc.max_steps && b + 1 < bpe) {
          if (since_report > 0) epoch_loss += take_loss(since_report) * double(since_report);
          save("last.ckpt");
          r.partial = stop = true;
          break;
        }
      }
      bar.finish();
      if (stop) break;
      // epoch end
      json rec = {{"epoch", epoch + 1},
                  {"step", step},
                  {"train_loss", num(epoch_steps > 0 ? epoch_loss / double(epoch_steps) : 0.0)},
                  {"lr", opt_cfg.lr * schedule.factor(std::max<int64_t>(0, step - 1), total_steps)}};
      if ((epoch + 1) % vc.every == 0 || last_epoch) {
        loss::LossContext vctx = base_context();  // all validation rows are one batch: N_j from them
        vctx.reduce_sum = nullptr, vctx.reduce_max = nullptr;  // every rank holds the same validation rows
        if (tc.propensity != "design") vctx.arm_propensity.clear();
        const ValidationResult v = val->evaluate(*net, net->flat(), scaler, *loss, vctx);
        const double x = v.select(vc.metric);
        if (!std::isfinite(x))
          throw ConfigError(fmt::format("validation.metric = {} is undefined on this data ({}); use eom or loss",
                                        vc.metric_name,
                                        vc.metric == SelectMetric::kAucc ? "AUCC needs two arms" :
                                                                           "regret needs the true tables of synthetic data"));
        const bool better = best_epoch < 0 || (vc.higher_is_better() ? x > best_value + vc.min_delta
                                                                     : x < best_value - vc.min_delta);
        rec["validation"] = v.to_json();
        rec["best"] = better;
        log::info("epoch {}: train loss {:.5g} | validation loss {:.5g}, EOM {:.5g}{}{}{}", epoch + 1,
                  rec["train_loss"].is_number() ? rec["train_loss"].get<double>() : NAN, v.loss, v.eom_mean,
                  std::isfinite(v.aucc) ? fmt::format(", AUCC {:.4f}", v.aucc) : "",
                  std::isfinite(v.regret_mean) ? fmt::format(", regret {:.5g}", v.regret_mean) : "",
                  better ? " (best)" : "");
        if (better) best_epoch = epoch + 1, best_value = x, best = v, bad_validations = 0;
        else ++bad_validations;
        history.push_back(rec);
        epoch += 1, cursor = 0, epoch_loss = 0, epoch_steps = 0;
        if (better) {
          save("best.ckpt");
          if (comm.rank() == 0) {
            model::NamedTensors params = net->named_parameters();
            for (const auto& kv : scaler.to_tensors()) params.push_back(kv);
            model::write_param_file(tc.output + "/model.pt", params);
          }
        }
        if (vc.patience > 0 && bad_validations >= vc.patience && !last_epoch) {
          log::info("train: early stop after epoch {}: {} validations without improving {} (best {:.5g} at epoch {})",
                    epoch, bad_validations, vc.metric_name, best_value, best_epoch);
          r.early_stopped = stop = true;
        }
      } else {
        history.push_back(rec);
        epoch += 1, cursor = 0, epoch_loss = 0, epoch_steps = 0;
      }
      save("last.ckpt");
      if (tc.max_steps > 0 && step >= tc.max_steps && epoch < tc.epochs) r.partial = stop = true;
    }
    r.steps = step;
    r.epochs_done = epoch;
    r.fused = fused == 1;
    r.seconds = seconds_since(t0);
    r.samples_per_s = step_seconds > 0 ? double(r.samples) / step_seconds : 0;
    r.best_epoch = best_epoch, r.best_value = best_value, r.best = best;
    r.budgets = val->budgets(), r.random_regret = val->random_regret();
    r.history = history;
    write_outputs(r);
    return r;
  }
};

Trainer::Trainer(const Config& cfg, data::RowSource& source, dist::Communicator& comm, int threads)
    : impl_(std::make_unique<Impl>(cfg, source, comm, threads)) {}
Trainer::~Trainer() = default;
TrainResult Trainer::run() { return impl_->run(); }
const model::UpliftNet& Trainer::net() const { return *impl_->net; }
const TrainConfig& Trainer::config() const { return impl_->tc; }

std::string summary_table(const TrainResult& r, const std::string& metric_name) {
  std::string s = fmt::format("{:>5} {:>8} {:>12} {:>12} {:>12} {:>12} {:>9}\n", "epoch", "step", "train loss",
                              "val loss", "val EOM", "val regret", "val AUCC");
  auto cell = [](const json& j, const char* k, const char* f) {
    return j.contains(k) && j[k].is_number() ? fmt::format(fmt::runtime(f), j[k].get<double>()) : std::string("-");
  };
  for (const auto& h : r.history) {
    const json v = h.contains("validation") ? h["validation"] : json::object();
    s += fmt::format("{:>5} {:>8} {:>12} {:>12} {:>12} {:>12} {:>9}{}\n", h["epoch"].get<int64_t>(),
                     h["step"].get<int64_t>(), cell(h, "train_loss", "{:.5g}"), cell(v, "loss", "{:.5g}"),
                     cell(v, "eom_mean", "{:.5g}"), cell(v, "regret_mean", "{:.5g}"), cell(v, "aucc", "{:.4f}"),
                     h.value("best", false) ? "  *" : "");
  }
  s += fmt::format("(* = best by validation.metric = {}; EOM and regret are means over the validation budgets)",
                   metric_name);
  return s;
}

}  // namespace dfcl::train
