// \brief Learning-rate schedules: the multiplier of the base rate at each optimiser step, and the `schedule` section.
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string

namespace dfcl {
class Config;
}

namespace dfcl::train {

/// lr(step) = base_lr * factor(step, total_steps), step counted from 0:
///   warmup: for step < warmup_steps the factor ramps linearly from 1/warmup_steps to 1 (times the decay below);
///   constant: 1;  cosine: min_factor + (1 - min_factor) (1 + cos(pi s / S)) / 2 with s, S counted after warm-up;
///   linear: 1 - (1 - min_factor) s / S;  step: gamma^floor(step / step_size).
struct LrSchedule {
  std::string kind = "constant";  // constant | cosine | linear | step
  int64_t warmup_steps = 0;
  /// schedule.warmup_steps: auto = a tenth of the run's optimiser steps, at most 50 (resolve()).
  bool warmup_auto = false;
  double min_factor = 0;  // cosine/linear floor, in [0, 1]
  int64_t step_size = 1000;
  double gamma = 0.1;
  /// Reads the `schedule` section (keys: kind, warmup_steps, min_factor, step_size, gamma); ConfigError naming
  /// schedule.<key> on bad values, and on a key of another kind (gamma with cosine, min_factor with step).
  static LrSchedule from(const Config& section);
  void validate() const;
  /// Sets warmup_steps for a run of `total_steps` when it is auto (min(50, total_steps / 10)).
  void resolve(int64_t total_steps);
  /// The multiplier at `step` of a run of `total_steps` optimiser steps (step >= 0, total_steps >= 1; DataError
  /// otherwise). Steps past the end keep the cosine/linear floor.
  double factor(int64_t step, int64_t total_steps) const;
};

}  // namespace dfcl::train
