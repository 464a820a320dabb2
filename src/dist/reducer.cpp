// \brief Reducer: bucket plan, readiness, in-order launch, finish (see reducer.h).
#include "dist/reducer.h"

#include <fmt/format.h>  // for fmt::format

#include <ATen/ATen.h>  // for at::Tensor::narrow

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError, DataError, DistError
#include "core/log.h"     // for log::warn

namespace dfcl::dist {

ReducerOptions ReducerOptions::from(const Config& cfg) {
  ReducerOptions o;
  const double mb = cfg.get<double>("dist.bucket_mb", 25.0), first = cfg.get<double>("dist.first_bucket_mb", 1.0);
  if (!(mb > 0 && mb <= 4096))
    throw ConfigError(fmt::format("dist.bucket_mb = {} must lie in (0, 4096] (MiB per gradient bucket)", mb));
  if (!(first > 0 && first <= 4096))
    throw ConfigError(fmt::format("dist.first_bucket_mb = {} must lie in (0, 4096] (MiB of the first bucket)", first));
  o.bucket_cap_bytes = int64_t(mb * 1048576.0), o.first_bucket_cap_bytes = int64_t(first * 1048576.0);
  o.find_unused = cfg.get<bool>("dist.find_unused", false);
  return o;
}

std::vector<Bucket> assign_buckets(const std::vector<ParamSpan>& params, int64_t element_size,
                                   int64_t first_cap_bytes, int64_t cap_bytes) {
  int64_t expect = 0;
  for (const ParamSpan& p : params) {
    if (p.offset != expect || p.numel < 0)
      throw DataError(fmt::format("reducer: parameter '{}' sits at offset {} with {} elements, expected offset {}; "
                                  "parameters must tile the flat vector in registration order",
                                  p.name, p.offset, p.numel, expect));
    expect += p.numel;
  }
  std::vector<Bucket> out;
  Bucket cur;
  int64_t cur_bytes = 0;
  for (int i = int(params.size()) - 1; i >= 0; --i) {
    const int64_t bytes = params[size_t(i)].numel * element_size;
    const int64_t cap = out.empty() ? first_cap_bytes : cap_bytes;
    if (!cur.params.empty() && cur_bytes + bytes > cap) {
      out.push_back(std::move(cur));
      cur = Bucket{};
      cur_bytes = 0;
    }
    cur.params.push_back(i);
    cur.offset = params[size_t(i)].offset;  // reverse order: the last added has the lowest offset
    cur.numel += params[size_t(i)].numel;
    cur_bytes += bytes;
  }
  if (!cur.params.empty()) out.push_back(std::move(cur));
  return out;
}

Reducer::Reducer(Communicator& comm, std::vector<ParamSpan> params, int64_t element_size, const ReducerOptions& opts)
    : comm_(comm), params_(std::move(params)), opts_(opts) {
  buckets_ = assign_buckets(params_, element_size, opts_.first_bucket_cap_bytes, opts_.bucket_cap_bytes);
  bucket_of_.assign(params_.size(), -1);
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (int p : buckets_[b].params) bucket_of_[size_t(p)] = int(b);
}

Reducer::~Reducer() {
  // A pass abandoned by an exception: let its all-reduces finish before their buffers go (never throw here).
  for (auto& w : work_)
    if (w) try {
        w->wait();
      } catch (...) {
      }
}

void Reducer::prepare(at::Tensor& grad) {
  if (active_)
    throw DistError("reducer: prepare() called while the previous backward pass was not finished; call finish() "
                    "once per backward pass");
  int64_t total = 0;
  for (const ParamSpan& p : params_) total += p.numel;
  if (!grad.defined() || grad.dim() != 1 || grad.numel() != total || !grad.is_contiguous())
    throw DataError(fmt::format("reducer: the gradient must be a contiguous 1-D tensor of {} elements", total));
  active_ = true;
  grad_ = grad;
  ready_.assign(params_.size(), 0);
  pending_.resize(buckets_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = int(buckets_[b].params.size());
  work_.clear();
  work_.resize(buckets_.size());
  views_.assign(buckets_.size(), at::Tensor());
  next_launch_ = 0;
  launch_order_.clear();
}

void Reducer::launch(int b) {
  const Bucket& k = buckets_[size_t(b)];
  views_[size_t(b)] = grad_.narrow(0, k.offset, k.numel);
  work_[size_t(b)] = comm_.allreduce_async(views_[size_t(b)], opts_.op);
  launch_order_.push_back(b);
}

void Reducer::launch_ready() {
  while (next_launch_ < int(buckets_.size()) && pending_[size_t(next_launch_)] == 0) launch(next_launch_++);
  for (int b = 0; b < next_launch_; ++b)  // drive progress of the all-reduces in flight (MPI needs MPI calls)
    if (work_[size_t(b)]) work_[size_t(b)]->test();
}

void Reducer::mark_ready(int p) {
  if (!active_) return;  // no pass prepared: a no_sync pass, or backward without a reducer
  if (p < 0 || p >= int(params_.size()))
    throw DataError(fmt::format("reducer: parameter index {} out of range [0, {})", p, params_.size()));
  if (ready_[size_t(p)])
    throw DistError(fmt::format("reducer: parameter '{}' was marked ready twice in one backward pass", params_[size_t(p)].name));
  ready_[size_t(p)] = 1;
  --pending_[size_t(bucket_of_[size_t(p)])];
  if (sync_) launch_ready();
}

void Reducer::mark_all_ready() {
  for (int p = int(params_.size()) - 1; p >= 0; --p)
    if (!ready_[size_t(p)]) mark_ready(p);
}

void Reducer::finish() {
  if (!active_) return;
  active_ = false;
  unused_names_.clear();
  for (size_t p = 0; p < params_.size(); ++p) {
    if (ready_[p]) continue;
    if (!opts_.find_unused)
      throw DistError(fmt::format(
          "reducer: parameter '{}' received no gradient in this backward pass (static graph expected); if the model "
          "legitimately skips parameters, set dist.find_unused=true",
          params_[p].name));
    grad_.narrow(0, params_[p].offset, params_[p].numel).zero_();
    unused_names_.push_back(params_[p].name);
    ready_[p] = 1;
    --pending_[size_t(bucket_of_[p])];
  }
  if (!unused_names_.empty() && !warned_unused_) {
    warned_unused_ = true;
    std::string names;
    for (const auto& n : unused_names_) names += (names.empty() ? "" : ", ") + n;
    log::warn("reducer: parameters without a gradient this step (zero-filled, reduced as usual): {}", names);
  }
  if (sync_) {
    launch_ready();
    for (auto& w : work_)
      if (w) w->wait();
  }
  work_.clear();
  views_.clear();
  grad_ = at::Tensor();
}

}  // namespace dfcl::dist
