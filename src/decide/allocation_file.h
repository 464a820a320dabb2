// \brief The allocation file dfcl allocate writes: one arm per user per budget, as HDF5 (`arm` K x N uint8 plus
// per-budget `budget`, `lambda`, `spend`, `revenue`) or CSV (one column per budget); and what those allocations truly
// spend and earn on synthetic data, read off the true tables chunk by chunk.
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "metrics/policy_value.h"  // for PolicyValue
#include "solver/mckp.h"           // for Allocation

namespace dfcl::data {
class RowSource;
}

namespace dfcl::decide {

/// Writes `all` (the allocations of the same n users at several budgets) to `path` (.csv, else HDF5), atomically;
/// `columns` names each budget's CSV column. IoError when the file cannot be written (or HDF5 is not built in).
void write_allocations(const std::string& path, const std::vector<solver::Allocation>& all,
                       const std::vector<std::string>& columns, int64_t n);

/// The true per-capita revenue and spend of each allocation of the users of `src` (which has the true tables),
/// reading one chunk at a time.
std::vector<metrics::PolicyValue> true_values(data::RowSource& src, const std::vector<solver::Allocation>& all,
                                              int threads);

}  // namespace dfcl::decide
