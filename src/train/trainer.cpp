// \brief Trainer: the step (fused or autograd), the epoch loop, validation, checkpoints, resume, early stopping.
#include "train/trainer.h"

#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join
#include <torch/torch.h>  // for torch::NoGradGuard, torch::cuda::is_available

#include <sys/stat.h>  // for mkdir

#include <algorithm>  // for std::min
#include <cerrno>     // for errno
#include <chrono>     // for std::chrono
#include <cmath>      // for std::isfinite
#include <cstdlib>    // for std::getenv, std::atoi
#include <cstring>    // for std::strerror
#include <fstream>    // for std::ofstream
#include <optional>   // for std::optional
#include <thread>     // for std::thread

#include "core/atomic_file.h"  // for AtomicFile
#include "core/error.h"          // for ConfigError, DataError, IoError
#include "core/log.h"            // for log::info
#include "core/progress.h"       // for Progress
#include "data/sharded_loader.h"  // for ShardedLoader
#include "data/schema.h"         // for Table, kSchemaVersion
#include "data/source.h"         // for RowSource
#include "dist/communicator.h"   // for Communicator
#include "dist/consistency.h"    // for check_replicas
#include "dist/reducer.h"        // for Reducer
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
  std::unique_ptr<TrainedModel> start;  // train.init_from's model, until its parameters are copied
  std::unique_ptr<loss::Loss> loss;
  OptimizerConfig opt_cfg;
  LrSchedule schedule;
  std::unique_ptr<Optimizer> opt;
  model::InputScaler scaler;
  std::unique_ptr<ValidationSet> val;
  std::unique_ptr<data::RowSource> val_src;  // validation.data, when validation reads its own files
  std::unique_ptr<data::ShardedLoader> loader;
  int64_t local_batch = 0;
  int logical_shards = 1;
  std::unique_ptr<dist::Reducer> reducer;
  std::unique_ptr<StepMethod> method;  // a method's own step (Bi-DFCL), else train_step's
  std::thread writer;  // rank 0's checkpoint writer (I/O never holds the other ranks at a collective)

  // progress of the run (saved in checkpoints)
  int64_t epoch = 0, cursor = 0, step = 0;
  double epoch_loss = 0;  // sum over this epoch's steps of the global batch loss
  int64_t epoch_steps = 0;
  BestSoFar top;  // the best validation so far
  std::vector<BestSoFar> kept;  // validation.keep_best: the best epoch by each other metric (best_<metric>.ckpt)
  int64_t bad_validations = 0;
  ValidationResult best;
  json history = json::array();
  json derived = json::object();  // what `auto` settings resolved to for this data (stored in checkpoints)

  // step buffers
  model::ForwardCache cache;
  at::Tensor grad, d_r, d_c, value, loss_acc;
  at::Tensor acc;            // gradient accumulation (train.accumulate > 1): the sum of the group's micro-gradients
  int64_t micro = 0;         // micro-batches accumulated in acc so far
  data::Table block;         // dist.deterministic: one logical shard's rows of the batch
  std::vector<double> block_grads;  // dist.deterministic: this rank's per-block gradients (+ loss), back to back
  data::Table table;
  std::vector<double> counts;
  int fused = -1;  // -1: not decided yet
  data::Table lambda_rows;            // RCT sample for losses with lambda_source() == "sample" (read on first use)
  std::vector<double> sample_lambda;  // this epoch's λ* per training budget

  Impl(const Config& c, data::RowSource& s, dist::Communicator& cm, int th, const StepMethodFactory& make_method)
      : cfg(c), tc(TrainConfig::from(c)), src(s), comm(cm), threads(th), meta(s.meta()) {
    dtype = tc.dtype == "float64" ? at::kDouble : at::kFloat;
    if (tc.device != "cpu") {
      if (!torch::cuda::is_available())
        throw ConfigError(fmt::format(
            "train.device is '{}', but no CUDA device is usable here (this LibTorch {} CUDA); use train.device=cpu",
            tc.device, torch::cuda::is_available() ? "has" : "may lack"));
      device = at::Device(tc.device);
      // "cuda" without an index on a multi-rank job: one GPU per rank, by the launcher's local rank (the nccl
      // communicator binds the same one); "cuda:N" is taken as given.
      if (!device.has_index() && comm.size() > 1) {
        const int n = int(torch::cuda::device_count());
        int local = 0;
        for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
          if (const char* e = std::getenv(v)) {
            local = std::atoi(e);
            break;
          }
        if (n > 0) device = at::Device(at::kCUDA, at::DeviceIndex(local % n));
      }
    }
    model::UpliftNetConfig mc = model::UpliftNetConfig::from(cfg.sub("model"), meta.num_features, meta.num_arms);
    loss = loss::make_loss(cfg.sub("loss"));
    if (!tc.init_from.empty()) start = std::make_unique<TrainedModel>(load_trained_model(tc.init_from, tc.device));
    resolve_heads(mc);
    opt_cfg = OptimizerConfig::from(cfg.sub("optimizer"));
    schedule = LrSchedule::from(cfg.sub("schedule"));
    // The logical shards fix the global batch sequence; a resumed run keeps its checkpoint's.
    logical_shards = tc.logical_shards > 0 ? tc.logical_shards : comm.size();
    Checkpoint resumed;
    if (!tc.resume.empty()) {
      resumed = read_checkpoint(tc.resume);
      const int saved = resumed.state.value("logical_shards", 0);
      if (saved > 0) {
        if (tc.logical_shards > 0 && tc.logical_shards != saved)
          throw ConfigError(fmt::format("train.logical_shards = {}, but {} was written with {}; the data order of a "
                                        "run cannot change when it resumes: drop the setting",
                                        tc.logical_shards, tc.resume, saved));
        logical_shards = saved;
      }
      if (logical_shards % comm.size() != 0)
        throw ConfigError(fmt::format("{} was written with {} logical shards, which {} ranks cannot split evenly; "
                                      "resume on a number of ranks that divides {}",
                                      tc.resume, logical_shards, comm.size(), logical_shards));
    }
    if (tc.propensity == "design" && int(meta.rct_propensity.size()) != meta.num_arms)
      throw DataError(fmt::format("{}: train.propensity=design needs the dataset's rct_propensity attribute, which it "
                                  "lacks; use train.propensity=batch",
                                  src.name()));
    net = std::make_unique<model::UpliftNet>(mc, tc.seed, dtype, device);
    opt = make_optimizer(opt_cfg, net->flat());

    data::LoaderOptions lo;
    lo.rank = comm.rank(), lo.world = comm.size();
    lo.seed = tc.seed;
    lo.shuffle_buffer = tc.shuffle_buffer;
    lo.split = data::Split::kTrain;
    lo.split_spec = tc.split;
    lo.source = tc.source;
    lo.remainder = tc.remainder;
    const json saved = resumed.state.is_object() ? resumed.state.value("derived", json::object()) : json::object();
    if (tc.batch_size_auto) derive_batch_size(lo, saved);
    if (tc.batch_size % comm.size() != 0)
      throw ConfigError(fmt::format("train.batch_size = {} is the global batch; it must be a multiple of the {} ranks",
                                    tc.batch_size, comm.size()));
    lo.batch_size = tc.batch_size;  // the global batch: ShardedLoader cuts it into logical shards
    loader = std::make_unique<data::ShardedLoader>(src, lo, logical_shards);
    local_batch = loader->local_batch();
    if (loader->batches_per_epoch() == 0)
      throw DataError(fmt::format(
          "{}: the training split holds fewer rows per logical shard ({}) than one shard's part of a batch ({}); "
          "lower train.batch_size or use more data (train.source = {})",
          src.name(), loader->shard_rows().empty() ? 0 : loader->shard_rows().front(), loader->block_rows(),
          tc.source_name));
    const int64_t left = loader->rows_left_out_per_epoch();
    if (left > 0)
      log::info("train: {} rows per rank and epoch do not fill a batch and wait for a later epoch (drop_last; "
                "train.remainder=pad keeps them)",
                left);
    derive_epochs_and_warmup(saved);
    warn_about_short_runs(loader->batches_per_epoch());
    open_validation();
    if (!tc.resume.empty()) restore(resumed, tc.resume);
    else if (start) init_from(tc.init_from);
    else if (tc.standardize) fit_scaler();
    // Every rank starts from rank 0's parameters. They agree by construction (same seed, same checkpoint; the scaler
    // comes from all-reduced moments), so this is the cheap guarantee that replicas start identical.
    {
      torch::NoGradGuard no_grad;
      comm.broadcast(net->flat(), 0);
    }
    std::vector<dist::ParamSpan> spans;
    for (const auto& e : net->layout().entries()) spans.push_back({e.name, e.offset, e.numel});
    reducer = std::make_unique<dist::Reducer>(comm, std::move(spans), int64_t(net->flat().element_size()),
                                              dist::ReducerOptions::from(cfg));
    if (make_method) {
      if (tc.accumulate > 1)
        throw ConfigError(fmt::format("train.accumulate = {}: gradient accumulation is not available with the {} "
                                      "step; use train.accumulate=1 and a larger train.batch_size",
                                      tc.accumulate, cfg.has("bilevel") ? "bi-level" : "method's"));
      StepEnv env{cfg,    tc,    src,   meta,  comm,
                  *reducer, *net, *opt, scaler, *loss,
                  [this] { return base_context(); }, loader->block_rows(), threads};
      method = make_method(env);
      if (!tc.resume.empty()) method->restore(resumed, tc.resume);
    }
  }

  ~Impl() {
    if (writer.joinable()) writer.join();
  }

  // The held-out trial rows validation judges the model on: the training data's validation split, or a file of its own
  // (validation.data), whole unless validation.split says otherwise.
  void open_validation() {
    const ValidationConfig& vc = tc.validation;
    data::RowSource* vs = &src;
    if (!vc.data.empty()) {
      val_src = data::open_sources(vc.data, "validation.data");
      const data::Meta& vm = val_src->meta();
      if (vm.num_features != meta.num_features || vm.feature_names != meta.feature_names ||
          vm.arm_names != meta.arm_names)
        throw DataError(fmt::format("validation.data {} has {} features and arms [{}], the training data {} has {} and "
                                    "[{}]; validate on data with the training data's features and arms",
                                    val_src->name(), vm.num_features, fmt::join(vm.arm_names, ", "), src.name(),
                                    meta.num_features, fmt::join(meta.arm_names, ", ")));
      vs = val_src.get();
    }
    const bool held_out = !vc.data.empty() && !data::shares_file(vc.data, tc.data);
    if (held_out && vc.split_given && vc.split != data::Split::kAll)
      log::warn("validation.split = {} reads only {:.0f}% of the trial rows of {}, which this run never trains on; "
                "the default for a held-out file is all of it (validation.split=auto)",
                data::to_string(vc.split), 100 * tc.split.fraction(vc.split), vs->name());
    val = std::make_unique<ValidationSet>(*vs, tc.split, vc.split, vc, threads, vc.data.empty() ? tc.data : vc.data);
    log::info("validation: {} trial rows of {} ({} split)", val->rows().rows, vs->name(), data::to_string(vc.split));
  }

  // validation.keep_best: the same run's best epoch by other metrics, each in best_<metric>.ckpt (parameters only
  // matter; model.pt stays the main metric's).
  void keep_other_bests(const ValidationResult& v, int64_t at_epoch) {
    const ValidationConfig& vc = tc.validation;
    kept.resize(vc.keep_best.size());
    for (size_t k = 0; k < vc.keep_best.size(); ++k) {
      ValidationConfig other = vc;
      other.metric = vc.keep_best[k].first, other.min_delta = 0;
      const double x = v.select(other.metric);
      if (!std::isfinite(x) || !kept[k].improved_by(v, x, other)) continue;
      kept[k].take(v, x, at_epoch, other.metric);
      save("best_" + vc.keep_best[k].second + ".ckpt");
    }
  }

  // train.batch_size = auto: the largest power of two <= n / 32 within [64, 4096] for the n training rows (counted by a
  // loader over the same split and filter), rounded up to a multiple of the logical shards; a resumed run keeps its
  // checkpoint's value.
  void derive_batch_size(data::LoaderOptions lo, const json& saved) {
    const char* how = "the largest power of two <= rows / 32, within [64, 4096]";
    if (saved.contains("batch_size")) {
      tc.batch_size = saved["batch_size"].get<int64_t>();
      derived["batch_size"] = {{"value", tc.batch_size}, {"rule", "the resumed checkpoint's"}};
      return;
    }
    lo.batch_size = logical_shards;
    lo.remainder = data::Remainder::kPad;
    const data::ShardedLoader probe(src, lo, logical_shards);
    int64_t n = 0;
    for (int64_t r : probe.shard_rows()) n += r;
    int64_t b = 64;
    while (b * 2 <= n / 32 && b * 2 <= 4096) b *= 2;
    while (b > 1 && b > n) b /= 2;  // fewer than 64 training rows: one batch of at most all of them
    b = std::max<int64_t>(1, (b + logical_shards - 1) / logical_shards) * logical_shards;
    tc.batch_size = b;
    derived["training_rows"] = n;
    derived["batch_size"] = {{"value", b}, {"rule", how}};
    log::info("train.batch_size = auto: {} for the {} training rows ({}; about {} steps per epoch)", b, n, how,
              std::max<int64_t>(1, n / b));
  }

  // train.epochs = auto: 10, or enough epochs for train.min_steps optimiser steps (at most 200); schedule.warmup_steps
  // = auto: a tenth of the run's steps, at most 50.
  void derive_epochs_and_warmup(const json& saved) {
    const int64_t bpe = loader->batches_per_epoch();
    const int64_t spe = std::max<int64_t>(1, (bpe + tc.accumulate - 1) / tc.accumulate);
    if (tc.epochs_auto) {
      if (saved.contains("epochs")) {
        tc.epochs = saved["epochs"].get<int>();
        derived["epochs"] = {{"value", tc.epochs}, {"rule", "the resumed checkpoint's"}};
      } else {
        const int64_t need = (tc.min_steps + spe - 1) / spe;
        tc.epochs = int(std::clamp<int64_t>(need, 10, 200));
        derived["epochs"] = {{"value", tc.epochs},
                             {"rule", fmt::format("10, or enough for train.min_steps = {} steps (at most 200)",
                                                  tc.min_steps)}};
        log::info("train.epochs = auto: {} ({} steps per epoch; at least {} steps{})", tc.epochs, spe, tc.min_steps,
                  need > 200 ? ", capped at 200 epochs" : need > 10 ? "" : ": the floor of 10 epochs gives more");
      }
    }
    if (schedule.warmup_auto) {
      schedule.resolve(int64_t(tc.epochs) * spe);
      derived["warmup_steps"] = {{"value", schedule.warmup_steps}, {"rule", "a tenth of the run's steps, at most 50"}};
      log::info("schedule.warmup_steps = auto: {} of the run's {} optimiser steps", schedule.warmup_steps,
                int64_t(tc.epochs) * spe);
    }
  }

  // Runs too short for their settings: a global batch larger than the training rows (one padded step per epoch), or a
  // warm-up that lasts the whole run (the rate never reaches optimizer.lr).
  void warn_about_short_runs(int64_t bpe) const {
    int64_t rows = 0;
    for (int64_t n : loader->shard_rows()) rows += n;
    if (tc.batch_size > rows)
      log::warn("train.batch_size = {} is more than the {} training rows: every epoch is one step{}; lower "
                "train.batch_size (e.g. {})",
                tc.batch_size, rows,
                tc.remainder == data::Remainder::kPad
                    ? fmt::format(" whose batch is {:.0f}% padding", 100.0 * double(tc.batch_size - rows) / double(tc.batch_size))
                    : "",
                std::max<int64_t>(1, rows / 8));
    const int64_t total = int64_t(tc.epochs) * ((bpe + tc.accumulate - 1) / tc.accumulate);
    if (schedule.warmup_steps >= total)
      log::warn("schedule.warmup_steps = {} is at least the run's {} optimiser steps ({} epochs x {} per epoch): the "
                "learning rate never reaches optimizer.lr = {}; lower schedule.warmup_steps or train.batch_size",
                schedule.warmup_steps, total, tc.epochs, (bpe + tc.accumulate - 1) / tc.accumulate, opt_cfg.lr);
  }

  // A row the model trains on: the training split of the chosen source.
  bool trains_on(int64_t row_id, uint8_t source) const {
    if (tc.split.of(src.split_key(row_id)) != data::Split::kTrain) return false;
    if (tc.source == data::SourceFilter::kRct) return source == uint8_t(data::Source::kRct);
    if (tc.source == data::SourceFilter::kObservational) return source == uint8_t(data::Source::kObservational);
    return true;
  }

  // The range of the revenue and cost labels over every training row (chunks round-robin over the ranks, chunks
  // without a training row skipped after reading their source column; min/max all-reduced), then `auto` output
  // heads resolved against them and explicit heads checked (UpliftNetConfig::resolve_outputs). The resolved heads
  // go into the run's config, so checkpoints, resume, evaluate and allocate build the same net.
  void resolve_heads(model::UpliftNetConfig& mc) {
    if (start && mc.has_auto_outputs()) {  // fine-tuning keeps the heads the starting model was trained with
      const model::UpliftNetConfig& from = start->net->config();
      if (mc.revenue_output == "auto") mc.revenue_output = from.revenue_output;
      if (mc.cost_output == "auto") mc.cost_output = from.cost_output;
    }
    const int64_t N = meta.num_rows, R = comm.size(), chunk = std::max<int64_t>(1, src.chunk_rows());
    model::LabelRange rev, cost;
    data::Table t;
    std::vector<uint8_t> source;
    for (int64_t c = comm.rank(); c * chunk < N; c += R) {
      const int64_t a = c * chunk, k = std::min(chunk, N - a);
      src.read_source(a, k, source);
      bool any = false;
      for (int64_t i = 0; i < k && !any; ++i) any = trains_on(a + i, source[size_t(i)]);
      if (!any) continue;
      src.read(a, k, t);
      for (int64_t i = 0; i < k; ++i)
        if (trains_on(t.row_id[size_t(i)], t.source[size_t(i)]))
          rev.add(t.revenue[size_t(i)]), cost.add(t.cost[size_t(i)]);
    }
    std::vector<double> ext{-rev.min, rev.max, -cost.min, cost.max};
    comm.allreduce_values(ext, dist::ReduceOp::kMax);
    rev.min = -ext[0], rev.max = ext[1], cost.min = -ext[2], cost.max = ext[3];
    rev.rows = cost.rows = int64_t(comm.allreduce_value(double(rev.rows)));
    const std::string where = fmt::format("{} (train.source = {})", src.name(), tc.source_name);
    for (const std::string& line : mc.resolve_outputs(rev, cost, loss->learns_factors(), where))
      log::info("model: {}", line);
    cfg.set("model.revenue_output=" + mc.revenue_output);
    cfg.set("model.cost_output=" + mc.cost_output);
  }

  // Moments of the training rows, the same bits for any number of ranks: whole chunks in file order until they hold
  // train.standardize_rows training rows. Chunks go round-robin to the ranks (round k: rank r scans chunk kR + r; one
  // small all-reduce of the count per round decides whether another round is needed), each chunk's moments are summed
  // on their own, then gathered and added in chunk order.
  void fit_scaler() {
    const int64_t N = meta.num_rows, R = comm.size(), r = comm.rank(), chunk = std::max<int64_t>(1, src.chunk_rows());
    const int64_t chunks = (N + chunk - 1) / chunk;
    const size_t F = size_t(meta.num_features), width = 2 * F + 1;
    std::vector<double> mine;  // per scanned chunk: sum (F), sum of squares (F), rows
    data::Table t;
    double seen = 0;
    for (int64_t round = 0; round * R < chunks && seen < double(tc.standardize_rows); ++round) {
      const int64_t c = round * R + r;
      std::vector<double> m(width, 0.0);
      if (c < chunks) {
        const int64_t a = c * chunk, k = std::min(chunk, N - a);
        src.read(a, k, t);
        std::vector<double> sum(F, 0.0), sq(F, 0.0);
        for (int64_t i = 0; i < k; ++i) {
          if (!trains_on(t.row_id[i], t.source[i])) continue;
          model::InputScaler::accumulate(t.features.data() + i * meta.num_features, 1, meta.num_features, sum, sq);
          m[2 * F] += 1;
        }
        std::copy(sum.begin(), sum.end(), m.begin());
        std::copy(sq.begin(), sq.end(), m.begin() + long(F));
      }
      mine.insert(mine.end(), m.begin(), m.end());
      seen += comm.allreduce_value(m[2 * F]);  // a count: exact in any order
    }
    const std::vector<std::vector<double>> all = comm.allgather(mine);
    std::vector<double> sum(F, 0.0), sq(F, 0.0);
    double n = 0;
    for (int64_t c = 0; c < chunks && n < double(tc.standardize_rows); ++c) {
      const std::vector<double>& part = all[size_t(c % R)];
      const size_t at = size_t(c / R) * width;
      if (at >= part.size()) break;
      for (size_t f = 0; f < F; ++f) sum[f] += part[at + f], sq[f] += part[at + F + f];
      n += part[at + 2 * F];
    }
    scaler = model::InputScaler::from_moments(n, sum, sq);
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
      lambda_rows = data::read_rct_rows(src, tc.split, data::Split::kTrain, tc.lambda_sample_rows, "loss.lambda_source=sample");
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

  // The gradient of the batch in `table` (this rank's rows of the global batch) into `grad`, with the loss value in
  // `value`. Each parameter's slice is handed to `on_ready` as soon as it is final (the reducer's hook).
  void batch_gradient(const data::Table& rows, const loss::LossContext& ctx,
                      const std::function<void(size_t)>& on_ready) {
    model::Batch b = model::to_batch(rows, dtype, device);
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
      if (ok) {
        net->backward(net->flat(), cache, d_r, d_c, grad, on_ready);
        return;
      }
    }
    at::Tensor& p = net->flat();
    if (p.grad().defined()) p.mutable_grad().zero_();
    const model::Scores s = net->forward(p, b.x);
    at::Tensor l = loss->compute(b, s, ctx);
    l.backward();  // autograd accumulates into the flat leaf at once: every parameter is ready at the end
    value = l.detach();
    if (grad.defined() && grad.sizes() == p.sizes() && grad.dtype() == p.dtype() && grad.device() == p.device())
      grad.copy_(p.grad());  // in place: the reducer holds this buffer
    else
      grad = p.grad().clone();
    if (on_ready)
      for (size_t e = net->layout().entries().size(); e-- > 0;) on_ready(e);
  }

  // dist.deterministic: the gradient of each logical shard's block of the global batch on its own, every block's
  // gradient gathered, summed in block order: the same bits for any number of ranks (docs/distributed.md).
  void deterministic_gradient(loss::LossContext ctx) {
    ctx.reduce_sum = ctx.reduce_max = [this](std::vector<double>&) {
      throw ConfigError(fmt::format("dist.deterministic: loss {} reduces batch statistics across ranks inside its "
                                    "gradient, which per-block gradients cannot reproduce bit for bit; use it without "
                                    "dist.deterministic (ranks then agree to rounding)",
                                    loss->name()));
    };
    const int64_t R = loader->block_rows(), nb = table.rows / R, P = net->num_parameters();
    block_grads.assign(size_t(nb * (P + 1)), 0.0);
    for (int64_t k = 0; k < nb; ++k) {
      block.with_weight = true;
      block.reset(meta, R);
      for (int64_t i = 0; i < R; ++i) block.copy_row(i, table, k * R + i);
      batch_gradient(block, ctx, {});
      const at::Tensor g = grad.detach().to(at::kCPU, at::kDouble).contiguous();
      std::memcpy(&block_grads[size_t(k * (P + 1))], g.data_ptr<double>(), sizeof(double) * size_t(P));
      block_grads[size_t(k * (P + 1) + P)] = value.item<double>();
    }
    const std::vector<std::vector<double>> all = comm.allgather(block_grads);
    std::vector<double> sum(size_t(P + 1), 0.0);
    for (const auto& part : all)  // rank order = logical shard order
      for (size_t k = 0; k * size_t(P + 1) < part.size(); ++k)
        for (size_t j = 0; j <= size_t(P); ++j) sum[j] += part[k * size_t(P + 1) + j];
    const at::Tensor g = at::from_blob(sum.data(), {P}, at::TensorOptions().dtype(at::kDouble));
    grad = g.to(net->flat().options().requires_grad(false)).clone();
    // each rank adds value / size to loss_acc, so the all-reduced loss is the global batch's
    value = at::full({}, sum[size_t(P)] / double(comm.size()), grad.options().dtype(at::kDouble));
  }

  // One batch of the global batch sequence: its gradient, reduced across ranks (bucketed, overlapping backward)
  // unless it is one of the first train.accumulate - 1 batches of an accumulation group; an optimiser step when the
  // group is complete or `flush` (end of epoch). Adds this rank's share of the batch loss to loss_acc.
  void train_step(int64_t total_steps, bool flush) {
    if (method) {
      const double v = method->step(table, step, epoch, opt_cfg.lr * schedule.factor(step, total_steps));
      if (!loss_acc.defined()) loss_acc = at::zeros({}, at::TensorOptions().dtype(at::kDouble));
      loss_acc.add_(v);
      micro = 0;
      ++step;
      if (tc.debug) dist::check_replicas(comm, net->flat(), fmt::format("parameters after step {}", step));
      return;
    }
    const loss::LossContext ctx = step_context();
    const bool last = micro + 1 >= tc.accumulate || flush;
    if (tc.deterministic) {
      deterministic_gradient(ctx);
    } else if (tc.accumulate == 1) {
      reducer->prepare(grad.defined() ? grad : (grad = at::zeros_like(net->flat()).detach()));
      batch_gradient(table, ctx, [this](size_t e) { reducer->mark_ready(int(e)); });
      reducer->finish();
    } else {
      // Accumulation: micro-gradients add into acc parameter by parameter; only the group's last batch reduces acc.
      if (!acc.defined()) acc = at::zeros_like(net->flat()).detach();
      if (micro == 0) acc.zero_();
      std::optional<dist::Reducer::NoSync> no_sync;
      if (!last) no_sync.emplace(*reducer);
      reducer->prepare(acc);
      const auto& entries = net->layout().entries();
      batch_gradient(table, ctx, [this, &entries](size_t e) {
        acc.narrow(0, entries[e].offset, entries[e].numel).add_(grad.narrow(0, entries[e].offset, entries[e].numel));
        reducer->mark_ready(int(e));
      });
      reducer->finish();
    }
    torch::NoGradGuard no_grad;
    if (!loss_acc.defined()) loss_acc = at::zeros({}, value.options().dtype(at::kDouble));
    loss_acc.add_(value);
    ++micro;
    if (!last) return;
    at::Tensor& g = tc.accumulate > 1 ? acc.div_(double(micro)) : grad;
    opt->step(net->flat(), g, opt_cfg.lr * schedule.factor(step, total_steps));
    micro = 0;
    ++step;
    if (tc.debug) dist::check_replicas(comm, net->flat(), fmt::format("parameters after step {}", step));
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
                {"logical_shards", logical_shards},
                {"rng", {{"kind", "counter"}, {"seed", tc.seed}, {"epoch", epoch}, {"cursor", cursor}}},
                {"epoch_loss", epoch_loss},
                {"epoch_steps", epoch_steps},
                {"best_epoch", top.epoch},
                {"best_value", top.value},
                {"best_meets_budgets", top.meets},
                {"best_overspend", top.overspend},
                {"bad_validations", bad_validations},
                {"history", history},
                {"derived", derived},
                {"kept_best", kept_json()},
                {"step_costs", val->step_costs()},
                {"optimizer", opt->name()}};
    // Copies: the writer thread serialises them while training goes on.
    add_parameters(ck, "model.", *net);
    add_optimizer_state(ck, "optim.", *opt);
    for (const auto& kv : scaler.to_tensors()) ck.tensors.push_back(kv);
    if (method) method->save(ck);
    return ck;
  }

  // Rank 0 writes, on a background thread, from a snapshot taken now: no rank ever waits at a collective while
  // rank 0 does I/O (the watchdog would count it as a hang), and the files appear atomically (write, fsync, rename).
  // A write still running when the next one starts is waited for (rank 0 only); errors surface at that point.
  void save(const std::string& name, bool with_model = false) {
    if (comm.rank() != 0) return;
    wait_writer();
    make_dir(tc.output);
    auto ck = std::make_shared<Checkpoint>(snapshot());
    model::NamedTensors params;
    if (with_model) {
      for (const auto& kv : net->named_parameters()) params.emplace_back(kv.first, kv.second.detach().clone());
      for (const auto& kv : scaler.to_tensors()) params.push_back(kv);
    }
    const std::string dir = tc.output;
    writer = std::thread([this, ck, name, dir, params = std::move(params)] {
      try {
        write_checkpoint(dir + "/" + name, *ck);
        if (!params.empty()) model::write_param_file(dir + "/model.pt", params);
      } catch (const std::exception& e) {
        writer_error = fmt::format("{}/{}: {}", dir, name, e.what());
      }
    });
  }
  std::string writer_error;
  void wait_writer() {
    if (writer.joinable()) writer.join();
    if (!writer_error.empty()) {
      const std::string e = writer_error;
      writer_error.clear();
      throw IoError(fmt::format("writing a checkpoint failed: {}", e));
    }
  }

  // Fine-tuning: parameters and input scaler from another run (same architecture), fresh optimiser and counters.
  void init_from(const std::string& path) {
    const TrainedModel& m = *start;
    m.check_compatible(meta, src.name());
    if (m.net->num_parameters() != net->num_parameters() || m.net->config().trunk != net->config().trunk ||
        m.net->config().head != net->config().head || m.net->config().shared_trunk != net->config().shared_trunk)
      throw ConfigError(fmt::format("train.init_from: {} holds another architecture ({} parameters) than this run's "
                                    "model section ({}); use the same model settings",
                                    path, m.net->num_parameters(), net->num_parameters()));
    torch::NoGradGuard no_grad;
    net->flat().copy_(m.net->flat().to(net->flat().scalar_type()));
    scaler = m.scaler;
    if (m.net->config().revenue_output != net->config().revenue_output ||
        m.net->config().cost_output != net->config().cost_output)
      log::warn("train.init_from: {} was trained with revenue/cost heads {}/{}, this run uses {}/{}: its outputs "
                "change meaning at the first step",
                path, m.net->config().revenue_output, m.net->config().cost_output, net->config().revenue_output,
                net->config().cost_output);
    log::info("train: starting from the parameters of {}", path);
    start.reset();
  }

  json kept_json() const {
    json a = json::array();
    for (const auto& b : kept)
      a.push_back({{"epoch", b.epoch}, {"value", b.value}, {"meets", b.meets}, {"overspend", b.overspend}});
    return a;
  }

  void restore(const Checkpoint& ck, const std::string& path) {
    const json& st = ck.state;
    kept.clear();
    for (const auto& b : st.value("kept_best", json::array())) {
      BestSoFar x;
      x.epoch = b.value("epoch", int64_t(-1)), x.value = b.value("value", 0.0);
      x.meets = b.value("meets", true), x.overspend = b.value("overspend", 0.0);
      kept.push_back(x);
    }
    if (st.value("features", -1) != meta.num_features || st.value("arms", -1) != meta.num_arms)
      throw DataError(fmt::format("{}: the checkpoint was trained on {} features and {} arms, the data {} has {} and "
                                  "{}; resume on the same dataset",
                                  path, st.value("features", -1), st.value("arms", -1), src.name(), meta.num_features,
                                  meta.num_arms));
    if (ck.schema_version != data::kSchemaVersion)
      throw DataError(fmt::format("{}: written for dataset schema v{}, this build reads v{}", path, ck.schema_version,
                                  data::kSchemaVersion));
    restore_parameters(ck, "model.", *net, path, "parameter");
    restore_optimizer_state(ck, "optim.", *opt, device);
    scaler = model::InputScaler::from_tensors(ck.tensors, meta.num_features, path);
    epoch = ck.epoch, cursor = ck.batch, step = ck.step;
    epoch_loss = st.value("epoch_loss", 0.0);
    epoch_steps = st.value("epoch_steps", int64_t(0));
    top.epoch = st.value("best_epoch", int64_t(-1));
    top.value = st.value("best_value", 0.0);
    top.meets = st.value("best_meets_budgets", true);
    top.overspend = st.value("best_overspend", 0.0);
    bad_validations = st.value("bad_validations", int64_t(0));
    history = st.value("history", json::array());
    if (cursor > loader->batches_per_epoch())
      throw DataError(fmt::format("{}: its sampler cursor ({} batches into epoch {}) lies beyond this run's {} batches "
                                  "per epoch; resume with the same data, split and batch size",
                                  path, cursor, epoch + 1, loader->batches_per_epoch()));
    if (epoch >= tc.epochs)
      throw ConfigError(fmt::format("train.epochs = {}, but {} has finished {} epoch(s): nothing is left to train and "
                                    "nothing is written. Raise train.epochs to continue (e.g. --set train.epochs={})",
                                    tc.epochs, path, epoch, epoch + tc.epochs));
    log::info("train: resumed from {} at epoch {}, batch {} of {}, step {} (written by {} rank(s); {} logical shards)",
              path, epoch + 1, cursor, loader->batches_per_epoch(), step, st.value("world_size", 1), logical_shards);
  }

  void write_outputs(TrainResult& r) {
    r.output = tc.output;
    r.last_checkpoint = tc.output + "/last.ckpt";
    r.metrics_file = tc.output + "/metrics.jsonl";
    r.curve_plot = tc.output + "/training_curve.svg";
    if (top.epoch > 0) r.best_checkpoint = tc.output + "/best.ckpt", r.model_file = tc.output + "/model.pt";
    if (comm.rank() != 0) return;
    make_dir(tc.output);
    {
      AtomicFile f(r.metrics_file, "per-epoch metrics");
      for (const auto& h : history) f.stream() << h.dump() << '\n';
      f.commit();
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

  // The method's statistics of the epoch into its record; the log line's extra part (" | ..." or "").
  std::string method_stats(json& rec) {
    if (!method) return "";
    const json st = method->take_epoch_stats();
    rec[method->name()] = st;
    const std::string line = method->epoch_summary(st);
    return line.empty() ? "" : " | " + line;
  }

  TrainResult run() {
    TrainResult r;
    const auto t0 = Clock::now();
    double step_seconds = 0;
    const int64_t bpe = loader->batches_per_epoch();
    const int64_t total_steps = int64_t(tc.epochs) * ((bpe + tc.accumulate - 1) / tc.accumulate);
    const ValidationConfig& vc = tc.validation;
    log::info("train: {} | {} {} train rows/epoch on {} rank(s) ({}, {} logical shards), {} batches of {}{} | loss {} "
              "| {} ({}) on {} | {} parameters, {} gradient bucket(s)",
              src.name(), bpe * tc.batch_size, tc.source_name, comm.size(), comm.name(), logical_shards, bpe,
              tc.batch_size, tc.accumulate > 1 ? fmt::format(" (x{} per step)", tc.accumulate) : "", loss->name(),
              opt->name(), fmt::format("lr {}", opt_cfg.lr), tc.device, net->num_parameters(),
              reducer->buckets().size());
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
        train_step(total_steps, b + 1 == bpe);
        step_seconds += seconds_since(ts);
        const bool stepped = micro == 0;  // an optimiser step just completed (checkpoints sit on step boundaries)
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
        // A mid-epoch checkpoint carries the epoch's loss so far: the steps since the last report are added first
        // (else a resume divides a partial sum by every step of the epoch).
        auto flush_loss = [&] {
          if (since_report > 0) epoch_loss += take_loss(since_report) * double(since_report);
          since_report = 0;
        };
        if (stepped && tc.checkpoint_steps > 0 && step % tc.checkpoint_steps == 0 && b + 1 < bpe) {
          flush_loss();
          save("last.ckpt");
        }
        if (stepped && tc.max_steps > 0 && step >= tc.max_steps && b + 1 < bpe) {
          flush_loss();
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
          throw ConfigError(fmt::format("validation.metric = {} is undefined on this data ({}); use eom, dr_eom or loss",
                                        vc.metric_name,
                                        vc.metric == SelectMetric::kAucc     ? "AUCC needs two arms"
                                        : vc.metric == SelectMetric::kRegret ? "regret needs the true tables of synthetic data"
                                                                             : "it is not a number"));
        const bool better = top.improved_by(v, x, vc);
        if (!v.meets_budgets)
          for (const auto& d : v.decisions)
            if (d.verdict == metrics::SpendVerdict::kOverspends)
              log::warn("epoch {}: at budget {:.4g} the decisions spend {:.4g} per user (IPW, CI [{:.4g}, {:.4g}]; the "
                        "model predicts {:.4g}){}",
                        epoch + 1, d.budget, d.spend.value, d.spend.lo, d.spend.hi, d.predicted_spend,
                        vc.metric == SelectMetric::kEom ? ": this epoch is only kept if no epoch meets the budgets"
                                                        : "");
        rec["validation"] = v.to_json();
        rec["best"] = better;
        const std::string extra = method_stats(rec);
        log::info("epoch {}: train loss {:.5g} | validation loss {:.5g}, EOM {:.5g}{}{}{}{}{}", epoch + 1,
                  rec["train_loss"].is_number() ? rec["train_loss"].get<double>() : NAN, v.loss, v.eom_mean,
                  std::isfinite(v.dr_eom_mean) ? fmt::format(", DR EOM {:.5g}", v.dr_eom_mean) : "",
                  std::isfinite(v.aucc) ? fmt::format(", AUCC {:.4f}", v.aucc) : "",
                  std::isfinite(v.regret_mean) ? fmt::format(", regret {:.5g}", v.regret_mean) : "",
                  better ? " (best)" : "", extra);
        if (better) top.take(v, x, epoch + 1, vc.metric), best = v, bad_validations = 0;
        else ++bad_validations;
        history.push_back(rec);
        epoch += 1, cursor = 0, epoch_loss = 0, epoch_steps = 0;
        if (better) save("best.ckpt", /*with_model=*/true);
        keep_other_bests(v, epoch);
        if (vc.patience > 0 && bad_validations >= vc.patience && !last_epoch) {
          log::info("train: early stop after epoch {}: {} validations without improving {} (best {:.5g} at epoch {})",
                    epoch, bad_validations, vc.metric_name, top.value, top.epoch);
          r.early_stopped = stop = true;
        }
      } else {
        const std::string extra = method_stats(rec);
        if (!extra.empty()) log::info("epoch {}:{}", epoch + 1, extra);
        history.push_back(rec);
        epoch += 1, cursor = 0, epoch_loss = 0, epoch_steps = 0;
      }
      save("last.ckpt");
      if (tc.max_steps > 0 && step >= tc.max_steps && epoch < tc.epochs) r.partial = stop = true;
    }
    r.steps = step;
    r.epochs_done = epoch;
    r.fused = fused == 1;
    r.logical_shards = logical_shards;
    r.seconds = seconds_since(t0);
    r.samples_per_s = step_seconds > 0 ? double(r.samples) / step_seconds : 0;
    r.best_epoch = top.epoch, r.best_value = top.value, r.best = best;
    if (top.epoch > 0 && !top.meets)
      log::warn("train: no validated epoch's decisions met every validation budget in IPW spend; best.ckpt (epoch {}) "
                "is the least overspending ({:.0f}% over at the CI's low end). Its cost predictions do not separate "
                "the arms enough for lambda to hold the budget: check the cost calibration in metrics.jsonl",
                top.epoch, 100 * top.overspend);
    r.budgets = val->budgets(), r.random_regret = val->random_regret();
    r.history = history;
    r.derived = derived;
    if (comm.rank() == 0) wait_writer();
    write_outputs(r);
    return r;
  }
};

Trainer::Trainer(const Config& cfg, data::RowSource& source, dist::Communicator& comm, int threads,
                 const StepMethodFactory& method)
    : impl_(std::make_unique<Impl>(cfg, source, comm, threads, method)) {}
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
