// \brief The held-out rule for judged and calibration rows (see heldout.h).
#include "decide/heldout.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include "core/error.h"  // for ConfigError
#include "core/log.h"    // for log::warn

namespace dfcl::decide {
namespace {
bool same_split(const data::SplitSpec& a, const data::SplitSpec& b) {
  return a.train == b.train && a.validation == b.validation && a.seed == b.seed;
}
}  // namespace

const TrainedOn* trained_on_files(const std::vector<std::string>& files, const std::vector<TrainedOn>& models) {
  for (const auto& m : models)
    if (data::shares_file(files, m.files)) return &m;
  return nullptr;
}

RowChoice judged_rows(const std::string& name, const data::SplitSpec& given, bool spec_given,
                      const std::vector<std::string>& files, bool generated, const std::vector<TrainedOn>& models,
                      const std::string& key) {
  RowChoice c;
  c.spec = given;
  const TrainedOn* trained = nullptr;  // a model that trained on one of the judged files
  for (const auto& m : models)
    if (!generated && data::shares_file(files, m.files)) {
      if (trained && !same_split(trained->split, m.split))
        throw ConfigError(
            fmt::format("{} and {} trained on {} with different train.split_fractions / split_seed, so "
                        "no test split is held out from both; evaluate them separately",
                        trained->origin, m.origin, fmt::join(files, ", ")));
      trained = &m;
    }
  if (trained) c.trained = *trained;
  const std::string fractions_key = key + "_fractions / " + key + "_seed";
  if (trained && !spec_given) {
    c.spec = trained->split;
  } else if (trained && !same_split(trained->split, given)) {
    log::warn(
        "{} ({}, {}; seed {}) differ from those {} was trained with ({}, {}; seed {}): the evaluated rows may include "
        "its training rows. Leave them out to use the checkpoint's",
        fractions_key, given.train, given.validation, given.seed, trained->origin, trained->split.train,
        trained->split.validation, trained->split.seed);
  }
  if (name == "auto") {
    c.split = trained ? data::Split::kTest : data::Split::kAll;
    c.why = fmt::format("{} = auto: {}", key,
                        trained ? fmt::format("the test split ({:.0f}% of the rows), because {} trained on this data",
                                              100 * c.spec.fraction(data::Split::kTest), trained->origin)
                                : std::string("all rows: no checkpoint scored here trained on them"));
    return c;
  }
  c.split = data::parse_split(name);
  if (!trained && c.split != data::Split::kAll && !models.empty())
    log::warn("{} = {} scores only {:.0f}% of the rows of {}, although no checkpoint here trained on them; {}=auto (or "
              "all) scores every row",
              key, name, 100 * c.spec.fraction(c.split), fmt::join(files, ", "), key);
  if (trained && c.split == data::Split::kTrain)
    log::warn("{} = train: these are {}'s training rows; its numbers here are optimistic", key, trained->origin);
  return c;
}

RowChoice calibration_rows(const std::string& name, const std::vector<std::string>& files,
                           const std::vector<TrainedOn>& models, const RowChoice* judged, const std::string& key) {
  RowChoice c;
  if (const TrainedOn* t = trained_on_files(files, models)) c.trained = *t;
  if (judged) {
    c.spec = judged->spec;
    if (judged->trained) c.trained = judged->trained;
  } else if (c.trained) {
    c.spec = c.trained->split;
  }
  if (name == "evaluated" || (name == "auto" && judged)) {
    if (!judged)
      throw ConfigError(fmt::format("{} = evaluated calibrates on the judged rows, which only dfcl evaluate has; use "
                                    "auto, held_out, all, train, validation or test",
                                    key));
    c.judged = true, c.split = judged->split;
    c.why = "lambda from the judged rows themselves (the papers' protocol)";
    return c;
  }
  if (name == "auto") {
    c.split = c.trained ? data::Split::kHeldOut : data::Split::kAll;
    c.why = c.trained ? fmt::format("{} = auto: the held-out trial rows (validation and test splits), because {} trained "
                                    "on the others",
                                    key, c.trained->origin)
                      : fmt::format("{} = auto: all trial rows (no model here trained on them)", key);
    return c;
  }
  c.split = data::parse_split(name);
  if (c.trained && (c.split == data::Split::kAll || c.split == data::Split::kTrain))
    log::warn("{} = {} includes the rows {} trained on: the IPW spend of a model's decisions on rows whose outcomes it "
              "fit is biased. Calibrate on held-out rows ({}=auto, or held_out)",
              key, name, c.trained->origin, key);
  c.why = fmt::format("{} = {}", key, name);
  return c;
}

}  // namespace dfcl::decide
