// \brief Learning-rate schedules (constant, cosine, linear, step; optional linear warm-up) and the `schedule` section.
//
// factor(step, total) = warm(step) * decay(step), step counted from 0:
//   warm  = (step + 1) / W for step < W = warmup_steps, else 1;
//   decay = 1 (constant), min + (1 - min)(1 + cos(pi s / S)) / 2 (cosine), 1 - (1 - min) s / S (linear) with
//           s = max(0, step - W), S = total - W (s / S capped at 1), or gamma^floor(step / step_size) (step).
// Like torch's CosineAnnealingLR with T_max = S, the last step of a run (s = S - 1) is one step short of the floor.
#include "train/lr_schedule.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max, std::min
#include <cmath>      // for std::cos, std::isfinite, std::pow

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError, DataError

namespace dfcl::train {
namespace {
constexpr double kPi = 3.14159265358979323846;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw ConfigError(fmt::format("schedule.{} {}", key, why));
}

bool has_floor(const std::string& kind) { return kind == "cosine" || kind == "linear"; }
}  // namespace

LrSchedule LrSchedule::from(const Config& s) {
  LrSchedule c;
  c.kind = s.get<std::string>("kind", c.kind);
  c.warmup_auto = s.get<std::string>("warmup_steps", "0") == "auto";
  if (!c.warmup_auto) c.warmup_steps = s.get<int64_t>("warmup_steps", c.warmup_steps);
  c.min_factor = s.get<double>("min_factor", c.min_factor);
  c.step_size = s.get<int64_t>("step_size", c.step_size);
  c.gamma = s.get<double>("gamma", c.gamma);
  c.validate();
  // Keys of another kind are an error rather than silently ignored.
  if (!has_floor(c.kind) && s.has("min_factor"))
    bad("min_factor",
        fmt::format("applies to kind cosine and linear only, and schedule.kind is {}; remove it", c.kind));
  if (c.kind != "step")
    for (const char* key : {"step_size", "gamma"})
      if (s.has(key)) bad(key, fmt::format("applies to kind step only, and schedule.kind is {}; remove it", c.kind));
  return c;
}

void LrSchedule::resolve(int64_t total_steps) {
  if (warmup_auto) warmup_steps = std::min<int64_t>(50, total_steps / 10);
}

void LrSchedule::validate() const {
  if (kind != "constant" && kind != "cosine" && kind != "linear" && kind != "step")
    throw ConfigError(fmt::format("schedule.kind is '{}'; use one of: constant, cosine, linear, step", kind));
  if (warmup_steps < 0) bad("warmup_steps", fmt::format("is {}; it must be >= 0 (0 turns warm-up off)", warmup_steps));
  if (!(min_factor >= 0 && min_factor <= 1))
    bad("min_factor",
        fmt::format("is {}; it must lie in [0, 1] (the final rate as a fraction of optimizer.lr)", min_factor));
  if (step_size < 1) bad("step_size", fmt::format("is {}; it must be >= 1 (steps between decays)", step_size));
  if (!(gamma > 0 && gamma <= 1))
    bad("gamma", fmt::format("is {}; it must lie in (0, 1] (the factor applied every schedule.step_size steps, "
                             "e.g. 0.1)",
                             gamma));
}

double LrSchedule::factor(int64_t step, int64_t total_steps) const {
  if (total_steps < 1 || step < 0)
    throw DataError(fmt::format("lr schedule: step {} of a run of {} steps; need step >= 0 and total_steps >= 1", step,
                                total_steps));
  const double warm = step < warmup_steps ? double(step + 1) / double(warmup_steps) : 1.0;
  const int64_t s = std::max<int64_t>(0, step - warmup_steps);
  const int64_t S = total_steps - warmup_steps;
  const double ratio = s == 0 ? 0.0 : S > 0 ? std::min(1.0, double(s) / double(S)) : 1.0;
  double decay = 1;
  if (kind == "cosine")
    decay = min_factor + (1 - min_factor) * (1 + std::cos(kPi * ratio)) / 2;
  else if (kind == "linear")
    decay = 1 - (1 - min_factor) * ratio;
  else if (kind == "step")
    decay = std::pow(gamma, double(step / step_size));
  return warm * decay;
}

}  // namespace dfcl::train
