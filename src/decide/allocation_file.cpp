// \brief Writing allocations, and their true value on synthetic data (see allocation_file.h).
#include "decide/allocation_file.h"

#include <fmt/format.h>  // for fmt::format

#include <cstdio>   // for std::remove
#include <fstream>  // for std::ofstream

#include "core/atomic_file.h"  // for AtomicFile
#include "core/error.h"        // for IoError
#include "data/source.h"       // for RowSource
#include "metrics/oracle.h"    // for true_value
#ifdef DFCL_HAVE_HDF5
#include "data/h5_util.h"  // for write_array
#endif

namespace dfcl::decide {
namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

// Assignments: one row per budget in HDF5 (`arm` K x N uint8, plus per-budget vectors), or one column per budget in
// CSV, named after the budget as given (full precision: distinct budgets get distinct names).
void write_allocations(const std::string& path, const std::vector<solver::Allocation>& all,
                       const std::vector<std::string>& columns, int64_t n) {
  if (ends_with(path, ".csv")) {
    AtomicFile out(path, "allocate.output");
    std::ofstream& f = out.stream();
    f << "user";
    for (const auto& c : columns) f << ',' << c;
    f << '\n';
    std::string line;
    for (int64_t i = 0; i < n; ++i) {
      line = std::to_string(i);
      for (const auto& a : all) line += ',' + std::to_string(int(a.arm[size_t(i)]));
      f << line << '\n';
    }
    out.commit();
    return;
  }
#ifdef DFCL_HAVE_HDF5
  namespace h5 = data::h5;
  h5::quiet();
  const std::string tmp = path + ".partial";
  h5::Hid file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (file < 0) throw IoError(fmt::format("cannot create '{}' (allocate.output): {}", tmp, h5::error_text()));
  struct RemoveUnlessKept {  // the partial file goes with an exception
    std::string p;
    bool keep = false;
    ~RemoveUnlessKept() {
      if (!keep) std::remove(p.c_str());
    }
  } guard{tmp};
  const hsize_t K = all.size();
  std::vector<uint8_t> arm(K * size_t(n));
  std::vector<double> budget, lambda, spend, revenue;
  for (size_t k = 0; k < K; ++k) {
    std::copy(all[k].arm.begin(), all[k].arm.end(), arm.begin() + long(k * size_t(n)));
    budget.push_back(all[k].budget), lambda.push_back(all[k].lambda);
    spend.push_back(all[k].spend), revenue.push_back(all[k].revenue);
  }
  h5::write_array(file, "arm", H5T_NATIVE_UINT8, {K, hsize_t(n)}, arm.data(), path);
  h5::write_array(file, "budget", H5T_NATIVE_DOUBLE, {K}, budget.data(), path);
  h5::write_array(file, "lambda", H5T_NATIVE_DOUBLE, {K}, lambda.data(), path);
  h5::write_array(file, "spend", H5T_NATIVE_DOUBLE, {K}, spend.data(), path);
  h5::write_array(file, "revenue", H5T_NATIVE_DOUBLE, {K}, revenue.data(), path);
  const hid_t id = file.id;
  file.id = -1;
  if (H5Fclose(id) < 0)
    throw IoError(fmt::format("writing '{}' (allocate.output) failed: {} (disk full?)", path, h5::error_text()));
  guard.keep = true;
  AtomicFile::move_into_place(tmp, path, "allocate.output");
#else
  (void)columns;
  throw IoError(fmt::format("'{}': this dfcl was built without HDF5; write CSV instead (allocate.output: x.csv)", path));
#endif
}

// What each allocation truly spends and earns per user (synthetic data), reading the true tables chunk by chunk:
// memory is one chunk. Holding the tables whole cost 2 N M floats, 2 GB of the allocator's 6.3 GB at 50M users x 5
// arms (bench/run_scale.sh).
std::vector<metrics::PolicyValue> true_values(data::RowSource& src, const std::vector<solver::Allocation>& all,
                                                       int threads) {
  const int64_t N = src.meta().num_rows;
  const int M = src.meta().num_arms;
  std::vector<metrics::PolicyValue> sum(all.size());
  data::Table block;
  for (int64_t a = 0; a < N; a += src.chunk_rows()) {
    const int64_t n = std::min(src.chunk_rows(), N - a);
    src.read(a, n, block);
    const solver::Scores truth{n, M, block.true_revenue.data(), block.true_cost.data()};
    for (size_t k = 0; k < all.size(); ++k) {
      const metrics::PolicyValue v = metrics::true_value(truth, all[k].arm.data() + a, threads);
      sum[k].revenue += v.revenue * double(n), sum[k].cost += v.cost * double(n);
    }
  }
  for (auto& v : sum) v.revenue /= double(N), v.cost /= double(N);
  return sum;
}

}  // namespace dfcl::decide
