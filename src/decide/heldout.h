// \brief The held-out rule, once: a model is never judged, and lambda never calibrated, on the trial rows it trained
// on, unless asked for, and then with a warning (docs/metrics.md §10 and §12).
//
// A model that fit the realised outcomes of its training rows makes decisions there that follow those outcomes, so the
// IPW (and DR) estimates of what its decisions spend and earn on those rows are biased. Every command that judges or
// calibrates (dfcl evaluate, dfcl allocate, the outcome models of the DR estimators) asks these functions which rows.
#pragma once
#include <optional>  // for std::optional
#include <string>    // for std::string
#include <vector>  // for std::vector

#include "data/split.h"  // for Split, SplitSpec

namespace dfcl::decide {

/// What a fitted scorer (a checkpoint, a cluster policy's representation net, an outcome model) was trained on.
struct TrainedOn {
  std::string origin;               // the file it came from (messages)
  std::vector<std::string> files;   // train.data's files; empty for an in-memory population
  data::SplitSpec split;            // the split of their rows it trained on (its train split)
};

/// Which trial rows of a dataset.
struct RowChoice {
  data::Split split = data::Split::kAll;
  data::SplitSpec spec;
  bool judged = false;  // calibration only: the judged rows themselves (evaluate's `evaluated`)
  std::optional<TrainedOn> trained;    // the model that trained on these files, if any
  std::string why;                     // one line for the log
};

/// The rows `dfcl evaluate` judges. `name`: auto (a training file's test split, with that model's fractions and seed;
/// every row of a file no model trained on), all, train, validation, test or held_out. `given`/`spec_given`: the
/// command's own split_fractions and seed. Two models trained on the files with different splits are a ConfigError (no
/// test split is held out from both); a partial split of an unseen file, fractions that differ from the model's and the
/// train split are warned about. `key`: the setting's name in messages ("evaluate.split").
RowChoice judged_rows(const std::string& name, const data::SplitSpec& given, bool spec_given,
                      const std::vector<std::string>& files, bool generated, const std::vector<TrainedOn>& models,
                      const std::string& key);

/// The rows lambda is calibrated on. `name`: auto, evaluated (only where `judged` rows exist: the judged rows
/// themselves, the papers' protocol), all, train, validation, test, held_out. auto = the judged rows where there are
/// (they already leave the training rows out), else the held-out rows (validation and test) of a file `trained` trained
/// on and all rows of any other file. all or train on a training file is warned about. `key` names the setting.
RowChoice calibration_rows(const std::string& name, const std::vector<std::string>& files,
                           const std::vector<TrainedOn>& models, const RowChoice* judged, const std::string& key);

/// The model among `models` that trained on one of `files` (nullptr when none did).
const TrainedOn* trained_on_files(const std::vector<std::string>& files, const std::vector<TrainedOn>& models);

}  // namespace dfcl::decide
