// \brief Fuzz target: the scores file reader (r_hat, c_hat) behind `dfcl allocate` and `dfcl evaluate`.
//
// Input: a byte that sizes a valid scores file (write_score_file), the rows to read and the shape the caller expects,
// then edits of its datasets and attributes (h5_mutator.h). Seeds: tests/fuzz/corpus/score_file.
#include <vector>  // for std::vector

#include "fuzz.h"                   // for expect_clean, scratch, Bytes
#include "h5_mutator.h"             // for mutate_h5
#include "metrics/score_file.h"     // for read_score_file, write_score_file

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dfcl::fuzz::Bytes in(data, size);
  static const std::string path = dfcl::fuzz::scratch("scores.h5");
  const int64_t n = in.below(50);
  const int m = 1 + int(in.below(5));
  std::vector<float> r(size_t(n * m)), c(size_t(n * m));
  for (size_t i = 0; i < r.size(); ++i) r[i] = float(i % 7) - 1, c[i] = float(i % 3);
  dfcl::fuzz::expect_clean([&] { dfcl::metrics::write_score_file(path, dfcl::solver::Scores{n, m, r.data(), c.data()}); });
  // The rows a caller asks for (ascending in every real caller; the fuzzer may send any), and the shape it expects.
  std::vector<int64_t> rows(in.below(6));
  for (auto& x : rows) x = int64_t(in.below(60)) - 5;
  const int64_t expect_rows = in.below(3) == 0 ? -1 : int64_t(in.below(60));
  const int expect_arms = in.below(3) == 0 ? -1 : int(in.below(7));
  dfcl::fuzz::mutate_h5(path, in, {"r_hat", "c_hat", "extra"}, {"num_arms", "arm_names", "origin"});
  dfcl::fuzz::expect_clean([&] { dfcl::metrics::read_score_file(path, rows, expect_rows, expect_arms); });
  dfcl::fuzz::expect_clean([&] { dfcl::metrics::read_score_file(path); });
  return 0;
}
