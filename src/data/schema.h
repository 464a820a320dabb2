// \brief Dataset schema v1: the columns every dfcl dataset has, and a column block of rows (Table).
//
// See docs/data.md for the on-disk layout. A Table holds any run of rows (a chunk, a batch, or a
// whole in-memory dataset) column by column, so readers, writers and the loader move data without
// per-row allocation.
#pragma once
#include <cstdint>  // for int64_t, int32_t, uint8_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::data {

inline constexpr int kSchemaVersion = 1;

/// Where a row comes from: a randomised trial (known arm propensities) or observational logs.
enum class Source : uint8_t { kRct = 0, kObservational = 1 };

/// Dataset-level description, stored as HDF5 attributes.
struct Meta {
  int64_t num_rows = 0;
  int num_features = 0;
  int num_arms = 0;
  std::vector<std::string> arm_names;      // size num_arms; arm 0 is control
  std::vector<std::string> feature_names;  // size num_features
  std::vector<double> rct_propensity;      // size num_arms, each in (0, 1], sums to 1
  std::vector<int64_t> rct_arm_rows;       // rows per arm among RCT rows (written at close)
  int64_t rct_rows = 0, observational_rows = 0;
  bool has_propensity = false;  // per-row `propensity` column present
  bool has_truth = false;       // `true_revenue` / `true_cost` present (synthetic data)
  std::string origin;           // free text: generator config or import source

  /// Checks internal consistency; `where` names the file in messages.
  void validate(const std::string& where) const;
};

/// A block of rows, column-major by field. Optional columns are empty when absent.
struct Table {
  int64_t rows = 0;
  int num_features = 0;
  int num_arms = 0;
  std::vector<float> features;      // rows x num_features, row-major
  std::vector<int32_t> treatment;   // in [0, num_arms)
  std::vector<float> revenue;       // observed revenue of the assigned arm
  std::vector<float> cost;          // observed cost of the assigned arm, >= 0
  std::vector<float> propensity;    // P(treatment | x), optional
  std::vector<uint8_t> source;      // Source
  std::vector<float> true_revenue;  // rows x num_arms, optional (synthetic)
  std::vector<float> true_cost;     // rows x num_arms, optional (synthetic)
  std::vector<int64_t> row_id;      // global row index in the dataset (not stored: it is the position)
  std::vector<float> weight;        // loader only: 1 for real rows, 0 for padding rows

  /// Shapes the table for `n` rows like `meta` (allocates optional columns when meta has them).
  void reset(const Meta& meta, int64_t n);
  /// Resizes every present column to `n` rows, keeping contents.
  void resize(int64_t n);
  /// Copies row `i` of `src` into row `j` of this table (same shape).
  void copy_row(int64_t j, const Table& src, int64_t i);
  /// Copies rows [i, i + n) of `src` into rows [j, j + n) of this table, column by column. `src` must hold every
  /// optional column this table holds (its extra columns are ignored).
  void copy_rows(int64_t j, const Table& src, int64_t i, int64_t n);
  /// Bytes held by the columns (for memory accounting).
  int64_t bytes() const;

  bool with_propensity = false;  // propensity column present
  bool with_truth = false;       // true_revenue / true_cost present
  bool with_weight = false;      // weight column present (loader batches)
};

/// The first invalid value in a block, if any: which row (0-based in the block), which field, what, and the fix.
struct RowProblem {
  int64_t row = -1;
  std::string field, what, fix;
};
/// Scans a block for NaN/inf, negative cost, treatment out of range, propensity outside (0, 1], bad source.
/// Returns a problem with row = -1 when the block is clean.
RowProblem find_bad_row(const Table& t, const std::vector<std::string>& feature_names);

}  // namespace dfcl::data
