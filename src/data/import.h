// \brief `dfcl import`: converts a CSV of campaign logs (Hillstrom, Criteo, your own) into a schema-v1 HDF5 dataset.
//
// Keys of the `import:` section (read relative to it; the caller passes cfg.sub("import")):
//
//   input:        CSV path (required).
//   output:       HDF5 path to write (required); written through `output.partial`, renamed when complete.
//   preset:       hillstrom | criteo (optional). Fills defaults for the keys below; explicit keys win.
//                   hillstrom: treatment.column segment, arms [No E-Mail, Mens E-Mail, Womens E-Mail],
//                              revenue.column spend (set revenue.column: conversion for conversions),
//                              cost.per_arm [0, 0.1, 0.1], features recency, history, mens, womens,
//                              newbie (numeric) and history_segment, zip_code, channel (categorical).
//                   criteo:    features f0..f11 (numeric), treatment.column treatment with arms ["0", "1"],
//                              revenue.column conversion, cost.column visit (as in the DFCL paper).
//   delimiter:    one character (default ","; "\t" for tab-separated files).
//   on_bad_row:   error (default): the first bad row stops the import with a message naming the file,
//                 line, column and value. skip: the row is left out and counted; the count and the first
//                 reasons are in ImportSummary, which the caller prints. Nothing is dropped silently.
//   treatment:    {column: NAME, arms: [label0, label1, ...]}. Label order gives the arm id; arm 0 is
//                 control. A value that is not one of the labels is a bad row.
//   revenue:      {column: NAME}. Any finite number.
//   cost:         {column: NAME} (finite, >= 0), or {per_arm: [c0, c1, ...]}: a constant cost per arm
//                 (one value per arm, each >= 0) when the data has no cost column.
//   features:     [{column: NAME, type: numeric|categorical, categories: [..]}, ...]. type defaults to
//                 numeric. A categorical column becomes one-hot columns named "NAME=value", in the order
//                 of `categories`, or sorted when `categories` is absent (then found in a first pass;
//                 with `categories` given, another value is a bad row).
//   source:       rct (default) | observational. Stored per row (0 = rct, 1 = observational).
//   propensity_column: NAME (optional): per-row P(treatment | x), each in (0, 1].
//   rct_propensity: empirical (default: N_j / N over the rows written) or [p0, p1, ...] (each in (0, 1],
//                 summing to 1). RCT only.
//
// Import reads the file twice: pass 1 checks every row, counts arms and finds categories; pass 2
// writes blocks of WriteOptions::chunk_rows rows, so memory stays bounded. Errors are found in pass 1,
// before the output file is created. Every RCT arm must have rows.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "core/config.h"       // for Config
#include "data/h5_dataset.h"   // for WriteOptions
#include "data/schema.h"       // for Source

namespace dfcl::data {

struct ImportSummary {
  std::string input, output, preset, origin;
  Source source = Source::kRct;
  int64_t rows_read = 0;     // data records in the CSV (header excluded)
  int64_t rows_written = 0;  // rows in the output
  int64_t rows_skipped = 0;  // bad rows left out (on_bad_row: skip)
  std::vector<std::string> skip_reasons;  // the first few, each naming file, line, column and value
  std::vector<std::string> arm_names;
  std::vector<int64_t> arm_rows;           // rows written per arm
  std::vector<double> arm_mean_revenue;    // per arm, over the rows written (0 for an arm with no rows)
  std::vector<double> arm_mean_cost;
  std::vector<double> rct_propensity;      // as stored (empty for observational data)
  std::vector<std::string> feature_names;  // as stored, one-hot columns expanded
  double seconds = 0;
};

/// How many skip reasons ImportSummary keeps.
inline constexpr size_t kMaxSkipReasons = 10;

/// Runs the import described by `cfg` (the `import:` section). Throws ConfigError for a bad or unknown
/// key, DataError for bad data (naming file, line, column and value), IoError for file-system failures.
ImportSummary import_csv(const Config& cfg, const WriteOptions& out_options, bool show_progress);

/// Reads the `import` section as import_csv() does, without opening a file: ConfigError naming the key.
void check_import_config(const Config& cfg);

nlohmann::json to_json(const ImportSummary& s);

}  // namespace dfcl::data
